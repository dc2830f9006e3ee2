"""Bearer-token authentication and roles.

Tokens are created once (`secrets.token_urlsafe(32)`), shown to the operator once, and stored only
as their sha256: a stolen database does not hand out working tokens, and looking a token up by its
hash needs no constant-time compare. Tokens are never logged; only the token *name* is.

Roles: `agent` may POST reports, `reader` may GET queries, `admin` may do everything.

An enrolled agent's credential is bound to its source id (`collector.enroll`): it may only submit
reports of that source (`check_source_binding`). Tokens made with `fleetgraph token create` are
unbound.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from cmdb.store import Store
from collector.api import BOUND_SOURCE, PRINCIPAL, STORE_KEY, APIError, call_store
from collector.roles import ADMIN, ROLES

log = logging.getLogger("fleetgraph.collector.auth")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fleetgraph"'}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, name: str, role: str, expires_at: datetime | None = None) -> str:
    """Create an API token and return it in plain text: the only time it is ever visible."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
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


async def authenticate(request: web.Request, roles: tuple[str, ...]) -> tuple[str, str]:
    """(token name, role) of the caller, or APIError 401 (no/bad token) / 403 (wrong role)."""
    token = _bearer(request)
    store = request.config_dict[STORE_KEY]
    principal = await call_store(request, store.token_principal, hash_token(token), datetime.now(UTC))
    if principal is None:
        raise APIError(401, "invalid, expired or revoked token: ask an admin for a new one "
                            "('fleetgraph token create')",
                       headers={"WWW-Authenticate": 'Bearer realm="fleetgraph", error="invalid_token"'})
    name, role = principal.name, principal.role
    if role != ADMIN and role not in roles:
        log.info("token %r (role %s) refused on %s %s", name, role, request.method, request.path)
        raise APIError(403, f"token {name!r} has role {role!r}; {request.method} {request.path} "
                            f"needs one of: {', '.join(sorted(set(roles) | {ADMIN}))}",
                       role=role, required=sorted(set(roles) | {ADMIN}))
    request[PRINCIPAL] = (name, role)
    request[BOUND_SOURCE] = principal.source_id
    return name, role


def check_source_binding(request: web.Request, source_kind: str, source_id: str) -> None:
    """403 unless the caller's token may write as this source: a bound token (an enrolled
    agent's credential) only as source kind `agent` with its own id; an unbound token as any."""
    bound = request.get(BOUND_SOURCE)
    if bound is None or (source_kind == "agent" and source_id == bound):
        return
    name, _role = request[PRINCIPAL]
    log.warning("token %r (bound to agent %s) refused a report of source %s/%r",
                name, bound, source_kind, source_id[:80])
    raise APIError(403, f"token {name!r} is the credential of agent {bound}: it may only submit reports "
                        f"with source.kind 'agent' and source.id {bound!r}; this report is from "
                        f"{source_kind}/{source_id!r}. Each agent enrolls for its own credential "
                        "('fleetgraph agent enroll')",
                   field="source.id", rule="source_binding", bound_source_id=bound)


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Decorate a handler so that only tokens of these roles (and admin) reach it."""
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
