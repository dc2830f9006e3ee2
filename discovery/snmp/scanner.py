"""`scan_snmp_host`: try the credential sets in order, walk the device with the first that
answers, and return a HostScan carrying its report, or the reason there is none.

A credential "answers" when a GET of the system scalars gets any authenticated response (even
one saying noSuchObject). A refused port stops at once (no credential can help); a timeout with a
v3 user is diagnosed with one engine-discovery probe (wrong privacy key vs nothing there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from discovery.base import HostScan
from discovery.snmp import mibs
from discovery.snmp.client import (
    DEFAULT_MAX_REPETITIONS,
    CommunitySession,
    Session,
    SnmpError,
    SnmpErrorStatus,
    WalkResult,
    get_values,
    walk_many,
)
from discovery.snmp.credentials import SnmpCredential
from discovery.snmp.device import read_device
from discovery.snmp.report import build_device_report
from discovery.snmp.usm import UsmSession, probe_v3_engine

# Walk roots of each collector (system is GET, not walked).
COLLECTOR_ROOTS = {name: roots for name, roots in mibs.WALKS.items()}


def open_session(address: str, port: int, cred: SnmpCredential, timeout: float, retries: int,
                 engine: SnmpEngine | None) -> Session:
    if cred.version == "3":
        return UsmSession(address, port, cred, timeout, retries, engine)
    return CommunitySession(address, port, cred.community or "", cred.version, timeout, retries)


async def _explain(exc: SnmpError, cred: SnmpCredential, address: str, port: int, timeout: float) -> str:
    """The words for a failed probe, after telling a wrong v3 privacy key from an absent agent."""
    if exc.kind != "timeout":
        return str(exc)
    if cred.version != "3":
        return f"timeout: {exc} (wrong community or SNMP version, or no SNMP agent at {address}:{port})"
    verdict, engine_id = await probe_v3_engine(address, port, timeout)
    if verdict == "refused":
        return "connection refused (ICMP port unreachable): no SNMP agent listens on that UDP port"
    if verdict == "engine":
        return (f"timeout: the SNMPv3 engine {engine_id.hex() if engine_id else ''} answers discovery but not "
                f"this user's requests: wrong privacy key or privacy protocol ({cred.priv_protocol})")
    return f"timeout: {exc} (no SNMP agent answered at {address}:{port})"


def _collector_failures(walked: WalkResult) -> tuple[dict[str, str], dict[str, list[str]]]:
    failed: dict[str, str] = {}
    gaps: dict[str, list[str]] = {}
    for name, roots in COLLECTOR_ROOTS.items():
        reasons = [f"{root}: {walked.failed[root]}" for root in roots if root in walked.failed]
        if reasons:
            failed[name] = "; ".join(reasons)
        prefixes = tuple(root + "." for root in roots)
        found = [gap for gap in walked.gaps if gap.startswith(prefixes)]
        if found:
            gaps[name] = found
    return failed, gaps


async def scan_snmp_host(address: str, port: int, credentials: Sequence[SnmpCredential], scanner_id: str,
                         timeout: float, retries: int, engine: SnmpEngine | None = None, *,
                         max_repetitions: int = DEFAULT_MAX_REPETITIONS, concurrency: int = 4) -> HostScan:
    """Scan one host. Never raises for network or device trouble: the HostScan says what happened."""
    started = time.perf_counter()
    scan = HostScan(address=address, protocol="snmp")
    where = f"SNMP {address}:{port}"
    if not credentials:
        scan.error = f"{where}: no SNMP credential set to try: add an [[snmp]] entry to the credentials file"
        return scan
    attempts: list[str] = []
    for cred in credentials:
        session = open_session(address, port, cred, timeout, retries, engine)
        try:
            try:
                scalars = await get_values(session, mibs.SYSTEM_SCALARS)
            except SnmpError as exc:
                attempts.append(f"{cred.describe()}: {await _explain(exc, cred, address, port, timeout)}")
                if exc.kind == "refused" or attempts[-1].endswith("no SNMP agent listens on that UDP port"):
                    break  # nothing listens: no other credential can help
                continue
            except SnmpErrorStatus as exc:
                attempts.append(f"{cred.describe()}: {exc}")
                continue
            scan.report, scan.summary = await _walk_and_report(
                session, scalars, address, port, cred, scanner_id, max_repetitions, concurrency, started)
            scan.duration_s = round(time.perf_counter() - started, 3)
            return scan
        finally:
            session.close()
    scan.error = f"{where}: no credential set answered: " + "; ".join(attempts)
    scan.duration_s = round(time.perf_counter() - started, 3)
    return scan


async def _walk_and_report(session: Session, scalars: dict, address: str, port: int, cred: SnmpCredential,
                           scanner_id: str, max_repetitions: int, concurrency: int, started: float):
    roots = [root for roots in COLLECTOR_ROOTS.values() for root in roots]
    try:
        walked = await walk_many(session, roots, max_repetitions, concurrency)
    except SnmpError as exc:  # the agent answered the probe, then went silent
        walked = WalkResult(failed={root: str(exc) for root in roots})
    values = {**walked.values, **scalars}
    data = read_device(values)
    failed, gaps = _collector_failures(walked)
    report = build_device_report(data, address, port, scanner_id, cred.version, failed, gaps,
                                 seconds=time.perf_counter() - started)
    identity = data.identity
    summary = {
        "vendor": identity.vendor, "model": identity.model, "type": identity.device_type, "os": identity.os,
        "os_version": identity.os_version, "serial": identity.serial, "sys_name": data.system.name,
        "class": identity.ci_class, "interfaces": len(data.interfaces), "credential": cred.describe(),
        "requests": session.requests, "oids": len(values),
    }
    return report, summary


def scan_snmp_hosts(targets: Sequence[tuple[str, int]], credentials: Sequence[SnmpCredential], scanner_id: str,
                    timeout: float, retries: int, parallel: int = 20) -> list[HostScan]:
    """Convenience for scripts and benchmarks: scan several hosts concurrently on one engine."""
    async def run() -> list[HostScan]:
        engine = SnmpEngine()
        gate = asyncio.Semaphore(max(1, parallel))

        async def one(address: str, port: int) -> HostScan:
            async with gate:
                return await scan_snmp_host(address, port, credentials, scanner_id, timeout, retries, engine)
        try:
            return list(await asyncio.gather(*(one(a, p) for a, p in targets)))
        finally:
            engine.close_dispatcher()
    return asyncio.run(run())
