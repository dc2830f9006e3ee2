"""The read-only query API: list and filter CIs, show one (optionally as of a past time), history.

    GET /api/v1/cis?class=Computer&attr.hostname=web-01&attr.memory_mb=8192&state=active&limit=100&offset=0
    GET /api/v1/cis/{id}[?as_of=2024-05-01T12:00:00Z]
    GET /api/v1/cis/{id}/history?name=memory_mb&since=...&until=...&limit=...
    GET /api/v1/drift?ci={id}&since=...&until=...&limit=...       (drift events, oldest first)

Every parameter is validated before the store is asked; a wrong one is a 400 naming it and the
values it takes. Payloads are msgspec Structs, encoded by msgspec.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from cmdb.changes import DriftEvent
from cmdb.model import CI_CLASSES
from cmdb.store import CI, HistoryRow, Relationship
from collector.api import STORE_KEY, APIError, call_store, json_response
from collector.openapi import error, json_body

routes = web.RouteTableDef()

CI_ID = re.compile(r"^[0-9a-f]{32}$")
ATTR_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
STATES = ("active", "retired", "all")
MAX_LIST_LIMIT = 1000
MAX_HISTORY_LIMIT = 10_000
MAX_OFFSET = 10**12  # past any CMDB; a bigger number would overflow the store's 64-bit integers
_json_decode = msgspec.json.Decoder().decode


# -- payload shapes -------------------------------------------------------------------------

class SourceOut(msgspec.Struct):
    kind: str
    id: str


class ProvenanceOut(msgspec.Struct):
    source: SourceOut
    report_id: str | None
    observed_at: datetime


class AttributeOut(msgspec.Struct):
    value: Any
    provenance: ProvenanceOut


class IdentifierOut(msgspec.Struct):
    kind: str
    value: str


class RelationshipOut(msgspec.Struct):
    type: str
    from_ci: str
    to_ci: str
    state: str
    first_seen: datetime
    last_seen: datetime
    provenance: ProvenanceOut


class CISummary(msgspec.Struct):
    ci_id: str = msgspec.field(name="id")  # "id", as in `fleetgraph ci show --json`
    class_: str = msgspec.field(name="class")
    state: str
    first_seen: datetime
    last_seen: datetime
    attributes: dict[str, Any]


class CIList(msgspec.Struct):
    items: list[CISummary]
    count: int
    limit: int
    offset: int
    next_offset: int | None


class Relationships(msgspec.Struct):
    out: list[RelationshipOut]
    in_: list[RelationshipOut] = msgspec.field(name="in")


class CIDetail(msgspec.Struct):
    ci_id: str = msgspec.field(name="id")
    class_: str = msgspec.field(name="class")
    state: str
    first_seen: datetime
    last_seen: datetime
    attributes: dict[str, AttributeOut]
    identifiers: list[IdentifierOut]
    relationships: Relationships
    as_of: datetime | None  # set when the CI is shown as it stood at that time


class HistoryOut(msgspec.Struct):
    seq: int
    kind: str
    name: str | None
    before: Any
    after: Any
    related_ci: str | None
    provenance: ProvenanceOut
    recorded_at: datetime


class HistoryList(msgspec.Struct):
    ci_id: str
    items: list[HistoryOut]
    count: int
    limit: int


class DriftOut(msgspec.Struct):
    drift_id: str = msgspec.field(name="id")
    ci_id: str
    class_: str = msgspec.field(name="class")
    attribute: str
    before: Any
    after: Any
    related_ci: str | None
    provenance: ProvenanceOut
    recorded_at: datetime | None
    disposition: str | None = None  # authorized, incident, unauthorized_change, recorded
    record: str | None = None  # the change or incident it went to


class DriftList(msgspec.Struct):
    items: list[DriftOut]
    count: int
    limit: int


def _provenance(p: Any) -> ProvenanceOut:
    return ProvenanceOut(SourceOut(p.source_kind, p.source_id), p.report_id, p.observed_at)


def _relationship(r: Relationship) -> RelationshipOut:
    return RelationshipOut(r.type, r.from_ci, r.to_ci, r.state, r.first_seen, r.last_seen,
                           _provenance(r.provenance))


def _detail(ci: CI, rels: list[Relationship], as_of: datetime | None) -> CIDetail:
    relationships = Relationships(
        out=[_relationship(r) for r in rels if r.from_ci == ci.ci_id],
        in_=[_relationship(r) for r in rels if r.to_ci == ci.ci_id and r.from_ci != ci.ci_id],
    )
    return CIDetail(
        ci_id=ci.ci_id, class_=ci.ci_class, state=ci.state, first_seen=ci.first_seen,
        last_seen=ci.last_seen,
        attributes={name: AttributeOut(value.value, _provenance(value.provenance))
                    for name, value in sorted(ci.attributes.items())},
        identifiers=[IdentifierOut(i.kind, i.value) for i in ci.identifiers],
        relationships=relationships, as_of=as_of,
    )


def _history_row(row: HistoryRow) -> HistoryOut:
    return HistoryOut(row.seq, row.kind, row.name, row.before, row.after, row.related_ci,
                      _provenance(row.provenance), row.recorded_at)


# -- parameter parsing ------------------------------------------------------------------------

def _reject_unknown(request: web.Request, known: tuple[str, ...], prefix: str | None = None) -> None:
    unknown = sorted({k for k in request.query if k not in known and not (prefix and k.startswith(prefix))})
    if unknown:
        allowed = ", ".join(known + ((f"{prefix}<name>",) if prefix else ()))
        raise APIError(400, f"unknown query parameter(s) {', '.join(unknown)}; this endpoint takes {allowed}",
                       parameters=unknown)


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
    try:
        value = int(raw)
    except ValueError:
        raise APIError(400, f"{name} must be an integer {bounds}, got {raw!r}", parameter=name) from None
    if value < lo or (hi is not None and value > hi):
        raise APIError(400, f"{name} must be {bounds}, got {value}", parameter=name)
    return value


def parse_time(raw: str, name: str) -> datetime:
    """ISO 8601; a time without an offset (or a bare date) is taken as UTC."""
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise APIError(400, f"{name} must be an ISO 8601 date or time, e.g. 2024-05-01T12:00:00Z, "
                            f"got {raw!r}", parameter=name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _filter_value(key: str, raw: str) -> Any:
    """An attribute filter value. Values are compared as JSON: a JSON number, true/false or a list
    is taken as typed (attr.memory_mb=8192), `null` matches CIs without the attribute, a JSON
    string in quotes is that string (attr.hostname="8192"), anything else is the plain string."""
    try:
        value = _json_decode(raw)
    except msgspec.DecodeError:
        return raw
    if isinstance(value, dict):
        raise APIError(400, f"{key}: attribute values are scalars or lists, not objects", parameter=key)
    return value


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    return None if raw is None else parse_time(raw, name)


def _ci_id(request: web.Request) -> str:
    ci_id = request.match_info["ci_id"]
    if not CI_ID.match(ci_id):
        raise APIError(400, f"malformed CI id {ci_id!r}: a CI id is 32 lower-case hex digits "
                            "(find ids with GET /api/v1/cis)", parameter="id")
    return ci_id


def _not_found(ci_id: str) -> APIError:
    return APIError(404, f"no CI with id {ci_id}; find ids with GET /api/v1/cis", ci_id=ci_id)


# -- handlers -----------------------------------------------------------------------------------

@routes.get("/api/v1/cis")  # who may call each route: collector.roles.ROUTE_ACCESS
async def list_cis(request: web.Request) -> web.Response:
    _reject_unknown(request, ("class", "state", "limit", "offset"), prefix="attr.")
    ci_class = request.query.get("class")
    if ci_class is not None and ci_class not in CI_CLASSES:
        raise APIError(400, f"unknown class {ci_class!r}; classes are {', '.join(CI_CLASSES)}",
                       parameter="class")
    state = request.query.get("state", "active")
    if state not in STATES:
        raise APIError(400, f"state must be one of {', '.join(STATES)}, got {state!r}", parameter="state")
    attributes: dict[str, Any] = {}
    for key, value in request.query.items():
        if key.startswith("attr."):
            name = key[len("attr."):]
            if not ATTR_NAME.match(name):
                raise APIError(400, f"{key!r}: attribute names are lower-case letters, digits, '_' "
                                    "and '.', starting with a letter", parameter=key)
            if name in attributes:
                raise APIError(400, f"{key} is given twice; filter on one value per attribute",
                               parameter=key)
            attributes[name] = _filter_value(key, value)
    limit = _int_param(request, "limit", 100, 1, MAX_LIST_LIMIT)
    offset = _int_param(request, "offset", 0, 0, None)
    if offset > MAX_OFFSET:
        raise APIError(400, f"offset must be at most {MAX_OFFSET}, got {offset}", parameter="offset")

    store = request.config_dict[STORE_KEY]
    cis = await call_store(request, store.list_cis, ci_class=ci_class, attributes=attributes or None,
                           state=None if state == "all" else state, limit=limit, offset=offset)
    items = [CISummary(c.ci_id, c.ci_class, c.state, c.first_seen, c.last_seen,
                       {k: v.value for k, v in sorted(c.attributes.items())}) for c in cis]
    return json_response(CIList(items, len(items), limit, offset,
                                offset + len(items) if len(items) == limit else None))


@routes.get("/api/v1/cis/{ci_id}")
async def show_ci(request: web.Request) -> web.Response:
    _reject_unknown(request, ("as_of",))
    ci_id = _ci_id(request)
    as_of = _time_param(request, "as_of")
    store = request.config_dict[STORE_KEY]
    if as_of is None:
        ci = await call_store(request, store.get_ci, ci_id)
        if ci is None:
            raise _not_found(ci_id)
        rels = await call_store(request, store.relationships, ci_id, "both")
        return json_response(_detail(ci, rels, None))

    ci = await call_store(request, store.ci_as_of, ci_id, as_of)
    if ci is None:
        if await call_store(request, store.get_ci, ci_id) is None:
            raise _not_found(ci_id)
        raise APIError(404, f"CI {ci_id} did not exist yet at {as_of.isoformat()}; "
                            "ask for a later as_of or omit it for the current state",
                       ci_id=ci_id, as_of=as_of.isoformat())
    rels = await call_store(request, store.relationships, ci_id, "both")
    rels = [r for r in rels if r.first_seen <= as_of]
    return json_response(_detail(ci, rels, as_of))


@routes.get("/api/v1/cis/{ci_id}/history")
async def ci_history(request: web.Request) -> web.Response:
    _reject_unknown(request, ("name", "since", "until", "limit"))
    ci_id = _ci_id(request)
    since = _time_param(request, "since")
    until = _time_param(request, "until")
    if since and until and since > until:
        raise APIError(400, f"since ({since.isoformat()}) is after until ({until.isoformat()})",
                       parameter="since")
    limit = _int_param(request, "limit", 1000, 1, MAX_HISTORY_LIMIT)
    name = request.query.get("name") or None
    store = request.config_dict[STORE_KEY]
    if await call_store(request, store.get_ci, ci_id) is None:
        raise _not_found(ci_id)
    rows = await call_store(request, store.history, ci_id, name=name, since=since, until=until, limit=limit)
    return json_response(HistoryList(ci_id, [_history_row(r) for r in rows], len(rows), limit))


@routes.get("/api/v1/drift")
async def list_drift(request: web.Request) -> web.Response:
    _reject_unknown(request, ("ci", "since", "until", "limit"))
    ci_id = request.query.get("ci")
    if ci_id is not None and not CI_ID.match(ci_id):
        raise APIError(400, f"ci must be a CI id (32 lower-case hex digits), got {ci_id!r}; "
                            "find ids with GET /api/v1/cis", parameter="ci")
    since = _time_param(request, "since")
    until = _time_param(request, "until")
    if since and until and since > until:
        raise APIError(400, f"since ({since.isoformat()}) is after until ({until.isoformat()})",
                       parameter="since")
    limit = _int_param(request, "limit", 1000, 1, MAX_HISTORY_LIMIT)
    store = request.config_dict[STORE_KEY]
    events = await call_store(request, store.drift_events, ci_id=ci_id, since=since, until=until, limit=limit)
    return json_response(DriftList([_drift(e) for e in events], len(events), limit))


def _drift(e: DriftEvent) -> DriftOut:
    return DriftOut(e.drift_id, e.ci_id, e.ci_class, e.attribute, e.before, e.after, e.related_ci,
                    _provenance(e.provenance), e.recorded_at, e.disposition, e.record)


# -- the OpenAPI declaration (collector.openapi) --------------------------------------------------
def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


_CI_ID_PARAM = _param("ci_id", "path", {"type": "string"}, "a CI id: 32 lower-case hex digits")
_TIME = {"type": "string", "format": "date-time"}
_SINCE = _param("since", "query", _TIME, "observed at or after (ISO 8601)")
_UNTIL = _param("until", "query", _TIME, "observed at or before (ISO 8601)")
_BAD = error("a parameter is malformed or out of range (it is named)")

OPENAPI = {
    "paths": {
        "/api/v1/cis": {"get": {
            "summary": "list CIs, filtered",
            "description": "Also attr.<name>=<value> filters (JSON values: 8192 is a number, null means absent).",
            "parameters": [
                _param("class", "query", {"enum": list(CI_CLASSES)}, "CI class"),
                _param("state", "query", {"enum": list(STATES)}, "active (default), retired or all"),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}, "page size"),
                _param("offset", "query", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "CIs to skip"),
            ],
            "responses": {"200": json_body("CIList", "a page of CIs"), "400": _BAD},
        }},
        "/api/v1/cis/{ci_id}": {"get": {
            "summary": "one CI with provenance, identifiers and relationships",
            "parameters": [_CI_ID_PARAM, _param("as_of", "query", _TIME, "show it as it stood then")],
            "responses": {"200": json_body("CIDetail", "the CI"), "400": _BAD,
                          "404": error("no such CI, or it did not exist yet at as_of")},
        }},
        "/api/v1/cis/{ci_id}/history": {"get": {
            "summary": "a CI's change records",
            "parameters": [_CI_ID_PARAM, _param("name", "query", {"type": "string"}, "attribute or relation"),
                           _SINCE, _UNTIL,
                           _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_LIMIT},
                                  "most records")],
            "responses": {"200": json_body("HistoryList", "the records, oldest first"), "400": _BAD,
                          "404": error("no such CI")},
        }},
        "/api/v1/drift": {"get": {
            "summary": "drift events of tracked attributes and sets",
            "parameters": [_param("ci", "query", {"type": "string"}, "a CI id (the CI or its member)"),
                           _SINCE, _UNTIL,
                           _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY_LIMIT},
                                  "most events")],
            "responses": {"200": json_body("DriftList", "drift events, oldest first"), "400": _BAD},
        }},
    },
    "schemas": (CIList, CIDetail, HistoryList, DriftList),
}
