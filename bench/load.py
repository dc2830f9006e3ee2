"""Load test (issue 6): 1,000 simulated agents reporting to the collector on loopback, beside a bare
orjson aiohttp handler (bench/peer_ingest.py --orjson: parse, insert, fsync, 202; no validation)
given the very same requests, in the same run.

    .venv/bin/python bench/load.py [--agents 1000] [--deltas 3] [--concurrency 32 64]

Each simulated agent has its own source id, hostname, serial and MACs. It sends one full report
(~270 KB of JSON: a Computer, its OS, interfaces and ~560 packages as Software + SoftwareInstall
with their relations, gzipped on the wire like the real agent) and then `--deltas` delta reports
(~2 KB: the Computer with its identifiers, every section unchanged but one package upgraded), in
that order per agent, agents interleaved. Measured per server and concurrency: accepted reports/s,
p50/p99 latency of full and delta reports, the server's peak RSS. The collector runs with the
reconcile worker off (ingest is what a 202 costs; the peer does not reconcile either) and rate
limits off (one bench client speaks for 1,000 agents).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest import pct, start  # noqa: E402
from cmdb.backends import sqlite_url  # noqa: E402
from cmdb.report import SCHEMA_V1, CollectorStatus, Item, Relation, Report, Source, encode_report  # noqa: E402

PACKAGES = 470
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def computer(n: int) -> Item:
    return Item(class_="Computer", ref="computer",
                identifiers={"agent_id": f"load-agent-{n:05d}", "hostname": f"host-{n:05d}",
                             "serial": f"LOAD{n:08d}", "mac": [f"02:00:{n >> 8 & 255:02x}:{n & 255:02x}:00:01"]},
                attributes={"hostname": f"host-{n:05d}", "manufacturer": "Dell Inc.", "model": "PowerEdge R650",
                            "memory_bytes": 68719476736, "cpu_model": "Intel(R) Xeon(R) Gold 6338", "cpu_cores": 32},
                collector="hardware")


def full_report(n: int) -> Report:
    items = [computer(n),
             Item(class_="OperatingSystem", ref="os", identifiers={"family": "linux"},
                  attributes={"name": "Debian GNU/Linux", "version": "12", "kernel_release": "6.1.0-18-amd64"},
                  collector="os")]
    relations = [Relation(from_="os", type="RUNS_ON", to="computer")]
    for i in range(2):
        ref = f"if:eth{i}"
        items.append(Item(class_="Interface", ref=ref, identifiers={"name": f"eth{i}"},
                          attributes={"name": f"eth{i}", "mac": f"02:00:{n >> 8 & 255:02x}:{n & 255:02x}:00:{i + 1:02x}",
                                      "speed_mbps": 10000}, collector="network"))
        relations.append(Relation(from_="computer", type="HAS_INTERFACE", to=ref))
    for i in range(PACKAGES):
        name = f"package-{i:04d}-lib"
        sw, pkg = f"sw:{name}", f"pkg:{name}"
        items.append(Item(class_="Software", ref=sw, identifiers={"purl": f"pkg:deb/debian/{name}"},
                          attributes={"name": name, "ecosystem": "deb"}, collector="software"))
        items.append(Item(class_="SoftwareInstall", ref=pkg, identifiers={"package": f"deb:{name}:amd64"},
                          attributes={"name": name, "version": f"1.{i}.0-1+deb12u1", "arch": "amd64",
                                      "installed_size_kb": 1024 + i}, collector="software"))
        relations += [Relation(from_=pkg, type="INSTALLED_ON", to="computer"),
                      Relation(from_=pkg, type="INSTANCE_OF", to=sw)]
    return Report(schema=SCHEMA_V1, report_id=f"load-{n:05d}-full-{uuid.uuid4().hex[:8]}",
                  source=Source(kind="agent", id=f"load-agent-{n:05d}", version="0.1.0"), collected_at=T0,
                  collectors={c: CollectorStatus(status="ok") for c in ("hardware", "os", "network", "software")},
                  items=items, relations=relations)


def delta_report(n: int, base: str, k: int) -> Report:
    name = "package-0007-lib"
    items = [computer(n),
             Item(class_="SoftwareInstall", ref=f"pkg:{name}", identifiers={"package": f"deb:{name}:amd64"},
                  attributes={"name": name, "version": f"1.7.{k}-1+deb12u1", "arch": "amd64"}, collector="software")]
    return Report(schema=SCHEMA_V1, report_id=f"load-{n:05d}-delta-{k}-{uuid.uuid4().hex[:8]}",
                  source=Source(kind="agent", id=f"load-agent-{n:05d}", version="0.1.0"),
                  collected_at=T0 + timedelta(hours=k), mode="delta", base_report_id=base,
                  collectors={"hardware": CollectorStatus(status="ok", unchanged=True),
                              "os": CollectorStatus(status="ok", unchanged=True),
                              "network": CollectorStatus(status="ok", unchanged=True),
                              "software": CollectorStatus(status="ok")},
                  items=items, relations=[Relation(from_=f"pkg:{name}", type="INSTALLED_ON", to="computer")])


def workload(agents: int, deltas: int) -> tuple[list[tuple[str, bytes]], int, int]:
    """(kind, gzipped body) in send order: every agent's full report, then their deltas in rounds."""
    fulls, out = [], []
    full_size = delta_size = 0
    for n in range(agents):
        report = full_report(n)
        body = encode_report(report)
        full_size = len(body)
        fulls.append(report.report_id)
        out.append(("full", gzip.compress(body, 6)))
    for k in range(1, deltas + 1):
        for n in range(agents):
            body = encode_report(delta_report(n, fulls[n], k))
            delta_size = len(body)
            out.append(("delta", gzip.compress(body, 6)))
    return out, full_size, delta_size


