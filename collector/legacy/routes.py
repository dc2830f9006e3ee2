"""POST /ocsinventory: the OCS Inventory / FusionInventory agent endpoint, a translator in front of
the native ingest.

    PROLOG     -> <RESPONSE>SEND</RESPONSE> with PROLOG_FREQ (nothing is stored)
    INVENTORY  -> the XML mapped to a native report (collector.legacy.mapping), validated and
                  stored exactly like POST /api/v1/reports (same body caps, `check_report`,
                  `put_report` synced before the reply, same reconcile worker), then
                  <RESPONSE>no_account_update</RESPONSE>

Authentication: HTTP Basic, any user name, the password a fleetgraph API token of role `agent`
(or `admin`); `Authorization: Bearer <token>` works too. Both agents send credentials only after
a 401 that carries `WWW-Authenticate: Basic realm=""`. The realm is empty on purpose: the agents'
HTTP client (LWP) only answers a challenge whose realm is the one it was configured with, and
the OCS agent's default `--realm` is empty (Fusion takes the realm from the challenge).

Every refusal is a zlib XML reply with the reason in the status line (what the agents log), and
happens before the store is touched: a refused request stores nothing. An inventory sent twice is
stored once (its report_id is derived from the DEVICEID and a digest of the XML).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cmdb.report import ReportError, decode_report, encode_report
from cmdb.store import ReportConflict
from collector.api import BOUND_SOURCE, CONFIG_KEY, PRINCIPAL, STORE_KEY, WORKER_KEY, APIError, call_store
from collector.auth import authenticate, check_source_binding
from collector.ingest import _Limits, _read_body
from collector.legacy.mapping import detect_source_kind, device_id_problem, inventory_report_id, map_inventory
from collector.legacy.protocol import LegacyError, error_reply, inflate_capped, inventory_reply, prolog_reply
from collector.legacy.xml import LegacyRequest, XMLRefused, parse_request
from collector.metrics import report_received
from collector.ratelimit import spend

log = logging.getLogger("fleetgraph.collector.legacy")

routes = web.RouteTableDef()

OCS_PATH = "/ocsinventory"  # the OCS agent's default; FusionInventory adds it to a server URL without a path
REALM = ""
BASIC_CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
QUERIES = ("PROLOG", "INVENTORY")
_HOW_TO_AUTHENTICATE = ("configure the agent with a user name (any) and as password a fleetgraph API token of "
                        "role agent ('fleetgraph token create --role agent'): fusioninventory-agent --user x "
                        "--password TOKEN; ocsinventory-agent takes both base64-encoded: --user $(printf x | "
                        "base64) --password $(printf TOKEN | base64), and no --realm (docs/legacy-agents.md)")


def _basic_password(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise LegacyError(401, f"the Basic credentials are not base64; {_HOW_TO_AUTHENTICATE}",
                          BASIC_CHALLENGE) from None
    _user, sep, password = decoded.decode("utf-8", errors="replace").partition(":")
    if not sep or not password.strip():
        raise LegacyError(401, f"the Basic credentials carry no password; {_HOW_TO_AUTHENTICATE}",
                          BASIC_CHALLENGE)
    return password.strip()


async def authenticate_agent(request: web.Request) -> None:
    """Basic (password = API token) or Bearer, checked by collector.auth.authenticate, which sets
    the caller's principal and source binding on `request`; LegacyError 401/403 otherwise."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        token = _basic_password(credentials)
        # The token in the envelope collector.auth reads: one place decides who may write.
        checked = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
    elif scheme.lower() == "bearer":
        checked = request
    else:
        raise LegacyError(401, f"authentication required: {_HOW_TO_AUTHENTICATE}", BASIC_CHALLENGE)
    try:
        await authenticate(checked, ("agent",))
    except APIError as exc:
        if exc.status == 401:
            raise LegacyError(401, f"{exc.message}; {_HOW_TO_AUTHENTICATE}", BASIC_CHALLENGE) from None
        raise LegacyError(exc.status, exc.message, exc.headers) from None
    if checked is not request:
        request[PRINCIPAL] = checked[PRINCIPAL]
        request[BOUND_SOURCE] = checked[BOUND_SOURCE]


def _read_request(body: bytes, limit: int) -> tuple[bytes, LegacyRequest]:
    """Decompress and parse (CPU work, run off the event loop)."""
    xml = inflate_capped(body, limit)
    try:
        return xml, parse_request(xml)
    except XMLRefused as exc:
        raise LegacyError(exc.status, exc.message) from None


def _check_request(legacy: LegacyRequest) -> str:
    """The query, or LegacyError naming what is missing or unknown."""
    problem = device_id_problem(legacy.device_id)
    if problem is not None:
        raise LegacyError(400, problem)
    if legacy.query not in QUERIES:
        given = "no QUERY" if legacy.query is None else f"QUERY {legacy.query[:64]!r}"
        raise LegacyError(400, f"{given}: this collector answers {' and '.join(QUERIES)} requests "
                               "(inventory only: no deployment, network discovery or SNMP tasks)")
    if legacy.query == "INVENTORY" and legacy.content is None:
        raise LegacyError(400, "an INVENTORY request without CONTENT: send the agent's whole inventory")
    return legacy.query


