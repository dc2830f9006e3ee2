"""The admin API: API tokens, enrollment tokens and the effective configuration (role admin).

    GET    /api/v1/tokens                      every token: name, role, binding, state (never the token)
    POST   /api/v1/tokens                      {"name", "role", "expires_at"?} -> 201 with the token, once
    DELETE /api/v1/tokens/{name}               revoke: the token's very next request is a 401
    GET    /api/v1/enrollment-tokens           every enrollment token: uses, expiry, state
    POST   /api/v1/enrollment-tokens           {"name", "uses"?, "ttl_seconds"? | "expires_at"?} -> 201, once
    DELETE /api/v1/enrollment-tokens/{name}    revoke (credentials already issued stay valid)
    GET    /api/v1/config                      the effective [collector] configuration

The same operations as `fleetgraph token ...` and `fleetgraph enroll-token ...`, for collectors
whose store file is not at hand. Every change is logged with the admin token's name. An admin
cannot revoke the token it is using (409): that is how an organisation locks itself out; use
another admin token or the CLI.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from collector.api import CONFIG_KEY, PRINCIPAL, STORE_KEY, APIError, call_store, json_response
from collector.auth import create_token
from collector.enroll import MAX_USES, create_enrollment_token
from collector.openapi import error, json_body
from collector.roles import ROLES, SCANNER, describe_binding
from collector.timeouts import body_received

log = logging.getLogger("fleetgraph.collector.admin")

routes = web.RouteTableDef()

MAX_BODY_BYTES = 4096
DEFAULT_ENROLL_TTL = timedelta(hours=24)
MAX_TTL_SECONDS = 366 * 24 * 3600
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)
CreatableRole = Literal[tuple(r for r in ROLES if r != SCANNER)]  # type: ignore[valid-type]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NAME_PATTERN)]


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    role: CreatableRole
    expires_at: datetime | None = None


class TokenCreated(msgspec.Struct):
    name: str
    role: str
    token: str  # shown this once
    expires_at: datetime | None


class TokenOut(msgspec.Struct):
    name: str
    role: str
    state: Literal["valid", "expired", "revoked"]
    may_write: str  # "any", "agent/<id>", "nmap|snmp|ssh/<scanner id>/*", or "none (refused)"
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenList(msgspec.Struct):
    items: list[TokenOut]


class Revoked(msgspec.Struct):
    name: str
    revoked: int


class EnrollmentTokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    uses: Annotated[int, msgspec.Meta(ge=1, le=MAX_USES)] = 1
    ttl_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_TTL_SECONDS)] | None = None
    expires_at: datetime | None = None


class EnrollmentTokenCreated(msgspec.Struct):
    name: str
    token: str  # shown this once
    uses: int
    expires_at: datetime


class EnrollmentTokenOut(msgspec.Struct):
    name: str
    state: Literal["valid", "expired", "revoked", "used_up"]
    uses: int
    max_uses: int
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class EnrollmentTokenList(msgspec.Struct):
    items: list[EnrollmentTokenOut]


async def _read_json(request: web.Request, shape: type, example: str):
    if request.content_type != "application/json":
        raise APIError(415, f"Content-Type must be application/json; send {example}",
                       supported=["application/json"])
    if request.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        raise APIError(415, "send the request uncompressed (no Content-Encoding)")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise APIError(413, f"request larger than {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES)
    body = bytearray()
    try:
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise APIError(413, f"request larger than {MAX_BODY_BYTES} bytes", limit=MAX_BODY_BYTES)
    except web.RequestPayloadError as exc:
        raise APIError(400, f"request body is malformed or was cut off ({exc}); send it again") from None
    body_received(request)
    try:
        return msgspec.json.decode(bytes(body), type=shape)
    except msgspec.ValidationError as exc:
        raise APIError(400, f"invalid request: {exc}; send {example}", rule="schema") from None
    except msgspec.DecodeError as exc:
        raise APIError(400, f"request is not valid JSON ({exc}); send {example}", rule="json") from None


def _future(when: datetime | None, field: str) -> datetime | None:
    if when is None:
        return None
    if when.tzinfo is None:
        raise APIError(400, f"{field} needs a time zone, e.g. 2031-12-31T00:00:00Z", field=field)
    if when <= datetime.now(UTC):
        raise APIError(400, f"{field} {when.isoformat()} is in the past", field=field)
    return when


def _admin(request: web.Request) -> str:
    return request[PRINCIPAL][0]


def _path_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not 1 <= len(name) <= 256:
        raise APIError(400, "a token name is 1 to 256 characters", parameter="name")
    return name


# -- API tokens ---------------------------------------------------------------------------------
@routes.get("/api/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    tokens = await call_store(request, request.config_dict[STORE_KEY].list_tokens)
    now = datetime.now(UTC)
    items = [TokenOut(t.name, t.role, "revoked" if t.revoked_at else
                      "expired" if t.expires_at and t.expires_at <= now else "valid",
                      describe_binding(t.role, t.source_id), t.created_at, t.expires_at, t.revoked_at)
             for t in tokens]
    return json_response(TokenList(items))


@routes.post("/api/v1/tokens")
async def post_token(request: web.Request) -> web.Response:
    req = await _read_json(request, TokenCreate, '{"name": "...", "role": "reader", "expires_at": null}')
    expires_at = _future(req.expires_at, "expires_at")
    store = request.config_dict[STORE_KEY]
    try:
        token = await call_store(request, create_token, store, req.name, req.role, expires_at)
    except ValueError as exc:  # a live token already has the name
        raise APIError(409, f"cannot create token {req.name!r}: {exc}") from None
    log.info("token %r (role %s) created by admin token %r", req.name, req.role, _admin(request))
    return json_response(TokenCreated(req.name, req.role, token, expires_at), status=201,
                         headers={"Cache-Control": "no-store"})


@routes.delete("/api/v1/tokens/{name}")
async def delete_token(request: web.Request) -> web.Response:
    name = _path_name(request)
    if name == _admin(request):
        raise APIError(409, f"token {name!r} is the one making this request: revoke it with another admin "
                            "token or 'fleetgraph token revoke', so that an admin is never locked out")
    revoked = await call_store(request, request.config_dict[STORE_KEY].revoke_token, name)
    if not revoked:
        raise APIError(404, f"no valid token named {name!r} (GET /api/v1/tokens lists them)", name=name)
    log.info("token %r revoked by admin token %r", name, _admin(request))
    return json_response(Revoked(name, revoked))


# -- enrollment tokens ------------------------------------------------------------------------------
@routes.get("/api/v1/enrollment-tokens")
async def list_enrollment_tokens(request: web.Request) -> web.Response:
    tokens = await call_store(request, request.config_dict[STORE_KEY].list_enrollment_tokens)
    now = datetime.now(UTC)
    items = [EnrollmentTokenOut(t.name, "revoked" if t.revoked_at else
                                "expired" if t.expires_at and t.expires_at <= now else
                                "used_up" if t.uses >= t.max_uses else "valid",
                                t.uses, t.max_uses, t.created_at, t.expires_at, t.revoked_at)
             for t in tokens]
    return json_response(EnrollmentTokenList(items))


@routes.post("/api/v1/enrollment-tokens")
async def post_enrollment_token(request: web.Request) -> web.Response:
    req = await _read_json(request, EnrollmentTokenCreate, '{"name": "...", "uses": 1, "ttl_seconds": 86400}')
    if req.ttl_seconds is not None and req.expires_at is not None:
        raise APIError(400, "give ttl_seconds or expires_at, not both", field="expires_at")
    expires_at = _future(req.expires_at, "expires_at") or \
        datetime.now(UTC) + (timedelta(seconds=req.ttl_seconds) if req.ttl_seconds else DEFAULT_ENROLL_TTL)
    store = request.config_dict[STORE_KEY]
    try:
        token = await call_store(request, create_enrollment_token, store, req.name, req.uses, expires_at)
    except ValueError as exc:
        raise APIError(409, f"cannot create enrollment token {req.name!r}: {exc}") from None
    log.info("enrollment token %r (%d uses, until %s) created by admin token %r", req.name, req.uses,
             expires_at.isoformat(), _admin(request))
    return json_response(EnrollmentTokenCreated(req.name, token, req.uses, expires_at), status=201,
                         headers={"Cache-Control": "no-store"})


@routes.delete("/api/v1/enrollment-tokens/{name}")
async def delete_enrollment_token(request: web.Request) -> web.Response:
    name = _path_name(request)
    revoked = await call_store(request, request.config_dict[STORE_KEY].revoke_enrollment_token, name)
    if not revoked:
        raise APIError(404, f"no live enrollment token named {name!r} (GET /api/v1/enrollment-tokens)",
                       name=name)
    log.info("enrollment token %r revoked by admin token %r", name, _admin(request))
    return json_response(Revoked(name, revoked))


# -- configuration ------------------------------------------------------------------------------
@routes.get("/api/v1/config")
async def get_config(request: web.Request) -> web.Response:
    """The effective [collector] section (it holds paths, never secrets)."""
    return json_response({"collector": dataclasses.asdict(request.config_dict[CONFIG_KEY])})


_NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "the token's name"}
_WRITE_ERRORS = {"400": error("malformed JSON, a missing or wrong field (named)"),
                 "409": error("a live token already has that name"),
                 "413": error("body over 4 KiB"), "415": error("Content-Type not JSON")}

OPENAPI = {
    "paths": {
        "/api/v1/tokens": {
            "get": {"summary": "list API tokens (never the tokens themselves)",
                    "responses": {"200": json_body("TokenList", "every token, newest first")}},
            "post": {"summary": "create an API token (role scanner: enroll instead)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "$ref": "#/components/schemas/TokenCreate"}}}},
                     "responses": {"201": json_body("TokenCreated", "the token, shown this once"),
                                   **_WRITE_ERRORS}},
        },
        "/api/v1/tokens/{name}": {"delete": {
            "summary": "revoke every valid token with this name, at once",
            "parameters": [_NAME_PARAM],
            "responses": {"200": json_body("Revoked", "revoked"), "400": error("malformed name"),
                          "404": error("no valid token has that name"),
                          "409": error("the token making the request cannot revoke itself")},
        }},
        "/api/v1/enrollment-tokens": {
            "get": {"summary": "list enrollment tokens",
                    "responses": {"200": json_body("EnrollmentTokenList", "every enrollment token")}},
            "post": {"summary": "create an enrollment token (default: one use, valid 24 hours)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "$ref": "#/components/schemas/EnrollmentTokenCreate"}}}},
                     "responses": {"201": json_body("EnrollmentTokenCreated", "the token, shown this once"),
                                   **_WRITE_ERRORS}},
        },
        "/api/v1/enrollment-tokens/{name}": {"delete": {
            "summary": "revoke the live enrollment token with this name",
            "parameters": [_NAME_PARAM],
            "responses": {"200": json_body("Revoked", "revoked"), "400": error("malformed name"),
                          "404": error("no live enrollment token has that name")},
        }},
        "/api/v1/config": {"get": {
            "summary": "the effective [collector] configuration",
            "responses": {"200": {"description": "the options and their values", "content": {
                "application/json": {"schema": {"type": "object", "required": ["collector"],
                                                "properties": {"collector": {"type": "object"}}}}}}},
        }},
    },
    "schemas": (TokenCreate, TokenCreated, TokenList, Revoked, EnrollmentTokenCreate, EnrollmentTokenCreated,
                EnrollmentTokenList),
}
