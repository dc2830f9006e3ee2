"""Operability benchmark (issue 6): what access control, rate limits, metrics, request ids and JSON
access logs cost per request, what a /metrics scrape costs, and how fast the export streams, each
beside a peer in the same run.

    .venv/bin/python bench/collector_ops.py [--machines N] [--requests R] [--concurrency C]

1. Loads a CMDB: N synthetic machines, each this machine's own software inventory (~900 packages)
   under its own identity, posted and reconciled by the collector.
2. GET /api/v1/cis?limit=1 with a reader token, R requests at concurrency C: the full collector
   (every middleware on, JSON logs, rate limits on but high enough never to refuse) beside
   bench/peer_query.py (bare aiohttp, same token lookup and store calls, no middleware).
3. GET /metrics (store counts read at scrape time) beside GET /healthz (one count), medians.
4. The whole CMDB out: GET /api/v1/cis/export as NDJSON and as CSV, beside paging through
   GET /api/v1/cis?limit=1000&offset=... (what a client does without an export).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.builder import build_report  # noqa: E402
from agent.context import LocalContext  # noqa: E402
from cmdb.backends import sqlite_url  # noqa: E402
from cmdb.report import encode_report  # noqa: E402

KEEP = {"Computer", "OperatingSystem", "Software", "SoftwareInstall"}


def start(argv: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    with log.open("a") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"listening on (http://\S+)", line):
            return proc, m.group(1)
    raise SystemExit(f"{argv} did not start; see {log}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(60)


def fleet_reports(n: int) -> list[bytes]:
    """n machines: this host's packages, each machine under its own agent id and hostname."""
    base = build_report(LocalContext(agent_id="bench-agent"))
    items = [i for i in base.items if i.class_ in KEEP]
    refs = {i.ref for i in items}
    relations = [r for r in base.relations if r.from_ in refs and r.to in refs]
    bodies = []
    for k in range(n):
        host = f"bench-{k:05d}"
        machine = [msgspec.structs.replace(i, identifiers={"agent_id": host, "hostname": host},
                                           attributes={**i.attributes, "hostname": host})
                   if i.class_ == "Computer" else i for i in items]
        report = msgspec.structs.replace(base, report_id=str(uuid.uuid4()), items=machine, relations=relations,
                                         source=msgspec.structs.replace(base.source, id=host))
        bodies.append(gzip.compress(encode_report(report), 6))
    return bodies


