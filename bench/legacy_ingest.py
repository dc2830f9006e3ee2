"""OCS / FusionInventory ingest benchmark (collector/legacy): what POST /ocsinventory costs beside
POST /api/v1/reports of the same machine's native report, and beside a bare peer, in one run.

    .venv/bin/python bench/legacy_ingest.py [--inventories N] [--concurrency C]

The payload is this machine's real FusionInventory inventory (tests/fixtures/legacy/inventories/
fusion-2.6-debian12-vm, 901 packages), each copy with its own LOGDATE so none is a duplicate.
Three servers, each ingest only (no reconcile), each storing durably before it answers:

- fleetgraph POST /ocsinventory: Basic auth, zlib, defusedxml streaming parse, mapping to a native
  report, the native validation, put_report (fsync), zlib reply;
- fleetgraph POST /api/v1/reports: the mapped report as gzipped JSON (what our agent would send);
- a bare aiohttp handler: zlib, defusedxml.ElementTree.fromstring (a whole tree), SQLite insert
  (WAL, synchronous=FULL), zlib reply: the least a safe OCS endpoint does, with no mapping.

Also the in-process CPU cost of one inventory: inflate + parse, map, encode + validate."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest import pct, start  # noqa: E402
from cmdb.backends import sqlite_url  # noqa: E402
from cmdb.report import decode_report, encode_report  # noqa: E402
from collector.legacy.mapping import inventory_report_id, map_inventory  # noqa: E402
from collector.legacy.xml import parse_request  # noqa: E402

INVENTORY = REPO / "tests/fixtures/legacy/inventories/fusion-2.6-debian12-vm/request.xml"
FUSION_HEADERS = {"User-Agent": "FusionInventory-Agent_v2.6-3", "Content-Type": "application/x-compress-zlib"}
_LOGDATE = re.compile(rb"<LOGDATE>[^<]*</LOGDATE>")

PEER = '''
import sqlite3, sys, zlib
from aiohttp import web
from defusedxml.ElementTree import fromstring
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE IF NOT EXISTS inventory (seq INTEGER PRIMARY KEY, device TEXT, body BLOB)")
async def handle(request):
    xml = zlib.decompress(await request.read())
    root = fromstring(xml, forbid_dtd=True)
    db.execute("INSERT INTO inventory (device, body) VALUES (?, ?)", (root.findtext("DEVICEID"), xml))
    return web.Response(body=zlib.compress(b"<REPLY><RESPONSE>no_account_update</RESPONSE></REPLY>"),
                        content_type="application/x-compress")
app = web.Application(client_max_size=64 * 2**20)
app.router.add_post("/ocsinventory", handle)
async def main():
    runner = web.AppRunner(app); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print("listening on http://127.0.0.1:%d" % runner.addresses[0][1], flush=True)
    import asyncio; await asyncio.Event().wait()
import asyncio; asyncio.run(main())
'''


def inventories(xml: bytes, n: int) -> list[bytes]:
    """n copies, each with its own LOGDATE (seconds apart): n distinct inventories of one machine."""
    out = []
    for i in range(n):
        stamp = f"<LOGDATE>2026-11-21 {10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}</LOGDATE>".encode()
        out.append(_LOGDATE.sub(stamp, xml, count=1))
    return out


async def post_all(url: str, path: str, headers: dict[str, str], payloads: list[bytes],
                   concurrency: int, ok: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url + path, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != ok:
                    raise SystemExit(f"{path}: unexpected HTTP {resp.status} {resp.reason}")
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


def cpu_cost(xml: bytes, repeat: int = 20) -> dict[str, float]:
    """Median ms per inventory of each step the legacy handler runs off the event loop."""
    compressed = zlib.compress(xml)
    steps: dict[str, list[float]] = {"inflate+parse": [], "map": [], "encode+validate": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        request = parse_request(zlib.decompress(compressed))
        t1 = time.perf_counter()
        report = map_inventory(request, "fusion", inventory_report_id("fusion", request.device_id or "", xml),
                               datetime.now(UTC))
        t2 = time.perf_counter()
        decode_report(encode_report(report))
        t3 = time.perf_counter()
        for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2)):
            steps[name].append(seconds)
    return {name: sorted(v)[len(v) // 2] * 1000 for name, v in steps.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inventories", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    xml = INVENTORY.read_bytes()
    legacy = [zlib.compress(x) for x in inventories(xml, args.inventories + 8)]
    request = parse_request(xml)
    native_template = encode_report(map_inventory(request, "fusion", "fusion-bench-00000000", datetime.now(UTC)))
    native = [gzip.compress(native_template.replace(b"fusion-bench-00000000", f"fusion-bench-{i:08d}".encode()), 6)
              for i in range(args.inventories + 8)]
    print(f"payload: {len(xml) / 1024:.0f} KiB of XML ({len(legacy[0]) / 1024:.0f} KiB zlib), "
          f"{len(request.entries('SOFTWARES'))} SOFTWARES; native report {len(native_template) / 1024:.0f} KiB "
          f"JSON ({len(native[0]) / 1024:.0f} KiB gzip)")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = sqlite_url(Path(tmp) / "fg.sqlite")
        token = subprocess.run([sys.executable, "-m", "cmdb.cli", "token", "create", "--name", "bench",
                                "--role", "agent", "--store", store], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        basic = {"Authorization": "Basic " + base64.b64encode(f"bench:{token}".encode()).decode()}
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
        (Path(tmp) / "peer.py").write_text(PEER)
        fleetgraph = [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0",
                      "--store", store, "--no-reconcile", "--rate-limit-source", "0", "--rate-limit-token", "0"]
        runs = [
            ("fleetgraph /ocsinventory", fleetgraph, "/ocsinventory", {**FUSION_HEADERS, **basic}, legacy, 200),
            ("fleetgraph /api/v1/reports", fleetgraph, "/api/v1/reports", bearer, native, 202),
            ("bare zlib+defusedxml+sqlite", [sys.executable, str(Path(tmp) / "peer.py"), f"{tmp}/peer.sqlite"],
             "/ocsinventory", FUSION_HEADERS, legacy, 200),
        ]
        for name, argv, path, headers, payloads, ok in runs:
            proc, url = start(argv, Path(tmp) / "server.log")
            try:
                asyncio.run(post_all(url, path, headers, payloads[:8], 4, ok))  # warm-up
                wall, lat = asyncio.run(post_all(url, path, headers, payloads[8:], args.concurrency, ok))
            finally:
                proc.terminate()
                proc.wait()
            results[name] = (args.inventories / wall, pct(lat, 0.5), pct(lat, 0.99))

    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.inventories} inventories, concurrency {args.concurrency}")
    print(f"{'server':<30} {'inventories/s':>14} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:<30} {rate:>14.1f} {p50:>8.1f} {p99:>8.1f}")
    ours = results["fleetgraph /ocsinventory"][0]
    print(f"ratio /ocsinventory / /api/v1/reports: {ours / results['fleetgraph /api/v1/reports'][0]:.2f}x; "
          f"/ocsinventory / bare peer: {ours / results['bare zlib+defusedxml+sqlite'][0]:.2f}x")
    cost = cpu_cost(xml)
    print("CPU per inventory (median of 20, one core): "
          + ", ".join(f"{k} {v:.1f} ms" for k, v in cost.items()) + f", total {sum(cost.values()):.1f} ms")


if __name__ == "__main__":
    main()
