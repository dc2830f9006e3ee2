"""What every surface of the collector shares: typed app keys, JSON errors, and the store executor.

Handlers never call the store on the event loop: `call_store` runs a blocking store call in the
collector's thread pool. Handlers raise `APIError`; the error middleware in `collector.app` turns
it (and every other failure) into a JSON body `{"error": "...", ...}` that says what to do.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from aiohttp import web

from cmdb.config import CollectorConfig
from cmdb.store import Store

if TYPE_CHECKING:
    from collector.worker import ReconcileWorker

T = TypeVar("T")

STORE_KEY = web.AppKey("store", Store)
CONFIG_KEY = web.AppKey("config", CollectorConfig)
EXECUTOR_KEY = web.AppKey("store_executor", ThreadPoolExecutor)
WORKER_KEY: web.AppKey[ReconcileWorker | None] = web.AppKey("reconcile_worker")

# Request-scoped values, set by the error middleware and the auth decorator. aiohttp >= 3.13 has
# typed request keys (and warns on str keys); older versions take plain strings.
_RequestKey = getattr(web, "RequestKey", None)
if _RequestKey is not None:
    REQUEST_ID: Any = _RequestKey("request_id", str)
    PRINCIPAL: Any = _RequestKey("principal", tuple)  # (token name, role)
    BOUND_SOURCE: Any = _RequestKey("bound_source", object)  # the token's source id, or None
else:  # pragma: no cover - aiohttp < 3.13
    REQUEST_ID = "fleetgraph.request_id"
    PRINCIPAL = "fleetgraph.principal"
    BOUND_SOURCE = "fleetgraph.bound_source"

_json = msgspec.json.Encoder()


class APIError(Exception):
    """An error response: HTTP status, a message that says what to do, and extra JSON fields."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Encode with msgspec (Structs, dataclasses, datetimes) and reply as application/json."""
    return web.Response(body=_json.encode(payload), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status, headers=headers)


async def call_store(request: web.Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store (or CPU-heavy) call in the collector's thread pool."""
    executor = request.config_dict[EXECUTOR_KEY]
    loop = asyncio.get_running_loop()
    # The request's context (its request id, collector.logs) travels with the call into the thread.
    context = contextvars.copy_context()
    return await loop.run_in_executor(executor, context.run, functools.partial(fn, *args, **kwargs))