def _build_report_body(legacy: LegacyRequest, kind: str, report_id: str,
                       user_agent: str | None) -> tuple[datetime, bytes]:
    """Map, encode and validate exactly as the native ingest validates (decode_report runs
    check_report); returns (collected_at, the report JSON to store)."""
    report = map_inventory(legacy, kind, report_id, datetime.now(UTC), user_agent)
    body = encode_report(report)
    try:
        decode_report(body)
    except ReportError as exc:
        raise LegacyError(400, f"the inventory cannot be stored: {exc.field}: {exc.rule}") from None
    return report.collected_at, body


async def _answer(request: web.Request) -> web.Response:
    started = time.perf_counter()
    config = request.config_dict[CONFIG_KEY]
    store = request.config_dict[STORE_KEY]
    await authenticate_agent(request)
    body = await _read_body(request, _Limits(config.max_body_bytes, config.max_report_bytes))
    xml, legacy = await call_store(request, _read_request, body, config.max_report_bytes)
    query = _check_request(legacy)
    assert legacy.device_id is not None
    user_agent = request.headers.get("User-Agent")
    kind = detect_source_kind(user_agent, request.headers.get("Content-Type"), legacy)
    check_source_binding(request, kind, legacy.device_id)
    if query == "PROLOG":
        return prolog_reply()

    spend(request, "source", f"{kind}/{legacy.device_id}")  # per device, whatever its token (as native ingest)
    report_id = inventory_report_id(kind, legacy.device_id, xml)
    if await call_store(request, store.report_head, report_id) is not None:
        log.info("%s inventory %s of %s received again: already stored", kind, report_id, legacy.device_id)
        report_received(request, kind, "duplicate", time.perf_counter() - started)
        return inventory_reply()
    collected_at, report_body = await call_store(request, _build_report_body, legacy, kind, report_id, user_agent)
    try:
        put = await call_store(request, store.put_report, report_id, kind, legacy.device_id,
                               collected_at, report_body, "full")
    except ReportConflict:  # the same inventory, stored meanwhile by a concurrent request
        put = None
    if put is None or not put.created:
        report_received(request, kind, "duplicate", time.perf_counter() - started)
        return inventory_reply()
    name, _role = request[PRINCIPAL]
    log.info("%s inventory %s of %s accepted: seq %d, %d bytes of XML, %d bytes of report (token %r)", kind,
             report_id, legacy.device_id, put.seq, len(xml), len(report_body), name)
    worker = request.config_dict.get(WORKER_KEY)
    if worker is not None:
        worker.wake()
    report_received(request, kind, "accepted", time.perf_counter() - started)
    return inventory_reply()


@routes.post(OCS_PATH)
@routes.post(OCS_PATH + "/")
async def post_agent_request(request: web.Request) -> web.Response:
    try:
        return await _answer(request)
    except (LegacyError, APIError) as exc:  # APIError: from the native ingest's body reader and auth
        if exc.status >= 500:
            log.error("agent request refused with %d: %s", exc.status, exc.message)
        return error_reply(exc.status, exc.message, exc.headers or None)


@routes.get(OCS_PATH)
@routes.get(OCS_PATH + "/")
async def get_agent_endpoint(request: web.Request) -> web.Response:
    return error_reply(405, f"{request.method} is not allowed on {request.path}: this is the OCS Inventory / "
                            "FusionInventory agent endpoint, agents POST zlib-compressed XML here "
                            "(see docs/legacy-agents.md)", {"Allow": "POST"})


def _xml_answer(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/x-compress": {"schema": {"type": "string", "format": "binary",
                                                              "description": "zlib-compressed XML <REPLY>"}}}}


_AGENT_REQUEST = {
    "summary": "an OCS Inventory / FusionInventory agent request (PROLOG or INVENTORY)",
    "description": "zlib-compressed XML <REQUEST> (Content-Type application/x-compress or "
                   "application/x-compress-zlib). Authentication: HTTP Basic after a `WWW-Authenticate: Basic` "
                   "challenge, any user name, the password an API token of role agent (or admin); "
                   "`Authorization: Bearer` works too. An INVENTORY is mapped to a native report (source kind "
                   "ocs or fusion) and stored like POST /api/v1/reports. Errors are zlib XML "
                   "<REPLY><RESPONSE>ERROR</RESPONSE>, with the reason in the HTTP status line. See "
                   "docs/legacy-agents.md.",
    "requestBody": {"required": True, "content": {"application/x-compress": {"schema": {
        "type": "string", "format": "binary", "description": "zlib-compressed XML <REQUEST>"}}}},
    "responses": {
        "200": _xml_answer("PROLOG: RESPONSE SEND and PROLOG_FREQ; INVENTORY: RESPONSE no_account_update "
                           "(stored durably, or already stored)"),
        "400": _xml_answer("malformed zlib or XML, a DTD or entities, no or bad DEVICEID, unknown QUERY"),
        "401": _xml_answer("no or bad credentials (WWW-Authenticate: Basic)"),
        "403": _xml_answer("the token's role, or its source binding, may not submit this"),
        "413": _xml_answer("over collector.max_body_bytes on the wire or max_report_bytes inflated, "
                           "or too many XML elements"),
    },
}
_ENDPOINT_INFO = {
    "summary": "not an API: answers 405 and says what the endpoint is",
    "responses": {"405": _xml_answer("agents POST here")},
}
OPENAPI = {"paths": {path: {"post": _AGENT_REQUEST, "get": _ENDPOINT_INFO} for path in (OCS_PATH, OCS_PATH + "/")}}
