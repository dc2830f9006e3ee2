"""Reports shaped like the agent's, for reconcile tests: one machine, its OS, disks, interfaces with
IPs, and packages (Software + SoftwareInstall). Every report goes through the wire format's
encoder and validating decoder, so a fixture the collector would reject fails here first."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import msgspec

from cmdb.report import CollectorStatus, Item, Relation, Report, Source, decode_report, encode_report

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
_report_numbers = itertools.count(1)

COLLECTORS = ("hardware", "os", "network", "software")
DEFAULT_ATTRIBUTES = {"hostname": "web01", "fqdn": "web01.example.com", "manufacturer": "Dell Inc.",
                      "model": "PowerEdge R640", "serial": "SN-0001", "memory_bytes": 68719476736,
                      "cpu_count": 16}


def package_items(packages: dict[str, str]) -> tuple[list[Item], list[Relation]]:
    """Items and relations for {package name: version}, Debian amd64."""
    items: list[Item] = []
    relations: list[Relation] = []
    for name, version in packages.items():
        sw_ref, pkg_ref = f"sw:deb:{name}", f"pkg:deb:{name}:amd64"
        items.append(Item(class_="Software", ref=sw_ref, identifiers={"purl": f"pkg:deb/debian/{name}"},
                          attributes={"name": name, "ecosystem": "deb"}, collector="software"))
        items.append(Item(class_="SoftwareInstall", ref=pkg_ref,
                          identifiers={"package": f"deb:{name}:amd64"},
                          attributes={"name": name, "version": version, "arch": "amd64"},
                          collector="software"))
        relations.append(Relation(from_=pkg_ref, type="INSTALLED_ON", to="computer"))
        relations.append(Relation(from_=pkg_ref, type="INSTANCE_OF", to=sw_ref))
    return items, relations


def machine_report(
    *,
    identifiers: dict | None = None,
    attributes: dict | None = None,
    interfaces: dict[str, list[str]] | None = None,
    packages: dict[str, str] | None = None,
    disks: tuple[str, ...] = ("sda",),
    statuses: dict[str, str] | None = None,
    mode: str = "full",
    source_id: str = "agent-01",
    source_kind: str = "agent",
    collected_at: datetime | None = None,
    report_id: str | None = None,
) -> Report:
    """One machine's full report. `identifiers`/`attributes` are the Computer item's."""
    number = next(_report_numbers)
    identifiers = {"serial": "SN-0001", "system_uuid": "4c4c4544-0042-3510-8052-b4c04f4d3732",
                   "mac": ["00:1a:2b:3c:4d:5e"], "fqdn": "web01.example.com", "hostname": "web01",
                   "agent_id": "agent-01"} if identifiers is None else identifiers
    attributes = dict(DEFAULT_ATTRIBUTES) if attributes is None else attributes
    interfaces = {"eth0": ["10.0.0.5"]} if interfaces is None else interfaces
    packages = {"bash": "5.2.15-2", "coreutils": "9.1-1"} if packages is None else packages

    items = [
        Item(class_="Computer", ref="computer", identifiers=identifiers, attributes=attributes,
             collector="hardware"),
        Item(class_="OperatingSystem", ref="os", identifiers={"family": "linux"},
             attributes={"name": "Debian GNU/Linux", "version": "12"}, collector="os"),
    ]
    relations = [Relation(from_="os", type="RUNS_ON", to="computer")]
    for disk in disks:
        items.append(Item(class_="Disk", ref=f"disk:{disk}", identifiers={"name": disk},
                          attributes={"size_bytes": 480103981056}, collector="hardware"))
        relations.append(Relation(from_="computer", type="HAS_DISK", to=f"disk:{disk}"))
    for if_name, addresses in interfaces.items():
        items.append(Item(class_="Interface", ref=f"if:{if_name}", identifiers={"name": if_name},
                          attributes={"name": if_name, "mtu": 1500}, collector="network"))
        relations.append(Relation(from_="computer", type="HAS_INTERFACE", to=f"if:{if_name}"))
        for address in addresses:
            items.append(Item(class_="IPAddress", ref=f"ip:{address}", identifiers={"address": address},
                              attributes={"address": address, "prefix_length": 24}, collector="network"))
            relations.append(Relation(from_=f"if:{if_name}", type="HAS_IP", to=f"ip:{address}"))
    pkg_items, pkg_relations = package_items(packages)
    items += pkg_items
    relations += pkg_relations

    statuses = statuses or {}
    report = Report(
        schema="fleetgraph.report/1",
        report_id=report_id or f"rpt-{source_id}-{number:06d}",
        source=Source(kind=source_kind, id=source_id, version="0.1.0"),
        collected_at=collected_at or T0 + timedelta(hours=number),
        mode=mode,
        base_report_id="rpt-base-000001" if mode == "delta" else None,
        collectors={c: CollectorStatus(status=statuses.get(c, "ok")) for c in COLLECTORS},
        items=items,
        relations=relations,
    )
    return decode_report(encode_report(report))


def again(report: Report, **changes) -> Report:
    """The same report sent again later (new report id and time), with optional struct changes."""
    number = next(_report_numbers)
    fields = {"report_id": f"rpt-again-{number:06d}",
              "collected_at": report.collected_at + timedelta(hours=1)}
    fields.update(changes)
    return decode_report(encode_report(msgspec.structs.replace(report, **fields)))


def synthetic_packages(count: int) -> dict[str, str]:
    return {f"package-{i:05d}": f"1.{i % 17}.{i % 5}-{i % 3}" for i in range(count)}
