"""Slow clients: a request body must arrive within `collector.request_timeout` seconds.

Headers are bounded by the server itself: `collector.server` runs aiohttp with
`keepalive_timeout = collector.header_timeout`, and aiohttp closes a connection whose request
headers are not complete by then (and an idle keep-alive connection after as long).

Bodies: `body_deadline` runs every handler of a request that has a body under a deadline of
`request_timeout` from the moment its headers were read. A handler that has read the whole body
calls `body_received(request)` to lift it, so the work that follows (a durable store write) is
never cut short. A handler that does not (a route added later) simply runs whole under the
deadline. Past it the client gets 408 and the connection is closed: a client that trickles one
byte per second holds a connection for `request_timeout` seconds, not forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from collector.api import CONFIG_KEY, error_response
from collector.peers import client_address

log = logging.getLogger("fleetgraph.collector.timeouts")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_RequestKey = getattr(web, "RequestKey", None)
DEADLINE: Any = _RequestKey("body_deadline", asyncio.Timeout) if _RequestKey else "fleetgraph.body_deadline"


def check_timeouts(request_timeout: float, header_timeout: float) -> None:
    for name, value in (("request_timeout", request_timeout), ("header_timeout", header_timeout)):
        if not value > 0:
            raise ValueError(f"collector.{name} must be a positive number of seconds, got {value}")


def body_received(request: web.Request) -> None:
    """The whole body is in: lift the deadline for the rest of the handler."""
    deadline = request.get(DEADLINE)
    if deadline is not None and not deadline.expired():
        deadline.reschedule(None)


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.body_exists:
        return await handler(request)
    seconds = request.config_dict[CONFIG_KEY].request_timeout
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            request[DEADLINE] = deadline
            return await handler(request)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own timeout, not ours
    log.warning("%s %s from %s: body not received within %gs; connection closed", request.method,
                request.path, client_address(request), seconds)
    response = error_response(408, f"the request body did not arrive within {seconds:g}s: send it at once "
                                   "(or ask the collector's operator to raise collector.request_timeout)",
                              limit_seconds=seconds)
    # Send the answer and close now: aiohttp would otherwise linger up to 10 s reading the rest of
    # the body, which is exactly what a slow client wants. close() still flushes what is written.
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response
