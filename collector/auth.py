"""Bearer-token authentication, the route access table, and source binding.

Tokens are created once (`secrets.token_urlsafe(32)`), shown to the operator once, and stored only
as their sha256: a stolen database does not hand out working tokens, and looking a token up by its
hash needs no constant-time compare. Tokens are never logged; only the token *name* is. Every
request looks its token up in the store (no cache), so a revoked or expired token is refused at
its very next request.

`access_control` is the middleware that enforces `collector.roles.ROUTE_ACCESS` for every
request: public routes and unknown paths cost the client address's anonymous rate limit; other
routes need a token of a role the table lists (401 without a valid one, 403 with the wrong role)
and cost the token's rate limit. A route missing from the table is refused with a 500 that names
it: fail closed.

Source binding (`check_source_binding`): an enrolled agent's credential may only submit reports
of source kind `agent` with its own id; an enrolled scanner's credential only of kind
nmap/snmp/ssh whose id starts with "<scanner id>/". Tokens made with `fleetgraph token create`
are unbound (role scanner cannot be made that way).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from cmdb.store import Store, TokenPrincipal
from collector.api import BOUND_SOURCE, CONFIG_KEY, PRINCIPAL, STORE_KEY, APIError, call_store
from collector.logs import redact
from collector.peers import client_address, is_loopback
from collector.ratelimit import spend
from collector.roles import (
    ADMIN,
    AGENT,
    ROLES,
    SCANNER,
    SCANNER_SOURCE_KINDS,
    Access,
    bound_scanner_id,
    route_access,
)

log = logging.getLogger("fleetgraph.collector.auth")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fleetgraph"'}
METRICS_AUTH_MODES = ("loopback", "token")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, name: str, role: str, expires_at: datetime | None = None) -> str:
    """Create an API token and return it in plain text: the only time it is ever visible."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == SCANNER:
        raise ValueError("a scanner credential is bound to its scanner id: create an enrollment token "
                         "('fleetgraph enroll-token create') and enroll the scanner with kind \"scanner\"")
    if not name or not name.strip():
        raise ValueError("a token needs a name (it is how you list and revoke it)")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must carry a timezone")
    token = secrets.token_urlsafe(32)
    store.add_token(hash_token(token), name, role, expires_at)
    return token


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise APIError(401, "authentication required: send 'Authorization: Bearer <token>' "
                            "(create one with 'fleetgraph token create')", headers=_CHALLENGE)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise APIError(401, "unsupported Authorization header: send 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": 'Bearer realm="fleetgraph", error="invalid_request"'})
    return token


async def _principal(request: web.Request) -> TokenPrincipal:
    """The valid token's principal, or APIError 401."""
    token = _bearer(request)
    if len(token) > 512 or not token.isascii():  # no token we issue looks like that: skip the store
        principal = None
    else:
        store = request.config_dict[STORE_KEY]
        principal = await call_store(request, store.token_principal, hash_token(token), datetime.now(UTC))
    if principal is None:
        raise APIError(401, "invalid, expired or revoked token: ask an admin for a new one "
                            "('fleetgraph token create')",
                       headers={"WWW-Authenticate": 'Bearer realm="fleetgraph", error="invalid_token"'})
    request[PRINCIPAL] = (principal.name, principal.role)
    request[BOUND_SOURCE] = principal.source_id
    return principal


def _forbidden(request: web.Request, name: str, role: str, allowed: frozenset[str] | set[str]) -> APIError:
    log.info("token %r (role %s) refused on %s %s", name, role, request.method, request.path)
    return APIError(403, f"token {name!r} has role {role!r}; {request.method} {request.path} "
                         f"needs one of: {', '.join(sorted(allowed))}",
                    role=role, required=sorted(allowed))


