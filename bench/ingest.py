"""Ingest benchmark: reports/s for this machine's own full report (the ~270 KB class), fleetgraph's
collector beside a bare durable aiohttp+SQLite handler (bench/peer_ingest.py), in the same run.

    .venv/bin/python bench/ingest.py [--reports N] [--concurrency C]

Measures, per server: accepted reports/s (each 202 means the raw report is committed and
fsync'd), p50/p99 latency; then fleetgraph's reconcile throughput (first report creates the
machine, the rest are no-change re-sends, as a fleet's steady state looks)."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.builder import build_report  # noqa: E402
from agent.context import LocalContext  # noqa: E402
from cmdb.backends import sqlite_url  # noqa: E402
from cmdb.report import encode_report  # noqa: E402


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """Start a server; its log goes to a file (a pipe nobody reads would fill up and stall it)."""
    with log.open("a") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"listening on (http://\S+)", line):
            return proc, m.group(1)
    raise SystemExit(f"{argv} did not start")


def bodies(template: bytes, old_id: str, n: int) -> list[bytes]:
    """n gzipped copies of the report, each with its own report_id (same length, same content)."""
    out = []
    for _ in range(n):
        new_id = str(uuid.uuid4())
        out.append(gzip.compress(template.replace(old_id.encode(), new_id.encode(), 1), 6))
    return out


async def post_all(url: str, token: str, payloads: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url + "/api/v1/reports", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 202:
                    raise SystemExit(f"unexpected HTTP {resp.status}: {await resp.text()}")
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def wait_pending_zero(url: str, timeout: float = 600) -> float:
    import urllib.request

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        with urllib.request.urlopen(url + "/healthz") as resp:
            if json.loads(resp.read())["pending_reports"] == 0:
                return time.perf_counter() - t0
        time.sleep(0.02)
    raise SystemExit("reconcile did not drain")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    t0 = time.perf_counter()
    report = build_report(LocalContext(agent_id="bench-agent"))
    build_s = time.perf_counter() - t0
    raw = encode_report(report)
    gz = gzip.compress(raw, 6)
    print(f"this machine's report: {len(report.items)} items, {len(raw)/1024:.0f} KiB JSON, "
          f"{len(gz)/1024:.0f} KiB gzipped (built in {build_s*1000:.0f} ms)")
    payloads = bodies(raw, report.report_id, args.reports)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # fleetgraph, ingest only (reconcile worker off): what a 202 costs.
        store = sqlite_url(Path(tmp) / "fg.sqlite")
        token = subprocess.run([sys.executable, "-m", "cmdb.cli", "token", "create", "--name", "bench",
                                "--role", "agent", "--store", store], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        for name, argv in [
            ("fleetgraph", [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0",
                            "--store", store, "--no-reconcile", "--rate-limit-token", "0", "--rate-limit-source", "0"]),
            ("bare aiohttp+sqlite", [sys.executable, "bench/peer_ingest.py", f"{tmp}/peer.sqlite"]),
        ]:
            proc, url = start(argv, Path(tmp) / "server.log")
            try:
                asyncio.run(post_all(url, token, payloads[:8], 4))  # warm-up
                fresh = bodies(raw, report.report_id, args.reports)
                wall, lat = asyncio.run(post_all(url, token, fresh, args.concurrency))
            finally:
                proc.terminate()
                proc.wait()
            results[name] = (args.reports / wall, pct(lat, 0.5), pct(lat, 0.99))

        # fleetgraph with the reconcile worker: the whole backlog reconciled.
        proc, url = start([sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0",
                           "--store", store, "--rate-limit-token", "0", "--rate-limit-source", "0"],
                          Path(tmp) / "server.log")
        try:
            drain_backlog = wait_pending_zero(url)
            backlog = args.reports + 8
            fresh = bodies(raw, report.report_id, args.reports)
            t0 = time.perf_counter()
            asyncio.run(post_all(url, token, fresh, args.concurrency))
            wait_pending_zero(url)
            e2e = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait()

    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.reports} reports, concurrency {args.concurrency}")
    print(f"{'server':<22} {'reports/s':>10} {'MiB/s (JSON)':>13} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:<22} {rate:>10.1f} {rate*len(raw)/2**20:>13.1f} {p50:>8.1f} {p99:>8.1f}")
    ours, peer = results["fleetgraph"][0], results["bare aiohttp+sqlite"][0]
    print(f"ratio fleetgraph / bare handler: {ours/peer:.2f}x (fleetgraph also validates every field)")
    print(f"reconcile of a {backlog}-report backlog (1 new machine, then no-change): {drain_backlog:.2f} s "
          f"= {backlog/drain_backlog:.0f} reports/s")
    print(f"ingest + reconcile, {args.reports} no-change reports: {args.reports/e2e:.1f} reports/s end to end")


if __name__ == "__main__":
    main()
