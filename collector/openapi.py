"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of the running collector, assembled from the
route modules themselves.

Each module that adds routes declares, next to its RouteTableDef, a module-level

    OPENAPI = {"paths": {"/api/v1/...": {"get": {<operation>}, ...}},
               "schemas": (SomeStruct, ...)}        # msgspec types, as #/components/schemas/<Name>

`build_document(app)` walks `app.router`, takes each route's handler module's declaration, keeps
the operations of routes that are really registered, and adds what every operation shares from
one place: its security and roles (`collector.roles.ROUTE_ACCESS`, as `x-fleetgraph-roles`), the
401/403/429/500 (and 408 for a body) answers, the `X-Request-Id` header. Component schemas come
from the msgspec shapes (`msgspec.json.schema_components`), so the document cannot drift from
what the handlers encode. A route whose module declares nothing is simply absent: the test that
walks app.router (tests/unit/collector/test_openapi.py) fails until it declares itself.

Served without a token: it describes the API and holds no data.
"""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

import msgspec
from aiohttp import web

from collector.api import json_response
from collector.roles import route_access

OPENAPI_PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{name}"
_METHODS = ("get", "put", "post", "delete", "patch")

routes = web.RouteTableDef()

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what went wrong and what to do"}},
    "additionalProperties": True,
}
_REQUEST_ID_HEADER = {"description": "the request's id (also in the collector's log lines)",
                      "schema": {"type": "string"}}


def error(description: str) -> dict[str, Any]:
    """A response object for a JSON error answer."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(name="Error")}}}}


def json_body(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(name=schema_ref)}}}}


def registered_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route, HEAD (aiohttp's automatic twin of GET) left out."""
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        found.add((route.method.lower(), route.resource.canonical))
    return found


def _declaration_of(handler: Any) -> dict[str, Any] | None:
    module = sys.modules.get(getattr(inspect.unwrap(handler), "__module__", ""), None)
    declared = getattr(module, "OPENAPI", None)
    return declared if isinstance(declared, dict) else None


def _finish_operation(method: str, path: str, operation: dict[str, Any], has_body: bool) -> None:
    access = route_access(method.upper(), path)
    responses = operation.setdefault("responses", {})
    if access is not None and not access.public:
        operation["security"] = [{"bearer": []}]
        operation["x-fleetgraph-roles"] = sorted(access.roles)
        responses.setdefault("401", error("no token, or an invalid, expired or revoked one"))
        responses.setdefault("403", error("the token's role may not call this"))
    else:
        operation["security"] = []
    if access is not None and access.loopback_open:
        operation["security"] = [{"bearer": []}, {}]  # a token, or none from loopback (metrics_auth)
    if has_body:
        responses.setdefault("408", error("the body did not arrive within collector.request_timeout"))
    limited = error("rate limited: retry after Retry-After seconds")
    if access is not None and access.self_authenticated and "401" in responses:
        # Its handler authenticates (collector.auth.authenticate spends the rate limits there), so a
        # 429 comes in the same format as the handler's own 401.
        limited = {**copy.deepcopy(responses["401"]), "description": limited["description"]}
    responses.setdefault("429", {**limited, "headers": {"Retry-After": {"schema": {"type": "integer"}}}})
    responses.setdefault("500", error("internal error; the body names the request id to report"))
    for response in responses.values():
        response.setdefault("headers", {}).setdefault("X-Request-Id", _REQUEST_ID_HEADER)


def build_document(app: web.Application) -> dict[str, Any]:
    registered = registered_operations(app)
    declarations: dict[int, dict[str, Any]] = {}
    for route in app.router.routes():
        declared = _declaration_of(route.handler)
        if declared is not None:
            declarations[id(declared)] = declared
    paths: dict[str, dict[str, Any]] = {}
    types: list[Any] = []
    for declared in declarations.values():
        types.extend(declared.get("schemas", ()))
        for path, item in declared.get("paths", {}).items():
            for method, operation in item.items():
                if method in _METHODS and (method, path) in registered:
                    paths.setdefault(path, {})[method] = copy.deepcopy(operation)
    for path, item in paths.items():
        for method, operation in item.items():
            _finish_operation(method, path, operation, "requestBody" in operation)
    _, schemas = msgspec.json.schema_components(list(dict.fromkeys(types)), ref_template=REF)
    schemas["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": "fleetgraph collector", "version": "1",
                 "description": "Ingest, enrollment, query, export and administration API of the fleetgraph "
                                "collector. Roles per operation: x-fleetgraph-roles (docs/security.md)."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API token or an enrolled "
                                                                     "credential"}}},
    }


_DOCUMENT_KEY = web.AppKey("openapi_document", dict)


def setup(app: web.Application) -> None:
    app[_DOCUMENT_KEY] = {}  # filled at the first request: the router is frozen by then
    app.add_routes(routes)


@routes.get(OPENAPI_PATH)
async def get_openapi(request: web.Request) -> web.Response:
    cache = request.app[_DOCUMENT_KEY]
    if "doc" not in cache:
        cache["doc"] = build_document(request.app)
    return json_response(cache["doc"])


OPENAPI = {
    "paths": {OPENAPI_PATH: {"get": {
        "summary": "this document",
        "responses": {"200": {"description": "the OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}},
}
