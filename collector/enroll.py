"""POST /api/v1/enroll: an agent or a scanner trades a one-time enrollment token for its own credential.

    create_enrollment_token(store, name, uses, expires_at)   the admin side (`fleetgraph enroll-token`)
    setup(app)                                              routes and the per-app attempt limiter

The request carries no bearer token: the enrollment token is in the JSON body, with `kind`
("agent", the default, so agents that predate scanners enroll unchanged, or "scanner") and the
hostname. An agent sends its `agent_id` (a UUID) and gets an API token of role `agent` bound to
source id = agent id, so it may only submit its own reports. A scanner sends its `scanner_id` (a
name: letters, digits, '.', '_', '-') and gets a token of role `scanner` that may only submit
nmap/snmp/ssh reports whose source.id starts with "<scanner_id>/" (`collector.auth`).
Enrolling the same id again rotates: its earlier credential is revoked in the same transaction.
Enrollment tokens, like API tokens, are stored only as their sha256 and never logged.

Refused tokens (unknown 401; expired, revoked, used up 403) cost the client address one unit of a
small token bucket; when it is empty the endpoint answers 429 before looking at the body, which
makes guessing slow without getting in the way of a fleet enrolling from behind one NAT address.
Malformed requests are 400 and cost nothing: they can never succeed.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from cmdb.store import EnrollmentRefused, Store
from collector.api import STORE_KEY, APIError, call_store, json_response
from collector.auth import hash_token
from collector.openapi import error, json_body
from collector.peers import client_address
from collector.roles import AGENT, ROLES, SCANNER, SCANNER_SOURCE_KINDS, scanner_binding
from collector.timeouts import body_received

log = logging.getLogger("fleetgraph.collector.enroll")

routes = web.RouteTableDef()

ENROLL_PATH = "/api/v1/enroll"
AGENT_ROLE = AGENT
KINDS = ("agent", "scanner")
MAX_BODY_BYTES = 4096
MAX_USES = 1_000_000
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
# No "/" (it separates the scanner id from the protocol in source ids) and no ":".
SCANNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
assert AGENT_ROLE in ROLES and SCANNER in ROLES


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    enrollment_token: Annotated[str, msgspec.Meta(max_length=256)]
    hostname: Annotated[str, msgspec.Meta(max_length=253)]
    kind: Literal["agent", "scanner"] = "agent"
    agent_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    scanner_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class Enrolled(msgspec.Struct, omit_defaults=True):
    """The answer: the credential (shown once) and what it may write."""
    kind: Literal["agent", "scanner"]
    source_id: str  # agent: the agent id; scanner: the scanner id (its sources are "<scanner_id>/...")
    token: str
    token_name: str
    role: str
    agent_id: str | None = None
    scanner_id: str | None = None
    source_kinds: list[str] | None = None


_decode_request = msgspec.json.Decoder(EnrollRequest).decode


def create_enrollment_token(store: Store, name: str, uses: int = 1, expires_at: datetime | None = None) -> str:
    """Create an enrollment token good for `uses` enrollments; return it in plain text (the only time)."""
    if not name or not name.strip():
        raise ValueError("an enrollment token needs a name (it is how you list and revoke it)")
    if not 1 <= uses <= MAX_USES:
        raise ValueError(f"uses must be between 1 and {MAX_USES}, not {uses}")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must carry a timezone")
    token = secrets.token_urlsafe(32)
    store.add_enrollment_token(hash_token(token), name, uses, expires_at)
    return token


class FailedAttemptLimiter:
    """Per-address token bucket of refused enrollment attempts: `burst` refusals at once, then one
    more every `refill_seconds`. In memory, per process, bounded to `max_addresses` entries."""

    def __init__(self, burst: int = 10, refill_seconds: float = 30.0, max_addresses: int = 10_000,
                 clock=time.monotonic):
        self.burst, self.refill_seconds, self.max_addresses = burst, refill_seconds, max_addresses
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (units left, as of)

    def _level(self, address: str, now: float) -> float:
        units, since = self._buckets.get(address, (self.burst, now))
        return min(self.burst, units + (now - since) / self.refill_seconds)

    def retry_after(self, address: str) -> float | None:
        """Seconds until this address may try again, or None when it may try now."""
        level = self._level(address, self._clock())
        return None if level >= 1 else (1 - level) * self.refill_seconds

    def refused(self, address: str) -> None:
        now = self._clock()
        left = max(0.0, self._level(address, now) - 1)
        self._buckets.pop(address, None)  # re-insert last: the dict is ordered oldest first
        self._buckets[address] = (left, now)
        if len(self._buckets) > self.max_addresses:
            full = [a for a in self._buckets if self._level(a, now) >= self.burst]
            for a in full or list(self._buckets)[: len(self._buckets) - self.max_addresses]:
                del self._buckets[a]


LIMITER_KEY = web.AppKey("enroll_limiter", FailedAttemptLimiter)


def setup(app: web.Application) -> None:
    """Add the enrollment route and its attempt limiter to the collector app."""
    app[LIMITER_KEY] = FailedAttemptLimiter()
    app.add_routes(routes)


async def _read_small_body(request: web.Request) -> bytes:
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type") or "none"
        raise APIError(415, f"Content-Type must be application/json (got {given}); send "
                            '{"enrollment_token": ..., "agent_id": ..., "hostname": ...}',
                       supported=["application/json"])
    if request.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        raise APIError(415, "send the enrollment request uncompressed (no Content-Encoding)")
    too_large = APIError(413, f"enrollment request larger than {MAX_BODY_BYTES} bytes; it holds three "
                              "short strings", limit=MAX_BODY_BYTES)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise too_large
    except web.RequestPayloadError as exc:
        raise APIError(400, f"request body is malformed or was cut off ({exc}); send it again") from None
    body_received(request)
    return bytes(body)


def parse_enroll_request(body: bytes) -> EnrollRequest:
    """The validated request, agent_id in canonical form; APIError 400 naming the field otherwise."""
    if not body.strip():
        raise APIError(400, 'empty body: send {"enrollment_token": ..., "agent_id": ..., "hostname": ...}')
    try:
        req = _decode_request(body)
    except msgspec.ValidationError as exc:
        raise APIError(400, f"invalid enrollment request: {exc}", rule="schema") from None
    except msgspec.DecodeError as exc:
        raise APIError(400, f"enrollment request is not valid JSON: {exc}", rule="json") from None
    if not _TOKEN.match(req.enrollment_token):
        raise APIError(400, "enrollment_token is malformed: paste the whole token printed by "
                            "'fleetgraph enroll-token create'", field="enrollment_token", rule="format")
    if not _HOSTNAME.match(req.hostname):
        raise APIError(400, "hostname must be 1 to 253 letters, digits, '.', '-' or '_', starting with a "
                            "letter or digit", field="hostname", rule="hostname")
    if req.kind == "scanner":
        return EnrollRequest(req.enrollment_token, req.hostname, "scanner", scanner_id=_scanner_id(req))
    if req.scanner_id is not None:
        raise APIError(400, 'scanner_id is for kind "scanner"; an agent sends agent_id (or set "kind": '
                            '"scanner")', field="scanner_id", rule="kind")
    if req.agent_id is None:
        raise APIError(400, 'agent_id is required (the agent\'s UUID); a scanner sends "kind": "scanner" '
                            'and scanner_id', field="agent_id", rule="required")
    try:
        agent_id = str(uuid.UUID(req.agent_id))
    except ValueError:
        raise APIError(400, "agent_id must be a UUID (the agent's id from its state folder)",
                       field="agent_id", rule="uuid") from None
    return EnrollRequest(req.enrollment_token, req.hostname, "agent", agent_id=agent_id)


def _scanner_id(req: EnrollRequest) -> str:
    if req.agent_id is not None:
        raise APIError(400, 'agent_id is for kind "agent"; a scanner sends scanner_id',
                       field="agent_id", rule="kind")
    if req.scanner_id is None:
        raise APIError(400, 'scanner_id is required with "kind": "scanner" (a name such as dc1-scanner)',
                       field="scanner_id", rule="required")
    if not SCANNER_ID.match(req.scanner_id):
        raise APIError(400, "scanner_id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                            "letter or digit (no '/': it prefixes the scanner's source ids)",
                       field="scanner_id", rule="format")
    return req.scanner_id


def _refusal_error(exc: EnrollmentRefused) -> APIError:
    ask = "ask an admin for a new one ('fleetgraph enroll-token create')"
    if exc.reason == "unknown":
        return APIError(401, f"enrollment token not recognized: check that it was copied whole, or {ask}",
                        reason=exc.reason)
    what = {"expired": "has expired", "revoked": "was revoked", "used_up": "has no uses left"}[exc.reason]
    return APIError(403, f"enrollment token {exc.name!r} {what}: {ask}", reason=exc.reason)


@routes.post(ENROLL_PATH)
async def post_enroll(request: web.Request) -> web.Response:
    limiter = request.app[LIMITER_KEY]
    address = client_address(request)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise APIError(429, f"too many refused enrollment attempts from {address}; retry in {wait:.0f}s",
                       headers={"Retry-After": str(max(1, round(wait)))})
    req = parse_enroll_request(await _read_small_body(request))
    credential = secrets.token_urlsafe(32)
    if req.kind == "scanner":
        assert req.scanner_id is not None
        who, name, role, binding = f"scanner {req.scanner_id}", f"scanner-{req.scanner_id}", SCANNER, \
            scanner_binding(req.scanner_id)
        answer = Enrolled("scanner", req.scanner_id, credential, name, role, scanner_id=req.scanner_id,
                          source_kinds=list(SCANNER_SOURCE_KINDS))
    else:
        assert req.agent_id is not None
        who, name, role, binding = f"agent {req.agent_id}", f"agent-{req.agent_id}", AGENT_ROLE, req.agent_id
        answer = Enrolled("agent", req.agent_id, credential, name, role, agent_id=req.agent_id)
    store = request.config_dict[STORE_KEY]
    try:
        enrolled = await call_store(request, store.enroll, hash_token(req.enrollment_token), datetime.now(UTC),
                                    hash_token(credential), name, role, binding)
    except EnrollmentRefused as exc:
        limiter.refused(address)
        log.warning("enrollment of %s (%r) from %s refused: %s", who, req.hostname, address, exc)
        raise _refusal_error(exc) from None
    except ValueError as exc:  # a live token that is not this agent's credential holds its name
        raise APIError(409, f"cannot enroll {who}: {exc}") from None
    log.info("%s (%r) enrolled from %s with enrollment token %r%s", who, req.hostname, address,
             enrolled.enrollment_token, "; its previous credential is revoked" if enrolled.revoked_previous else "")
    return json_response(answer, status=201, headers={"Cache-Control": "no-store"})


OPENAPI = {
    "paths": {ENROLL_PATH: {"post": {
        "summary": "trade a one-time enrollment token for an agent's or a scanner's own credential",
        "description": "No bearer token: the enrollment token is in the body. kind \"agent\" (default) needs "
                       "agent_id (a UUID); kind \"scanner\" needs scanner_id. Refused attempts are limited "
                       "per client address (429).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref":
                        "#/components/schemas/EnrollRequest"}}}},
        "responses": {
            "201": json_body("Enrolled", "enrolled: the credential, shown this once"),
            "400": error("not JSON, a missing, mistyped or unknown field, a malformed id or hostname"),
            "401": error("enrollment token not recognized (reason: unknown)"),
            "403": error("enrollment token expired, revoked or used up (reason)"),
            "409": error("a live token that is not this agent's or scanner's credential holds its name"),
            "413": error("body over 4 KiB"),
            "415": error("Content-Type not JSON, or a Content-Encoding"),
        },
    }}},
    "schemas": (EnrollRequest, Enrolled),
}
