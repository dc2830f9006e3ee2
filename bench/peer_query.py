"""The peer for bench/collector_ops.py: the least an authenticated query endpoint can do over the
same store. A bare aiohttp app (no middleware at all: no access table, rate limits, metrics,
request ids, access log, body deadline) whose one handler hashes the bearer token, looks it up
with the same store call, lists CIs with the same store call and encodes them with msgspec.

Run: python bench/peer_query.py STORE_PATH  (prints "listening on http://127.0.0.1:PORT")."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cmdb.backends.sqlite import SQLiteStore  # noqa: E402


def main(db_path: str) -> None:
    store = SQLiteStore(Path(db_path))
    pool = ThreadPoolExecutor(4)
    encode = msgspec.json.Encoder().encode

    async def list_cis(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        token = request.headers.get("Authorization", "").partition(" ")[2]
        principal = await loop.run_in_executor(pool, store.token_principal,
                                               hashlib.sha256(token.encode()).hexdigest(), datetime.now(UTC))
        if principal is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        limit = int(request.query.get("limit", "100"))
        cis = await loop.run_in_executor(pool, lambda: store.list_cis(limit=limit))
        items = [{"id": c.ci_id, "class": c.ci_class, "state": c.state,
                  "attributes": {k: v.value for k, v in c.attributes.items()}} for c in cis]
        return web.Response(body=encode({"items": items, "count": len(items)}), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/cis", list_cis)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1])
