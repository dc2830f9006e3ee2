"""One machine, three agents: the recorded FusionInventory and OCS inventories of the test VM and
our own agent's report of it (tests/fixtures/legacy/merge/<case>/), reconciled into one real
SQLite store in either order, make one Computer with one SoftwareInstall per package."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import UTC, datetime

import pytest

from cmdb.report import Report, decode_report, encode_report
from collector.legacy.mapping import detect_source_kind, inventory_report_id, map_inventory
from collector.legacy.xml import parse_request
from reconcile.engine import reconcile_report

from .conftest import FIXTURES, cases

MERGES = [p for p in sorted((FIXTURES / "merge").iterdir()) if p.is_dir()]
INVENTORIES = {c.name: c for c in cases("inventories")}


def reports_of(folder) -> dict[str, Report]:
    expected = json.loads((folder / "expected.json").read_text())
    reports = {}
    for name in expected["inventories"]:
        case = INVENTORIES[name]
        request = parse_request(case.xml)
        headers = case.expected["headers"]
        kind = detect_source_kind(headers.get("User-Agent"), headers.get("Content-Type"), request)
        report = map_inventory(request, kind, inventory_report_id(kind, request.device_id, case.xml),
                               datetime.fromisoformat(case.expected["received_at"]))
        reports[name] = decode_report(encode_report(report))
    reports["agent"] = decode_report(gzip.decompress((folder / expected["agent_report"]).read_bytes()))
    return reports


ORDERS = [(folder, order) for folder in MERGES for order in itertools.permutations(range(3))
          if order in ((0, 1, 2), (2, 0, 1))]  # legacy agents first, then ours; ours first


@pytest.mark.parametrize("folder, order", ORDERS, ids=[f"{f.name}-{''.join(map(str, o))}" for f, o in ORDERS])
def test_three_agents_make_one_computer(store, folder, order):
    expected = json.loads((folder / "expected.json").read_text())
    reports = list(reports_of(folder).values())
    for at, index in enumerate(order):
        # In sequence, an hour apart, whatever their own clocks said: the order is the test.
        report = reports[index]
        report.collected_at = datetime(2026, 11, 22, at, tzinfo=UTC)
        reconcile_report(store, report)
    computers = store.list_cis("Computer")
    assert len(computers) == expected["computers"], [c.attributes.get("hostname") for c in computers]
    computer = computers[0]
    installs = store.relationships(computer.ci_id, direction="in", type="INSTALLED_ON")
    assert len(installs) == expected["installed_on_computer"]
    assert store.count_cis()["SoftwareInstall"] == expected["software_installs"]
    identifiers: dict[str, list[str]] = {}
    for ident in store.identifiers_of([computer.ci_id])[computer.ci_id]:
        identifiers.setdefault(ident.kind, []).append(ident.value)
    for kind, values in expected["computer_identifiers"].items():
        assert sorted(identifiers[kind]) == values
    assert len(identifiers["agent_id"]) == expected["agent_ids"]  # our agent's id and both DEVICEIDs
    assert store.count_cis()["OperatingSystem"] == 1
    counts = store.count_cis()
    for ci_class, count in expected["counts"].items():
        assert counts.get(ci_class, 0) == count, ci_class