async def drive(url: str, token: str, work: list[tuple[str, bytes]], concurrency: int
                ) -> tuple[float, dict[str, list[float]], int]:
    """Send in order with `concurrency` clients: a full report is always sent before its deltas."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    latencies: dict[str, list[float]] = {"full": [], "delta": []}
    errors = 0
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for w in work:
        queue.put_nowait(w)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            kind, body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url + "/api/v1/reports", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status not in (200, 202):
                    errors += 1
                    if errors <= 3:
                        print(f"  HTTP {resp.status}: {(await resp.text())[:200]}", file=sys.stderr)
            latencies[kind].append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies, errors


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """The server's peak RSS; with pre-forked workers, the sum over its children."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    if kids:
        return sum(peak_rss_mib(k) for k in kids)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--deltas", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1],
                    help="collector.workers values to run (each beside the same single-process peer)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    work, full_size, delta_size = workload(args.agents, args.deltas)
    print(f"{args.agents} agents: {args.agents} full reports of {full_size / 1024:.0f} KiB JSON, "
          f"{args.agents * args.deltas} deltas of {delta_size / 1024:.1f} KiB (built in {time.perf_counter() - t0:.1f} s)")
    rows = []
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            store = sqlite_url(Path(tmp) / "fg.sqlite")
            token = subprocess.run([sys.executable, "-m", "cmdb.cli", "token", "create", "--name", "load",
                                    "--role", "agent", "--store", store], cwd=REPO, capture_output=True,
                                   text=True, check=True).stdout.strip()
            servers = [(f"fleetgraph w{w}", [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen",
                                             "127.0.0.1:0" if w == 1 else f"127.0.0.1:{_free_port()}",
                                             "--store", store, "--no-reconcile", "--rate-limit-token", "0",
                                             "--rate-limit-source", "0", "--log-level", "warning",
                                             "--workers", str(w)])
                       for w in args.workers]
            servers.append(("bare orjson", [sys.executable, "bench/peer_ingest.py", f"{tmp}/peer.sqlite",
                                            "--orjson"]))
            for name, argv in servers:
                proc, url = start(argv, Path(tmp) / f"{name.split()[0]}.log")
                try:
                    wall, lat, errors = asyncio.run(drive(url, token, work, concurrency))
                    rss = peak_rss_mib(proc.pid)
                finally:
                    proc.terminate()
                    proc.wait()
                rows.append((name, concurrency, len(work) / wall, pct(lat["full"], 0.5), pct(lat["full"], 0.99),
                             pct(lat["delta"], 0.5), pct(lat["delta"], 0.99), rss, errors))
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'server':<14} {'conc':>4} {'reports/s':>9} {'full p50':>9} {'full p99':>9} {'delta p50':>9} "
          f"{'delta p99':>9} {'RSS MiB':>8} {'errors':>6}")
    for r in rows:
        print(f"{r[0]:<14} {r[1]:>4} {r[2]:>9.1f} {r[3]:>9.1f} {r[4]:>9.1f} {r[5]:>9.1f} {r[6]:>9.1f} {r[7]:>8.0f} "
              f"{r[8]:>6}")
    for concurrency in args.concurrency:
        peer = next(r for r in rows if r[0] == "bare orjson" and r[1] == concurrency)
        for ours in (r for r in rows if r[0].startswith("fleetgraph") and r[1] == concurrency):
            print(f"concurrency {concurrency}: {ours[0]} / bare orjson = {ours[2] / peer[2]:.2f}x reports/s "
                  f"(target >= 1.4x); delta p99 {ours[6]:.0f} ms, full p99 {ours[4]:.0f} ms (target p99 <= 60 ms)")


if __name__ == "__main__":
    main()
