"""GET /healthz: liveness and store reachability for load balancers and systemd (no auth).

200 {"status": "ok", "store": "ok", "pending_reports": N, "reconcile": "running"|"stopped"|"off"}
when the store answers; 503 with "store": "unreachable" when it does not.
"""

from __future__ import annotations

import logging

from aiohttp import web

from collector.api import STORE_KEY, WORKER_KEY, call_store, json_response

log = logging.getLogger("fleetgraph.collector.health")

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    worker = request.config_dict.get(WORKER_KEY)
    reconcile = "off" if worker is None else ("running" if worker.is_alive() else "stopped")
    store = request.config_dict[STORE_KEY]
    try:
        pending = await call_store(request, store.count_reports, "pending")
    except Exception as exc:  # any failure of the store means "not healthy", never a 500
        log.warning("health check: store unreachable: %s: %s", type(exc).__name__, exc)
        return json_response({"status": "error", "store": "unreachable", "reconcile": reconcile,
                              "error": "the store does not answer; check collector.store and the "
                                       "collector log"}, status=503)
    return json_response({"status": "ok", "store": "ok", "pending_reports": pending,
                          "reconcile": reconcile})


_HEALTH = {"type": "object", "required": ["status", "store", "reconcile"], "properties": {
    "status": {"enum": ["ok", "error"]}, "store": {"enum": ["ok", "unreachable"]},
    "pending_reports": {"type": "integer"}, "reconcile": {"enum": ["running", "stopped", "off"]},
    "error": {"type": "string"}}}

OPENAPI = {"paths": {"/healthz": {"get": {
    "summary": "liveness and store reachability (for load balancers and systemd)",
    "responses": {
        "200": {"description": "the store answers", "content": {"application/json": {"schema": _HEALTH}}},
        "503": {"description": "the store does not answer", "content": {"application/json": {"schema": _HEALTH}}},
    },
}}}}
