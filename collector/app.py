"""The collector's aiohttp application: one RouteTableDef per surface, shared state in typed keys.

    create_app(store, config)      the web.Application (the caller owns and closes the store)
    RUNNER_KWARGS                  what every runner of it must pass (AppRunner, TestServer)

Surfaces: ingest (`collector.ingest`), query (`collector.query`), export (`collector.export`),
enrollment (`collector.enroll`), admin (`collector.admin`), health, metrics, the OpenAPI document
(`collector.openapi`). Who may call each route: `collector.roles.ROUTE_ACCESS`, enforced by the
access middleware (`collector.auth`); a new route needs a row there and an OPENAPI declaration.
Resources live in `cleanup_ctx`: the thread pool that runs blocking store calls, and the reconcile
worker thread when `config.reconcile` is true. Every error leaves as JSON `{"error": ...}`; an
unhandled exception is logged with a request id and answered 500 without internals.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from cmdb.config import CollectorConfig
from cmdb.store import Store
from collector import (
    admin,
    enroll,
    export,
    health,
    ingest,
    lifecycle,
    logs,
    metrics,
    openapi,
    peers,
    query,
    ratelimit,
    records,
)
from collector.api import (
    CONFIG_KEY,
    EXECUTOR_KEY,
    REQUEST_ID,
    STORE_KEY,
    WORKER_KEY,
    APIError,
    error_response,
)
from collector.auth import access_control
from collector.housekeeping import records_housekeeping
from collector.timeouts import body_deadline, check_timeouts
from reconcile.policy import DEFAULT_POLICY, ReconcilePolicy

log = logging.getLogger("fleetgraph.collector")

# The ingest handler decompresses gzip itself, with a hard cap; aiohttp must hand it the raw bytes.
RUNNER_KWARGS: dict[str, Any] = {"auto_decompress": False}
POLICY_KEY = web.AppKey("reconcile_policy", ReconcilePolicy)

STORE_THREADS = 4
_REQUEST_ID_IN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's own errors (no route, wrong method, ...) as JSON bodies that say what to do."""
    if exc.status < 400:
        return exc  # redirects and the like pass through untouched
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
    if isinstance(exc, web.HTTPNotFound):
        return error_response(404, f"no such endpoint: {request.method} {request.path}; the API is "
                                   "POST /api/v1/reports, GET /api/v1/cis[/{id}[/history]], GET /api/v1/drift, "
                                   "GET /healthz; every route: GET /api/v1/openapi.json")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return error_response(405, f"{request.method} is not allowed on {request.path}; "
                                   f"use {', '.join(allowed)}", headers=headers, allowed=allowed)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_response(413, "request body too large; split the report or raise "
                                   "collector.max_body_bytes")
    return error_response(exc.status, exc.reason, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.get(REQUEST_ID)  # set by collector.logs.request_context, the outer middleware
    if request_id is None:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _REQUEST_ID_IN.match(incoming) else secrets.token_hex(8)
        request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except APIError as exc:
        response = error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)
    except web.HTTPException as exc:
        response = _from_http_exception(request, exc)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error in %s %s [request %s]", request.method, request.path, request_id)
        response = error_response(500, f"internal error in the collector; it is logged as request "
                                       f"{request_id}: report it with that id",
                                  request_id=request_id)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


async def _store_executor(app: web.Application) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="fleetgraph-store")
    app[EXECUTOR_KEY] = executor
    yield
    await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)


async def _reconcile_worker(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    if not config.reconcile:
        app[WORKER_KEY] = None
        yield
        return
    from collector.worker import ReconcileWorker

    worker = ReconcileWorker(app[STORE_KEY], config.reconcile_batch, policy=app[POLICY_KEY])
    worker.start()
    app[WORKER_KEY] = worker
    yield
    # stop() joins the thread after it finishes the report in hand: never block the loop on it.
    await asyncio.get_running_loop().run_in_executor(None, worker.stop)


def create_app(store: Store, config: CollectorConfig,
               policy: ReconcilePolicy | None = None) -> web.Application:
    """The collector app over an open store. Run it with RUNNER_KWARGS; the caller closes the store."""
    if config.max_body_bytes < 1 or config.max_report_bytes < 1:
        raise ValueError("collector.max_body_bytes and collector.max_report_bytes must be positive")
    check_timeouts(config.request_timeout, config.header_timeout)
    # Outermost first: requests in flight (graceful shutdown), request id + access log, JSON errors,
    # metrics, body deadline, access table (auth, roles, rate limits; collector.roles.ROUTE_ACCESS).
    # aiohttp's own cap only matters for request.read()/post(); ingest streams and counts itself.
    app = web.Application(middlewares=[lifecycle.track_in_flight, logs.request_context, json_errors,
                                       metrics.observe, body_deadline, access_control],
                          client_max_size=config.max_body_bytes)
    app[STORE_KEY] = store
    app[CONFIG_KEY] = config
    app[POLICY_KEY] = policy or DEFAULT_POLICY  # [reconcile]
    app.cleanup_ctx.append(_store_executor)  # torn down last: the worker's stop runs before it
    app.cleanup_ctx.append(_reconcile_worker)
    app.cleanup_ctx.append(records_housekeeping)  # verify changes, deliver webhooks
    lifecycle.setup(app)
    peers.setup(app)  # collector.trusted_proxies
    ratelimit.setup(app)
    logs.setup(app)  # X-Request-Id on every response
    app.add_routes(health.routes)
    app.add_routes(ingest.routes)
    app.add_routes(export.routes)  # before query: /api/v1/cis/{ci_id} would take /api/v1/cis/export
    app.add_routes(query.routes)
    app.add_routes(admin.routes)  # tokens, enrollment tokens, config
    app.add_routes(records.routes)  # change records and incidents
    from collector.legacy.routes import routes as legacy_routes  # POST /ocsinventory: OCS/Fusion agents
    app.add_routes(legacy_routes)
    enroll.setup(app)  # POST /api/v1/enroll and its attempt limiter
    metrics.setup(app)  # GET /metrics; after the worker's cleanup_ctx (it hooks the worker)
    openapi.setup(app)  # GET /api/v1/openapi.json, built from every route module's OPENAPI
    return app
