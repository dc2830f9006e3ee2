"""Shared shapes for the contract suite: times, provenance, and a realistic host with its dependents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cmdb.changes import AttributeChange, ChangeSet, IdentifierClaim, NewCI, Provenance, RelationChange
from cmdb.ids import new_ci_id
from cmdb.store import Store

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def provenance(minutes: float = 0, report_id: str | None = "report-0001", kind: str = "agent",
               source_id: str = "agent-web-01") -> Provenance:
    return Provenance(kind, source_id, report_id, at(minutes))


@dataclass(frozen=True)
class Fleet:
    host: str
    os: str
    iface: str
    ip: str
    install: str
    software: str
    service: str
    business: str
    provenance: Provenance

    @property
    def all(self) -> list[str]:
        return [self.host, self.os, self.iface, self.ip, self.install, self.software, self.service,
                self.business]


HOST_ATTRIBUTES = {"hostname": "web-01", "ram_mb": 16384, "cpu_count": 8, "virtual": False,
                   "load": 0.75, "tags": ["prod", "web"]}


def fleet_changes(f: Fleet) -> ChangeSet:
    cis = [(f.host, "Computer"), (f.os, "OperatingSystem"), (f.iface, "Interface"), (f.ip, "IPAddress"),
           (f.install, "SoftwareInstall"), (f.software, "Software"), (f.service, "Service"),
           (f.business, "BusinessService")]
    identifiers = [
        (f.host, "Computer", "serial", "SN-123"), (f.host, "Computer", "hostname", "web-01"),
        (f.os, "OperatingSystem", "family", f"{f.host}/linux"),
        (f.iface, "Interface", "name", f"{f.host}/eth0"),
        (f.ip, "IPAddress", "address", f"{f.iface}/10.0.0.5"),
        (f.install, "SoftwareInstall", "package", f"{f.host}/openssl"),
        (f.software, "Software", "purl", "pkg:deb/debian/openssl"),
        (f.service, "Service", "name", f"{f.host}/nginx"),
        (f.business, "BusinessService", "name", "Shop"),
    ]
    attributes = {
        f.host: HOST_ATTRIBUTES,
        f.os: {"name": "Debian GNU/Linux", "version": "12"},
        f.iface: {"mac": "52:54:00:12:34:56", "speed_mbps": 1000},
        f.ip: {"address": "10.0.0.5", "prefix": 24},
        f.install: {"version": "3.0.11-1"},
        f.software: {"name": "openssl"},
        f.service: {"port": 443, "protocol": "tcp"},
        f.business: {"name": "Shop", "owner": "ecommerce"},
    }
    relations = [("RUNS_ON", f.os, f.host), ("HAS_INTERFACE", f.host, f.iface), ("HAS_IP", f.iface, f.ip),
                 ("INSTALLED_ON", f.install, f.host), ("INSTANCE_OF", f.install, f.software),
                 ("RUNS_ON", f.service, f.host), ("DEPENDS_ON", f.business, f.service)]
    return ChangeSet(
        provenance=f.provenance,
        created=[NewCI(ci_id, cls) for ci_id, cls in cis],
        identifiers=[IdentifierClaim(ci_id, cls, kind, value) for ci_id, cls, kind, value in identifiers],
        attributes=[AttributeChange(ci_id, name, None, value)
                    for ci_id, attrs in attributes.items() for name, value in attrs.items()],
        relations=[RelationChange(t, a, b) for t, a, b in relations],
        seen=[ci_id for ci_id, _ in cis],
    )


def apply_fleet(store: Store, report_seq: int | None = None) -> Fleet:
    ids = sorted(new_ci_id() for _ in range(8))  # ids are unique even within one millisecond
    f = Fleet(*ids, provenance=provenance(0))
    store.apply(fleet_changes(f), report_seq)
    return f


def snapshot(store: Store) -> tuple:
    """Everything the store answers about CIs, relations, history and reports, to compare."""
    cis = store.list_cis(state=None, limit=10_000)
    return (store.count_cis(None), store.count_relationships(None),
            [(c, store.relationships(c.ci_id), store.history(c.ci_id)) for c in cis],
            {s: store.count_reports(s) for s in ("pending", "reconciled", "failed")})
