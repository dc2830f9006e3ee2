"""SNMP walk speed, measured beside net-snmp's own tools in the same run (issue 4).

1. Full walk of net-snmp snmpd (this machine): `snmpbulkwalk -v2c -Cr50 -On .1` against our
   walker (discovery.snmp.client.walk, v2c, 50 repetitions) and against pysnmp's stock
   `bulk_walk_cmd` (lookupMib=False), OIDs per second and the ratios. v3 (SHA/AES) too.
2. 20 lab hosts scanned concurrently: snmpsim serving the recorded real devices on 20 loopback
   endpoints, `scan_snmp_host` on each (the whole scan: probe, every walk, report), total wall
   time and per-host cost, beside the same 20 scanned one after the other.

Run: .venv/bin/python bench/snmp_walk.py [--runs 5]. Uses 127.0.0.11:16171 and
127.0.0.21-28:16171-16173 (not the test ports, so it can run beside the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pysnmp.hlapi.v3arch.asyncio import (  # noqa: E402
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_walk_cmd,
)

from discovery.snmp import SnmpCredential, scan_snmp_host  # noqa: E402
from discovery.snmp.client import CommunitySession, walk  # noqa: E402
from discovery.snmp.usm import UsmSession  # noqa: E402
from tests.integration.discovery import snmp_lab  # noqa: E402

ADDRESS, PORT = "127.0.0.11", 16171
SIM_PORTS = (16171, 16172, 16173)
V3 = SnmpCredential("3", user="labv3", auth_protocol="SHA", auth_key="labAuthPass123", priv_protocol="AES",
                    priv_key="labPrivPass123")


def net_snmp(args: list[str], env: dict) -> tuple[int, float]:
    started = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
    seconds = time.perf_counter() - started
    return sum(1 for line in out.splitlines() if " = " in line and "No more variables" not in line), seconds


async def ours(credential: SnmpCredential) -> tuple[int, float]:
    session = (UsmSession(ADDRESS, PORT, credential, 2.0, 1) if credential.version == "3"
               else CommunitySession(ADDRESS, PORT, "public", "2c", 2.0, 1))
    started = time.perf_counter()
    result = await walk(session, "1.3", 50)
    seconds = time.perf_counter() - started
    session.close()
    return len(result.values), seconds


async def stock_pysnmp() -> tuple[int, float]:
    engine = SnmpEngine()
    target = await UdpTransportTarget.create((ADDRESS, PORT), timeout=2, retries=1)
    count = 0
    started = time.perf_counter()
    async for error, status, _, varbinds in bulk_walk_cmd(engine, CommunityData("public", mpModel=1), target,
                                                          ContextData(), 0, 50, ObjectType(ObjectIdentity("1.3")),
                                                          lexicographicMode=True, lookupMib=False):
        if error or status:
            break
        count += len(varbinds)
    seconds = time.perf_counter() - started
    engine.close_dispatcher()
    return count, seconds


def best(samples: list[tuple[int, float]]) -> tuple[int, float, float]:
    """(OIDs, median seconds, OIDs/s at the median)."""
    seconds = statistics.median(s for _, s in samples)
    oids = samples[-1][0]
    return oids, seconds, oids / seconds


async def scan_all(targets, credentials_for, concurrently: bool) -> tuple[float, float, list]:
    engine = SnmpEngine()
    started, cpu = time.perf_counter(), time.process_time()
    if concurrently:
        scans = await asyncio.gather(*(scan_snmp_host(a, p, [credentials_for(i)], "bench", 2.0, 1, engine)
                                       for i, (a, p) in enumerate(targets)))
    else:
        scans = [await scan_snmp_host(a, p, [credentials_for(i)], "bench", 2.0, 1, engine)
                 for i, (a, p) in enumerate(targets)]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.close_dispatcher()
    return seconds, cpu, scans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fleetgraph-snmp-bench-"))
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(root / "client"), "MIBS": ""}
    agents = [snmp_lab.start_snmpd(root, ADDRESS, PORT)]
    try:
        print(f"== full walk of net-snmp snmpd at {ADDRESS}:{PORT}, {args.runs} runs, median")
        walk_cmd = ["snmpbulkwalk", "-v2c", "-c", "public", "-Cr50", "-On", f"{ADDRESS}:{PORT}", ".1"]
        peer = best([net_snmp(walk_cmd, env) for _ in range(args.runs)])
        mine = best([asyncio.run(ours(SnmpCredential("2c", community="public"))) for _ in range(args.runs)])
        stock = best([asyncio.run(stock_pysnmp()) for _ in range(max(1, args.runs // 2))])
        v3_cmd = ["snmpbulkwalk", "-v3", "-l", "authPriv", "-u", "labv3", "-a", "SHA", "-A", "labAuthPass123",
                  "-x", "AES", "-X", "labPrivPass123", "-Cr50", "-On", f"{ADDRESS}:{PORT}", ".1"]
        peer_v3 = best([net_snmp(v3_cmd, env) for _ in range(args.runs)])
        mine_v3 = best([asyncio.run(ours(V3)) for _ in range(max(1, args.runs // 2))])
        rows = [("snmpbulkwalk -v2c -Cr50", peer), ("fleetgraph walk v2c (max-rep 50)", mine),
                ("pysnmp bulk_walk_cmd v2c (lookupMib=False)", stock),
                ("snmpbulkwalk -v3 SHA/AES -Cr50", peer_v3), ("fleetgraph walk v3 SHA/AES (pysnmp USM)", mine_v3)]
        for name, (oids, seconds, rate) in rows:
            print(f"  {name:45s} {oids:6d} OIDs  {seconds * 1000:8.1f} ms  {rate:9.0f} OIDs/s")
        print(f"  ratio fleetgraph v2c / snmpbulkwalk: {mine[2] / peer[2]:.2f}x  (target >= 0.25x)")
        print(f"  ratio pysnmp stock v2c / snmpbulkwalk: {stock[2] / peer[2]:.2f}x")
        print(f"  ratio fleetgraph v3 / snmpbulkwalk v3: {mine_v3[2] / peer_v3[2]:.2f}x")

        agents.append(snmp_lab.start_snmpsim(root, ports=SIM_PORTS))
        targets = agents[-1].endpoints[:20]
        communities = sorted(p.stem for p in (snmp_lab.CORPORA / "snmpsim").glob("*.snmprec"))
        credentials_for = lambda i: SnmpCredential("2c", community=communities[i % len(communities)])  # noqa: E731
        asyncio.run(scan_all(targets[:2], credentials_for, True))  # warm snmpsim's per-file indexes
        concurrent, cpu, scans = asyncio.run(scan_all(targets, credentials_for, True))
        sequential, _, _ = asyncio.run(scan_all(targets, credentials_for, False))
        requests = sum(s.summary.get("requests", 0) for s in scans)
        ok = sum(1 for s in scans if s.report is not None)
        oids = sum(s.summary.get("oids", 0) for s in scans)
        print(f"== {len(targets)} lab hosts (snmpsim, recorded real devices), full scan each")
        print(f"  concurrently: {concurrent:6.2f} s total, {concurrent / len(targets) * 1000:7.1f} ms per host, "
              f"{ok}/{len(targets)} reports, {oids} OIDs")
        print(f"  scanner CPU (this process): {cpu:5.2f} s, {cpu / len(targets) * 1000:6.1f} ms per host; "
              f"{requests} requests, {concurrent / requests * 1000:.2f} ms wall per request: snmpsim (one "
              "Python process answering every endpoint) is the bottleneck, not the scanner")
        print(f"  one by one:   {sequential:6.2f} s total, {sequential / len(targets) * 1000:7.1f} ms per host")
        print(f"  ratio one-by-one / concurrent: {sequential / concurrent:.2f}x")
    finally:
        for agent in agents:
            agent.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