def fleetgraph(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "cmdb.cli", *args], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def wait_reconciled(url: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/healthz") as resp:
            if json.loads(resp.read())["pending_reports"] == 0:
                return
        time.sleep(0.2)
    raise SystemExit("reconcile did not drain")


async def post_all(url: str, token: str, bodies: list[bytes], concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    queue = list(bodies)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(url + "/api/v1/reports", data=body, headers=headers) as resp:
                if resp.status != 202:
                    raise SystemExit(f"load: HTTP {resp.status}: {await resp.text()}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


async def hammer(url: str, path: str, token: str | None, n: int, concurrency: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    left = [n]

    async def worker(session: aiohttp.ClientSession) -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = time.perf_counter()
            async with session.get(url + path, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"{path}: HTTP {resp.status}")
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


def timed_get(url: str, token: str | None = None) -> tuple[float, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=3600) as resp:
        body = resp.read()
    return time.perf_counter() - t0, body


def page_through(url: str, token: str) -> tuple[float, int]:
    t0, offset, total = time.perf_counter(), 0, 0
    while True:
        _, body = timed_get(f"{url}/api/v1/cis?limit=1000&offset={offset}", token)
        page = json.loads(body)
        total += page["count"]
        if page["next_offset"] is None:
            return time.perf_counter() - t0, total
        offset = page["next_offset"]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fg.sqlite"
        store = sqlite_url(db)
        tokens = {role: fleetgraph("token", "create", "--name", f"bench-{role}", "--role", role, "--store", store)
                  for role in ("agent", "reader", "auditor")}
        log = Path(tmp) / "server.log"
        serve = [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0", "--store", store]

        t0 = time.perf_counter()
        bodies = fleet_reports(args.machines)
        proc, url = start(serve + ["--rate-limit-source", "0", "--rate-limit-token", "0"], log)
        try:
            asyncio.run(post_all(url, tokens["agent"], bodies, 4))
            wait_reconciled(url)
        finally:
            stop(proc)
        load_s = time.perf_counter() - t0
        from cmdb.backends import open_store

        s = open_store(store)
        try:
            by_class = s.count_cis()
        finally:
            s.close()
        n_cis = sum(by_class.values())
        if not by_class.get("SoftwareInstall"):
            raise SystemExit("the load created no CIs; the collector's log:\n" + log.read_text()[-3000:])
        print(f"CMDB: {args.machines} machines, {n_cis} active CIs ({by_class.get('SoftwareInstall', 0)} "
              f"SoftwareInstall), loaded and reconciled in {load_s:.0f} s")

        full = serve + ["--log-format", "json", "--rate-limit-token", "1000000", "--rate-limit-token-burst",
                        "1000000", "--rate-limit-anonymous", "1000000", "--rate-limit-anonymous-burst", "1000000"]
        results = {}
        for name, argv in (("fleetgraph collector", full),
                           ("bare aiohttp peer", [sys.executable, "bench/peer_query.py", str(db)])):
            proc, url = start(argv, log)
            try:
                asyncio.run(hammer(url, "/api/v1/cis?limit=1", tokens["reader"], 200, args.concurrency))  # warm
                wall, lat = asyncio.run(hammer(url, "/api/v1/cis?limit=1", tokens["reader"], args.requests,
                                               args.concurrency))
                results[name] = (args.requests / wall, pct(lat, 0.5), pct(lat, 0.99))
                if name == "fleetgraph collector":
                    scrapes = [timed_get(url + "/metrics")[0] for _ in range(21)]
                    healths = [timed_get(url + "/healthz")[0] for _ in range(21)]
                    ndjson_s, ndjson = timed_get(url + "/api/v1/cis/export", tokens["auditor"])
                    csv_s, csv_body = timed_get(url + "/api/v1/cis/export?format=csv&class=SoftwareInstall"
                                                "&fields=name,version,arch", tokens["auditor"])
                    paged_s, paged = page_through(url, tokens["auditor"])
            finally:
                stop(proc)

    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.requests} requests at concurrency {args.concurrency}")
    print(f"{'GET /api/v1/cis?limit=1':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:<24} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f}")
    ours, peer = results["fleetgraph collector"][0], results["bare aiohttp peer"][0]
    print(f"ratio collector / bare peer: {ours / peer:.2f}x (the collector also runs the access table, rate "
          "limits, metrics, request ids and a JSON access line per request)")
    m, h = statistics.median(scrapes) * 1000, statistics.median(healths) * 1000
    print(f"GET /metrics median {m:.1f} ms vs GET /healthz {h:.1f} ms: {m / h:.1f}x ({n_cis} CIs counted per scrape)")
    lines = ndjson.count(b"\n")
    rows = csv_body.count(b"\n") - 1
    print(f"export NDJSON: {lines} CIs in {ndjson_s:.2f} s = {lines / ndjson_s:.0f} CIs/s, "
          f"{len(ndjson) / 2**20 / ndjson_s:.1f} MiB/s")
    print(f"export CSV (SoftwareInstall, 3 fields): {rows} rows in {csv_s:.2f} s = {rows / csv_s:.0f} rows/s")
    print(f"paging GET /api/v1/cis?limit=1000: {paged} CIs in {paged_s:.2f} s = {paged / paged_s:.0f} CIs/s; "
          f"NDJSON export / paging: {(lines / ndjson_s) / (paged / paged_s):.2f}x")


if __name__ == "__main__":
    main()
