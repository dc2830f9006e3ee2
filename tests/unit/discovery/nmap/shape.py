"""HostScans reduced to what a fixture's expected.json states (test helper)."""

from __future__ import annotations

from typing import Any

from discovery.base import HostScan


def host_scan_shape(scan: HostScan) -> dict[str, Any]:
    if scan.report is None:
        return {"address": scan.address, "error": scan.error}
    report = scan.report
    items = {item.ref: item for item in report.items}
    host = items["host"]
    out: dict[str, Any] = {
        "address": scan.address,
        "source_id": report.source.id,
        "collectors": {name: status.status for name, status in report.collectors.items()},
        "class": host.class_,
        "identifiers": host.identifiers,
        "host_attributes": host.attributes,
        "addresses": sorted(i.identifiers["address"] for i in report.items if i.class_ == "IPAddress"),
        "services": {i.identifiers["name"]: i.attributes for i in report.items if i.class_ == "Service"},
        "os": ({"identifiers": items["os"].identifiers, "attributes": items["os"].attributes}
               if "os" in items else None),
        "relations": sorted(f"{r.from_} {r.type} {r.to}" for r in report.relations),
        "summary": scan.summary,
    }
    return out
