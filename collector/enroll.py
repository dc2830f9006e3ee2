"""POST /api/v1/enroll: an agent trades a one-time enrollment token for its own credential.

    create_enrollment_token(store, name, uses, expires_at)   the admin side (`fleetgraph enroll-token`)
    setup(app)                                              routes and the per-app attempt limiter

The request carries no bearer token: the enrollment token is in the JSON body, with the agent's
id (a UUID) and hostname. The answer (201) is an ordinary API token of role `agent`, bound to
source id = agent id, so the agent may only submit its own reports (`collector.auth`). Enrolling
an agent id again rotates: its earlier credential is revoked in the same transaction. Enrollment
tokens, like API tokens, are stored only as their sha256 and never logged.

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
from typing import Annotated

import msgspec
from aiohttp import web

from cmdb.store import EnrollmentRefused, Store
from collector.api import STORE_KEY, APIError, call_store, json_response
from collector.auth import hash_token
from collector.roles import ROLES

log = logging.getLogger("fleetgraph.collector.enroll")

routes = web.RouteTableDef()

ENROLL_PATH = "/api/v1/enroll"
AGENT_ROLE = "agent"
MAX_BODY_BYTES = 4096
MAX_USES = 1_000_000
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
assert AGENT_ROLE in ROLES


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True):
    enrollment_token: Annotated[str, msgspec.Meta(max_length=256)]
    agent_id: Annotated[str, msgspec.Meta(max_length=64)]
    hostname: Annotated[str, msgspec.Meta(max_length=253)]


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
    try:
        agent_id = str(uuid.UUID(req.agent_id))
    except ValueError:
        raise APIError(400, "agent_id must be a UUID (the agent's id from its state folder)",
                       field="agent_id", rule="uuid") from None
    if not _HOSTNAME.match(req.hostname):
        raise APIError(400, "hostname must be 1 to 253 letters, digits, '.', '-' or '_', starting with a "
                            "letter or digit", field="hostname", rule="hostname")
    return EnrollRequest(req.enrollment_token, agent_id, req.hostname)


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
    address = request.remote or "unknown"
    wait = limiter.retry_after(address)
    if wait is not None:
        raise APIError(429, f"too many refused enrollment attempts from {address}; retry in {wait:.0f}s",
                       headers={"Retry-After": str(max(1, round(wait)))})
    req = parse_enroll_request(await _read_small_body(request))
    credential = secrets.token_urlsafe(32)
    name = f"agent-{req.agent_id}"
    store = request.config_dict[STORE_KEY]
    try:
        enrolled = await call_store(request, store.enroll, hash_token(req.enrollment_token), datetime.now(UTC),
                                    hash_token(credential), name, AGENT_ROLE, req.agent_id)
    except EnrollmentRefused as exc:
        limiter.refused(address)
        log.warning("enrollment of agent %s (%r) from %s refused: %s", req.agent_id, req.hostname, address, exc)
        raise _refusal_error(exc) from None
    except ValueError as exc:  # a live token that is not this agent's credential holds its name
        raise APIError(409, f"cannot enroll agent {req.agent_id}: {exc}") from None
    log.info("agent %s (%r) enrolled from %s with enrollment token %r%s", req.agent_id, req.hostname, address,
             enrolled.enrollment_token, "; its previous credential is revoked" if enrolled.revoked_previous else "")
    return json_response({"agent_id": req.agent_id, "source_id": req.agent_id, "token": credential,
                          "token_name": name, "role": AGENT_ROLE},
                         status=201, headers={"Cache-Control": "no-store"})
