"""The peer for bench/ingest.py: the least a durable ingest endpoint can do. A bare aiohttp
handler that gunzips (aiohttp's own decompression), json-parses (no schema validation) and inserts the body into SQLite in WAL
mode with synchronous=FULL (the same durability promise as fleetgraph's 202), then answers 202.

Run: python bench/peer_ingest.py DB_PATH [--orjson]  (prints "listening on http://127.0.0.1:PORT").
With --orjson the body is parsed with orjson instead of json (the load test's peer, issue 6)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web


def main(db_path: str, use_orjson: bool = False) -> None:
    loads = json.loads
    if use_orjson:
        import orjson

        loads = orjson.loads
    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS report (seq INTEGER PRIMARY KEY, report_id TEXT UNIQUE, body BLOB)")
    pool = ThreadPoolExecutor(1)

    def store(report_id: str, body: bytes) -> None:
        db.execute("INSERT INTO report (report_id, body) VALUES (?, ?)", (report_id, body))

    async def ingest(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already gunzipped it (auto_decompress)
        doc = loads(body)
        await asyncio.get_running_loop().run_in_executor(pool, store, doc["report_id"], body)
        return web.json_response({"status": "accepted"}, status=202)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/reports", ingest)

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(start())


if __name__ == "__main__":
    main(sys.argv[1], "--orjson" in sys.argv[2:])
