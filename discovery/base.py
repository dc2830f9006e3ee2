"""What every scanner returns: one `HostScan` per target host, carrying a complete
`fleetgraph.report/1` report built exactly like an agent's, or the reason there is none.

A scanner never writes the store: `discovery.scan` sends each report through the collector's
ingest API with the scanner's enrolled credential. Each scanned host is its own source
(`source.kind` = the protocol, `source.id` = `source_id(scanner_id, protocol, address)`), so the
collector's staleness rules retire a host's parts only when a *complete* scan of that host stops
seeing them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.report import SCHEMA_V1, CollectorStatus, Item, Relation, Report, Source

PROTOCOLS = ("nmap", "snmp", "ssh")


def source_id(scanner_id: str, protocol: str, address: str, port: int | None = None) -> str:
    """`<scanner id>/<protocol>/<address>[:<port>]`: stable per scanner, protocol and target."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    where = address if port is None else f"{address}:{port}"
    return f"{scanner_id}/{protocol}/{where}"


@dataclass
class HostScan:
    """The outcome of scanning one host with one protocol.

    `report` is None when nothing could be collected; `error` then says why in words an operator
    acts on ("timeout after 2.0 s: no SNMP reply (wrong community?)", "authentication failure:
    wrong v3 key", "unknown host key for [127.0.0.12]:2222", "connection refused"). A partial scan
    has a report whose failed collectors say `failed` with their reason, and `error` None.
    `summary` is what the end-of-scan table shows: vendor, model, type, os, serial, ...
    """

    address: str
    protocol: str
    report: Report | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def identified(self) -> bool:
        return self.report is not None and bool(self.summary.get("vendor") or self.summary.get("os"))


def build_report(source_kind: str, source_id_: str, items: list[Item], relations: list[Relation],
                 collectors: dict[str, CollectorStatus], version: str | None = None,
                 collected_at: datetime | None = None) -> Report:
    """A full report of one scanned host (every scanner ends here, so all reports look alike)."""
    from agent import FLEETGRAPH_VERSION

    return Report(schema=SCHEMA_V1, report_id=f"{source_kind}-{uuid.uuid4().hex}",
                  source=Source(kind=source_kind, id=source_id_, version=version or FLEETGRAPH_VERSION),
                  collected_at=collected_at or datetime.now(UTC), mode="full",
                  collectors=collectors, items=items, relations=relations)
