"""GET /api/v1/cis/export: every CI with its current attributes, streamed as NDJSON or CSV (auditors).

    GET /api/v1/cis/export?format=ndjson|csv&class=Computer&state=active&fields=hostname,serial

NDJSON: one CI per line, the shape of GET /api/v1/cis items ({"id", "class", "state",
"first_seen", "last_seen", "attributes"}); `fields` keeps only those attributes. CSV: columns id,
class, state, first_seen, last_seen, then one column per name in `fields`, or a single
`attributes` column holding the attributes as JSON when `fields` is not given. A CSV cell that
a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is prefixed with ' : the values
come from the fleet's machines, so they are hostile input.

The body is streamed in pages of EXPORT_PAGE CIs, so memory does not grow with the CMDB. Pages
are read one after another, not in one snapshot: a CI reconciled meanwhile may appear in its old
or new state. If the store fails midway, the response is cut off without its final chunk, which
every HTTP client reports as an error: a short export never looks complete.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from cmdb.model import CI_CLASSES
from collector.api import STORE_KEY, APIError, call_store
from collector.openapi import error
from collector.query import ATTR_NAME, STATES, CISummary

log = logging.getLogger("fleetgraph.collector.export")

routes = web.RouteTableDef()

EXPORT_PATH = "/api/v1/cis/export"
EXPORT_PAGE = 1000
MAX_FIELDS = 200
FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
FIXED_COLUMNS = ("id", "class", "state", "first_seen", "last_seen")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_encode = msgspec.json.Encoder().encode


class ExportAborted(ConnectionResetError):
    """The store failed after the answer started: drop the connection (the export is incomplete)."""


def _params(request: web.Request) -> tuple[str, str | None, str | None, list[str] | None]:
    known = ("format", "class", "state", "fields")
    unknown = sorted(k for k in request.query if k not in known)
    if unknown:
        raise APIError(400, f"unknown query parameter(s) {', '.join(unknown)}; this endpoint takes "
                            f"{', '.join(known)}", parameters=unknown)
    fmt = request.query.get("format", "ndjson")
    if fmt not in FORMATS:
        raise APIError(400, f"format must be ndjson or csv, got {fmt!r}", parameter="format")
    ci_class = request.query.get("class")
    if ci_class is not None and ci_class not in CI_CLASSES:
        raise APIError(400, f"unknown class {ci_class!r}; classes are {', '.join(CI_CLASSES)}",
                       parameter="class")
    state = request.query.get("state", "active")
    if state not in STATES:
        raise APIError(400, f"state must be one of {', '.join(STATES)}, got {state!r}", parameter="state")
    fields = None
    if "fields" in request.query:
        fields = [f.strip() for f in request.query["fields"].split(",") if f.strip()]
        bad = [f for f in fields if not ATTR_NAME.match(f)]
        if bad or not fields or len(fields) > MAX_FIELDS:
            raise APIError(400, f"fields is a comma-separated list of 1 to {MAX_FIELDS} attribute names "
                                "(lower-case letters, digits, '_' and '.', starting with a letter)"
                                + (f"; not names: {', '.join(map(repr, bad[:5]))}" if bad else ""),
                           parameter="fields")
        fields = list(dict.fromkeys(fields))
    return fmt, ci_class, None if state == "all" else state, fields


def _cell(value: Any) -> str:
    """A CSV cell: strings as they are (formula-neutralized), anything else as JSON, None empty."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else _encode(value).decode()
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _csv_rows(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _csv_header(fields: list[str] | None) -> bytes:
    return _csv_rows([list(FIXED_COLUMNS) + ([f"attr.{f}" for f in fields] if fields is not None
                                             else ["attributes"])])


def _csv_page(cis: list[CISummary], fields: list[str] | None) -> bytes:
    rows = []
    for ci in cis:
        row = [ci.ci_id, ci.class_, ci.state, _iso(ci.first_seen), _iso(ci.last_seen)]
        if fields is None:
            row.append(_encode(ci.attributes).decode())
        else:
            row += [_cell(ci.attributes.get(name)) for name in fields]
        rows.append(row)
    return _csv_rows(rows)


def _ndjson_page(cis: list[CISummary]) -> bytes:
    return b"".join(_encode(ci) + b"\n" for ci in cis)


def _summaries(cis: list[Any], fields: list[str] | None) -> list[CISummary]:
    keep = set(fields) if fields is not None else None
    return [CISummary(c.ci_id, c.ci_class, c.state, c.first_seen, c.last_seen,
                      {k: v.value for k, v in sorted(c.attributes.items()) if keep is None or k in keep})
            for c in cis]


@routes.get(EXPORT_PATH)  # who may: collector.roles.ROUTE_ACCESS (auditor, admin)
async def export_cis(request: web.Request) -> web.StreamResponse:
    fmt, ci_class, state, fields = _params(request)
    store = request.config_dict[STORE_KEY]
    # The first page is read before the answer starts: a store that is down is still a clean 500.
    page = await call_store(request, store.list_cis, ci_class=ci_class, state=state, limit=EXPORT_PAGE, offset=0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(headers={
        "Content-Type": f"{FORMATS[fmt]}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="fleetgraph-cis-{stamp}.{fmt}"',
        "Cache-Control": "no-store",
    })
    response.enable_chunked_encoding()
    await response.prepare(request)
    if fmt == "csv":
        await response.write(_csv_header(fields))
    offset, count = 0, 0
    while page:
        summaries = _summaries(page, fields)
        await response.write(_csv_page(summaries, fields) if fmt == "csv" else _ndjson_page(summaries))
        count += len(page)
        if len(page) < EXPORT_PAGE:
            break
        offset += EXPORT_PAGE
        try:
            page = await call_store(request, store.list_cis, ci_class=ci_class, state=state,
                                    limit=EXPORT_PAGE, offset=offset)
        except Exception as exc:
            log.exception("export cut off after %d CIs: the store failed", count)
            raise ExportAborted(f"the store failed during the export: {type(exc).__name__}") from exc
    await response.write_eof()
    log.info("exported %d CIs as %s (class %s, state %s)", count, fmt, ci_class or "any", state or "all")
    return response


OPENAPI = {
    "paths": {EXPORT_PATH: {"get": {
        "summary": "export CIs with their current attributes (streamed NDJSON or CSV)",
        "parameters": [
            {"name": "format", "in": "query", "schema": {"enum": list(FORMATS)}, "description": "ndjson (default) or csv"},
            {"name": "class", "in": "query", "schema": {"enum": list(CI_CLASSES)}, "description": "CI class"},
            {"name": "state", "in": "query", "schema": {"enum": list(STATES)}, "description": "default active"},
            {"name": "fields", "in": "query", "schema": {"type": "string"},
             "description": "comma-separated attribute names: CSV columns (attr.<name>), or the attributes kept"},
        ],
        "responses": {
            "200": {"description": "one CI per line (NDJSON) or row (CSV)",
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}}}},
            "400": error("a parameter is malformed (it is named)"),
        },
    }}},
}
