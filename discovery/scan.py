"""One scan: nmap over the targets, then SNMP and SSH host by host (bounded concurrency), each
host's report handed to a sink (the collector's ingest API, or a folder) as soon as it is made.

nmap runs first when it is in the plan: SSH is then tried only where nmap saw the SSH port open
(SNMP is UDP, which an unprivileged nmap cannot see, so SNMP is tried on every target). A host
that fails one protocol is still scanned with the others; every failure is kept with its reason
for the summary. Nothing here touches the store: reports go through ingest like an agent's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from discovery.base import HostScan
from discovery.credentials import ScanCredentials
from discovery.profiles import ScanPlan
from discovery.sink import ReportSink, SinkError

Progress = Callable[[HostScan, str | None], None]  # (result, delivery error) per finished host scan


@dataclass
class HostSummary:
    address: str
    protocols: dict[str, str] = field(default_factory=dict)  # protocol -> "ok" | failure reason
    summary: dict[str, Any] = field(default_factory=dict)
    delivered: int = 0

    @property
    def found(self) -> bool:
        return any(v == "ok" for v in self.protocols.values())

    @property
    def identified(self) -> bool:
        return bool(self.summary.get("vendor") or self.summary.get("os") or self.summary.get("model"))


@dataclass
class ScanSummary:
    plan: str
    hosts: dict[str, HostSummary] = field(default_factory=dict)
    duration_s: float = 0.0
    delivery_errors: list[str] = field(default_factory=list)

    def record(self, scan: HostScan, delivery_error: str | None) -> None:
        host = self.hosts.setdefault(scan.address, HostSummary(scan.address))
        host.protocols[scan.protocol] = "ok" if scan.report is not None else (scan.error or "failed")
        for key, value in scan.summary.items():
            if value is not None and key not in host.summary:
                host.summary[key] = value
        if delivery_error is None and scan.report is not None:
            host.delivered += 1
        elif delivery_error is not None:
            self.delivery_errors.append(f"{scan.address} {scan.protocol}: {delivery_error}")

    @property
    def found(self) -> int:
        return sum(1 for h in self.hosts.values() if h.found)

    @property
    def identified(self) -> int:
        return sum(1 for h in self.hosts.values() if h.identified)

    @property
    def failed(self) -> int:
        return sum(1 for h in self.hosts.values() if not h.found)


async def run_scan(plan: ScanPlan, credentials: ScanCredentials, scanner_id: str, sink: ReportSink,
                   known_hosts: Path, progress: Progress | None = None) -> ScanSummary:
    started = time.monotonic()
    summary = ScanSummary(plan.name)
    for address in plan.addresses:
        summary.hosts[address] = HostSummary(address)
    limit = asyncio.Semaphore(plan.concurrency)

    async def finish(scan: HostScan) -> None:
        error = None
        if scan.report is not None:
            try:
                await sink.send(scan.report)
            except SinkError as exc:
                error = str(exc)
        summary.record(scan, error)
        if progress is not None:
            progress(scan, error)

    ssh_hosts = list(plan.addresses)
    if "nmap" in plan.protocols:
        for scan in await _nmap_phase(plan, scanner_id):
            await finish(scan)
        for host in summary.hosts.values():
            host.protocols.setdefault("nmap", "no open port seen")
        if "ssh" in plan.protocols:
            ssh_key = f"tcp/{plan.ssh_port}"
            open_ssh = {a for a, h in summary.hosts.items() if ssh_key in h.summary.get("open_ports", ())}
            skipped = [a for a in ssh_hosts if a not in open_ssh]
            ssh_hosts = [a for a in ssh_hosts if a in open_ssh]
            for address in skipped:
                summary.hosts[address].protocols.setdefault(
                    "ssh", f"skipped: nmap saw tcp/{plan.ssh_port} closed or filtered")

    tasks: list[asyncio.Task] = []
    if "snmp" in plan.protocols:
        if not credentials.snmp:
            for address in plan.addresses:
                summary.hosts[address].protocols["snmp"] = "skipped: no [[snmp]] credentials"
        else:
            from discovery.snmp import scan_snmp_host

            for address in plan.addresses:
                tasks.append(asyncio.create_task(_bounded(limit, finish, scan_snmp_host(
                    address, plan.snmp_port, credentials.snmp, scanner_id, plan.timeout, plan.retries))))
    if "ssh" in plan.protocols:
        if not credentials.ssh:
            for address in ssh_hosts:
                summary.hosts[address].protocols["ssh"] = "skipped: no [[ssh]] credentials"
        else:
            from discovery.ssh import HostKeyPolicy, scan_ssh_host

            policy = HostKeyPolicy(known_hosts, trust_on_first_use=plan.trust_on_first_use)
            for address in ssh_hosts:
                tasks.append(asyncio.create_task(_bounded(limit, finish, scan_ssh_host(
                    address, plan.ssh_port, credentials.ssh, scanner_id, policy, plan.timeout))))
    if tasks:
        await asyncio.gather(*tasks)
    summary.duration_s = time.monotonic() - started
    return summary


async def _bounded(limit: asyncio.Semaphore, finish: Callable[[HostScan], Any], scan: Any) -> None:
    async with limit:
        result = await scan
    await finish(result)


async def _nmap_phase(plan: ScanPlan, scanner_id: str) -> list[HostScan]:
    from discovery.nmap import NmapError, NmapOptions, nmap_host_reports, run_nmap

    options = NmapOptions(ports=plan.ports, service_version=plan.service_version)
    try:
        run = await run_nmap(list(plan.addresses), options, timeout=max(60.0, plan.timeout * len(plan.addresses)))
    except NmapError as exc:
        return [HostScan(address, "nmap", error=f"nmap: {exc}") for address in plan.addresses]
    return nmap_host_reports(run, scanner_id, options)