async def authenticate(request: web.Request, roles: tuple[str, ...]) -> tuple[str, str]:
    """(token name, role) of the caller, or APIError 401 (no/bad token) / 403 (wrong role).
    Reuses the principal the access middleware found, if any: one store lookup per request."""
    if PRINCIPAL in request:
        name, role = request[PRINCIPAL]
    else:  # a self-authenticated route (collector.roles.Access): the rate limits apply here
        try:
            principal = await _principal(request)
        except APIError as exc:
            if exc.status == 401:
                spend(request, "anonymous", client_address(request))
            raise
        name, role = principal.name, principal.role
        spend(request, "token", name)
    if role != ADMIN and role not in roles:
        raise _forbidden(request, name, role, set(roles) | {ADMIN})
    return name, role


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Decorate a handler so that only tokens of these roles (and admin) reach it. The access table
    (collector.roles.ROUTE_ACCESS) is the rule for every route; this is a second, narrower check."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            await authenticate(request, roles)
            return await handler(request)

        return guarded

    return decorate


def _open_without_token(request: web.Request, access: Access) -> bool:
    if access.public:
        return True
    if access.loopback_open:
        mode = request.config_dict[CONFIG_KEY].metrics_auth
        return mode == "loopback" and is_loopback(client_address(request))
    return False


@web.middleware
async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Enforce ROUTE_ACCESS (see the module docstring), with the token and anonymous rate limits."""
    match = request.match_info
    if match.http_exception is not None:  # 404 / 405: nothing to guard, but the address pays
        spend(request, "anonymous", client_address(request))
        return await handler(request)
    template = match.route.resource.canonical if match.route.resource is not None else request.path
    access = route_access(request.method, template)
    if access is None:
        log.error("route %s %s has no rule in collector.roles.ROUTE_ACCESS: refused", request.method, template)
        raise APIError(500, f"{request.method} {template} has no access rule in the collector "
                            "(collector.roles.ROUTE_ACCESS), so it is refused; report this to its developers")
    if access.self_authenticated:
        return await handler(request)
    if _open_without_token(request, access):
        spend(request, "anonymous", client_address(request))
        return await handler(request)
    try:
        principal = await _principal(request)
    except APIError as exc:
        if exc.status == 401:
            spend(request, "anonymous", client_address(request))  # 429 once an address keeps guessing
        raise
    if not access.allows(principal.role):
        raise _forbidden(request, principal.name, principal.role, access.roles)
    spend(request, "token", principal.name)
    return await handler(request)


def check_source_binding(request: web.Request, source_kind: str, source_id: str) -> None:
    """403 unless the caller's credential may write as this source (see the module docstring)."""
    name, role = request[PRINCIPAL]
    bound = request.get(BOUND_SOURCE)
    if role == SCANNER:
        _check_scanner_source(name, bound, source_kind, source_id)
        return
    if bound is None or (source_kind == AGENT and source_id == bound):
        return
    log.warning("token %r (bound to agent %s) refused a report of source %s/%r",
                name, bound, source_kind, redact(source_id[:80]))  # the sender chose it: it may hold anything
    raise APIError(403, f"token {name!r} is the credential of agent {bound}: it may only submit reports "
                        f"with source.kind 'agent' and source.id {bound!r}; this report is from "
                        f"{source_kind}/{source_id!r}. Each agent enrolls for its own credential "
                        "('fleetgraph agent enroll')",
                   field="source.id", rule="source_binding", bound_source_id=bound)


def _check_scanner_source(name: str, bound: str | None, source_kind: str, source_id: str) -> None:
    scanner_id = bound_scanner_id(bound)
    if scanner_id is None:
        raise APIError(403, f"token {name!r} has role 'scanner' but is bound to no scanner id, so it may "
                            "submit nothing: enroll the scanner with an enrollment token and kind \"scanner\"",
                       field="source.id", rule="source_binding")
    prefix = f"{scanner_id}/"
    if source_kind in SCANNER_SOURCE_KINDS and source_id.startswith(prefix) and len(source_id) > len(prefix):
        return
    log.warning("token %r (scanner %s) refused a report of source %s/%r", name, scanner_id, source_kind,
                redact(source_id[:80]))
    raise APIError(403, f"token {name!r} is the credential of scanner {scanner_id!r}: it may only submit "
                        f"reports with source.kind {', '.join(SCANNER_SOURCE_KINDS)} and a source.id "
                        f"starting with {prefix!r}; this report is from {source_kind}/{source_id!r}",
                   field="source.id", rule="source_binding", bound_scanner_id=scanner_id)
