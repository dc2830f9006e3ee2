"""The report builder, and the shape checks every collector passes (one contract for all)."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from agent import FLEETGRAPH_VERSION
from agent.builder import build_report, count_by_class
from agent.collectors import COLLECTORS, Contribution
from agent.context import LocalContext
from cmdb.report import check_report, decode_report, encode_report

AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def report():
    return build_report(LocalContext(agent_id=AGENT_ID))


@pytest.mark.parametrize("collector", COLLECTORS, ids=lambda c: c.name)
def test_every_collector_yields_valid_items(collector):
    """The collector contract: alone, each collector gives a report the collector would accept,
    and every item it made names it (an annotating collector names none: it owns nothing)."""
    report = build_report(LocalContext(agent_id=AGENT_ID), [collector])
    status = report.collectors[collector.name]
    assert status.status in ("ok", "not_applicable"), status.reason
    check_report(report)
    decode_report(encode_report(report))
    for item in report.items:
        # The seeded Computer item names a collector only when that collector added to it.
        owner = None if getattr(collector, "annotates", False) else collector.name
        assert item.collector == owner or (item.ref == "computer" and item.collector is None)
        for value in [*item.identifiers.values(), *item.attributes.values()]:
            assert value not in ("", None, [])


def test_full_report_on_this_machine(report):
    check_report(report)
    decoded = decode_report(encode_report(report))
    assert decoded.source.kind == "agent" and decoded.source.id == AGENT_ID
    assert decoded.source.version == FLEETGRAPH_VERSION and decoded.mode == "full"
    assert uuid.UUID(decoded.report_id).version == 4
    assert decoded.collected_at.utcoffset().total_seconds() == 0
    statuses = {name: s.status for name, s in report.collectors.items()}
    mine = {"hardware": "ok", "filesystems": "ok", "os": "ok", "network": "ok", "software.dpkg": "ok",
            "software.rpm": "not_applicable", "software.apk": "not_applicable"}  # a Debian machine
    assert {name: statuses[name] for name in mine} == mine
    assert set(statuses.values()) <= {"ok", "not_applicable"}
    assert all(s.duration_ms is not None for s in report.collectors.values())


def test_one_software_install_per_dpkg_line(report):
    lines = subprocess.run(["dpkg-query", "-W"], capture_output=True, check=True).stdout.splitlines()
    assert count_by_class(report)["SoftwareInstall"] == len(lines)


def test_interfaces_match_ip_json(report):
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, check=True).stdout)
    interfaces = {i.identifiers["name"]: i for i in report.items if i.class_ == "Interface"}
    assert set(interfaces) == {link["ifname"] for link in links}
    addresses = {i.identifiers["address"] for i in report.items if i.class_ == "IPAddress"}
    assert addresses == {a["local"] for link in links for a in link.get("addr_info", [])}
    for link in links:
        assert interfaces[link["ifname"]].attributes["mtu"] == link["mtu"]


def test_computer_item(report):
    computer = next(i for i in report.items if i.ref == "computer")
    assert report.items[0] is computer and computer.class_ == "Computer"
    assert computer.identifiers["agent_id"] == AGENT_ID
    assert computer.attributes["cpu_threads"] >= 1 and computer.attributes["memory_bytes"] > 0
    for mac in computer.identifiers.get("mac", []):
        assert not int(mac[:2], 16) & 0x02  # only burned-in MACs identify
    os_item = next(i for i in report.items if i.ref == "os")
    assert os_item.identifiers == {"family": "linux"}
    assert any(r.from_ == "os" and r.type == "RUNS_ON" and r.to == "computer" for r in report.relations)


class Boom:
    name = "boom"

    def is_enabled(self, ctx):
        return True

    def collect(self, ctx):
        raise RuntimeError("disk on fire")


class Absent:
    name = "absent"

    def is_enabled(self, ctx):
        return False

    def collect(self, ctx):  # pragma: no cover - never called
        raise AssertionError


class Static:
    def __init__(self, name, build):
        self.name, self._build = name, build

    def is_enabled(self, ctx):
        return True

    def collect(self, ctx):
        out = Contribution()
        self._build(out)
        return out


def test_a_failing_collector_does_not_stop_the_others():
    good = Static("good", lambda o: o.computer({"hostname": "web-01"}, {"hostname": "web-01"}))
    report = build_report(LocalContext(agent_id=AGENT_ID), [Boom(), Absent(), good])
    assert report.collectors["boom"].status == "failed"
    assert report.collectors["boom"].reason == "RuntimeError: disk on fire"
    assert report.collectors["absent"].status == "not_applicable"
    assert report.collectors["good"].status == "ok"
    computer = report.items[0]
    assert computer.identifiers == {"agent_id": AGENT_ID, "hostname": "web-01"}
    assert computer.collector == "good"
    check_report(report)


def test_invalid_contributions_fail_their_collector_only():
    bad_ref = Static("bad_ref", lambda o: o.add("Interface", "if:bad name", {"name": "bad name"}))
    bad_kind = Static("bad_kind", lambda o: o.add("Disk", "disk:x", {"wwn": "1"}))
    dangling = Static("dangling", lambda o: o.relate("computer", "HAS_DISK", "disk:nowhere"))
    clash = Static("clash", lambda o: o.add("Disk", "if:eth0", {"name": "eth0"}))
    eth0 = Static("eth0", lambda o: o.add("Interface", "if:eth0", {"name": "eth0"}))
    report = build_report(LocalContext(agent_id=AGENT_ID), [eth0, bad_ref, bad_kind, dangling, clash])
    statuses = {name: s.status for name, s in report.collectors.items()}
    assert statuses == {"eth0": "ok", "bad_ref": "failed", "bad_kind": "failed", "dangling": "failed",
                        "clash": "failed"}
    assert "disk:nowhere" in report.collectors["dangling"].reason
    assert "not a Disk" in report.collectors["clash"].reason
    assert [i.ref for i in report.items] == ["computer", "if:eth0"]
    check_report(report)


def test_mac_lists_merge_and_duplicate_relations_collapse():
    a = Static("a", lambda o: (o.computer({"mac": ["00:11:22:33:44:55"]}), o.add("Disk", "disk:sda", {"name": "sda"}),
                                o.relate("computer", "HAS_DISK", "disk:sda")))
    b = Static("b", lambda o: (o.computer({"mac": ["00:11:22:33:44:00", "00:11:22:33:44:55"]}),
                                o.relate("computer", "HAS_DISK", "disk:sda")))
    report = build_report(LocalContext(agent_id=AGENT_ID), [a, b])
    assert report.items[0].identifiers["mac"] == ["00:11:22:33:44:00", "00:11:22:33:44:55"]
    assert len(report.relations) == 1


def test_two_collectors_with_one_name_is_a_programming_error():
    with pytest.raises(ValueError, match="named"):
        build_report(LocalContext(agent_id=AGENT_ID), [Absent(), Absent()])


def test_an_annotating_collector_never_owns_the_items_it_annotates():
    """licenses.dpkg adds `license` to dpkg's packages. If software.dpkg failed, the license-only
    items must carry no collector, so reconcile removes none of the package's attributes."""
    from agent.collectors.base import Contribution

    class Owner:
        name = "owner"

        def __init__(self, fail: bool):
            self.fail = fail

        def is_enabled(self, ctx):
            return True

        def collect(self, ctx):
            if self.fail:
                raise RuntimeError("dpkg-query died")
            out = Contribution()
            out.add("SoftwareInstall", "pkg:deb:bash:amd64", {"package": "deb:bash:amd64"}, {"version": "5.2"})
            out.relate("pkg:deb:bash:amd64", "INSTALLED_ON", "computer")
            return out

    class Annotator:
        name = "annotator"
        annotates = True

        def is_enabled(self, ctx):
            return True

        def collect(self, ctx):
            out = Contribution()
            out.add("SoftwareInstall", "pkg:deb:bash:amd64", {"package": "deb:bash:amd64"}, {"license": "GPL-3.0-or-later"})
            out.relate("pkg:deb:bash:amd64", "INSTALLED_ON", "computer")
            return out

    ctx = LocalContext(agent_id=AGENT_ID)
    both = build_report(ctx, [Owner(fail=False), Annotator()])
    [pkg] = [i for i in both.items if i.ref == "pkg:deb:bash:amd64"]
    assert pkg.collector == "owner" and pkg.attributes == {"version": "5.2", "license": "GPL-3.0-or-later"}
    alone = build_report(ctx, [Owner(fail=True), Annotator()])
    [pkg] = [i for i in alone.items if i.ref == "pkg:deb:bash:amd64"]
    assert alone.collectors["owner"].status == "failed"
    assert pkg.collector is None and pkg.attributes == {"license": "GPL-3.0-or-later"}
