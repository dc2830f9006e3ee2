"""Graceful shutdown: count the requests in flight, and let them finish before the server closes
their connections.

aiohttp's own shutdown (`AppRunner.cleanup`) first marks every connection closing, and a closing
connection drops the bytes that still arrive: an upload half-way through its body would never
complete. So `collector.server` drains first:

    1. stop listening (new connections are refused at once);
    2. `wait_idle`: wait until every request that has started is answered (up to a timeout),
       while their connections keep receiving; answers given meanwhile say `Connection: close`;
    3. only then `AppRunner.cleanup` (idle keep-alive connections, the worker, the store pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlight:
    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when no request is in flight any more, False when `timeout` ran out first."""
        self.draining = True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


IN_FLIGHT_KEY = web.AppKey("in_flight", InFlight)


def setup(app: web.Application) -> None:
    app[IN_FLIGHT_KEY] = InFlight()


@web.middleware
async def track_in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
    in_flight = request.app[IN_FLIGHT_KEY]
    in_flight.enter()
    try:
        response = await handler(request)
        if in_flight.draining and not response.prepared:
            response.force_close()  # tell keep-alive clients to go: this server is stopping
        return response
    finally:
        in_flight.leave()
