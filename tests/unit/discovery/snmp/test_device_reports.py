"""Parsers and report building over the recorded devices: every corpora walk and printer
recording becomes a report the collector accepts, with the interfaces, neighbours, chassis and
per-collector statuses the recordings hold."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache

import pytest

from cmdb.report import decode_report, encode_report
from discovery.snmp.device import read_device
from discovery.snmp.report import build_device_report
from discovery.snmp.software import date_and_time, parse_installed
from tests.unit.discovery.snmp.conftest import (
    CORPORA,
    FIXTURES,
    corpora_devices,
    corpora_expected,
    printer_cases,
)
from tests.unit.discovery.snmp.snmprec import read_snmprec


@lru_cache(maxsize=None)
def corpora_report(community: str):
    data = read_device(read_snmprec(CORPORA / "snmpsim" / f"{community}.snmprec"))
    return data, build_device_report(data, "127.0.0.21", 16161, "lab-scanner", "2c")


def items_of(report, class_):
    return [i for i in report.items if i.class_ == class_ and not i.reference]


@pytest.mark.parametrize("community", corpora_devices())
def test_every_recording_gives_a_report_the_collector_accepts(community):
    _, report = corpora_report(community)
    assert decode_report(encode_report(report)) == report  # the collector's own edge check
    assert report.source.kind == "snmp" and report.source.id == "lab-scanner/snmp/127.0.0.21:16161"
    assert set(report.collectors) == {"system", "interfaces", "ip", "entity", "host_resources", "services",
                                      "lldp", "cdp", "bridge", "printer"}


@pytest.mark.parametrize("community", corpora_devices())
def test_interface_count_is_the_iftable(community):
    expected = corpora_expected(community)
    data, report = corpora_report(community)
    assert len(items_of(report, "Interface")) == expected["ifTable_rows"]
    assert sorted(i.index for i in data.interfaces) == sorted(expected.get("ifIndex_values", []))
    status = report.collectors["interfaces"].status
    assert status == ("ok" if expected["ifTable_rows"] else "not_applicable")


def test_interface_names_are_unique_per_device():
    for community in corpora_devices():
        names = [i.identifiers["name"] for i in items_of(corpora_report(community)[1], "Interface")]
        assert len(names) == len(set(names)), community


@pytest.mark.parametrize("community, protocols", [
    ("cisco-n5000", {"lldp", "cdp"}), ("arista-dcs-7150s-52-cl", {"lldp"}), ("cisco-c3560", {"cdp"}),
    ("cisco-unmarked-0", {"cdp"}),
])
def test_lldp_and_cdp_neighbours_become_connected_to_edges(community, protocols):
    data, report = corpora_report(community)
    items = {i.ref: i for i in report.items}
    edges = [r for r in report.relations if r.type == "CONNECTED_TO" and r.attributes.get("protocol") in protocols]
    neighbours = [n for n in data.lldp + data.cdp if n.protocol in protocols]
    assert neighbours and len(edges) >= 1
    for edge in edges:
        assert items[edge.from_].class_ == "Interface"  # from the local port ...
        assert items[edge.to].reference  # ... to a pointer at the remote device
        assert items[edge.to].class_ in ("IPAddress", "NetworkDevice")
    for protocol in protocols:
        assert report.collectors[protocol].status == "ok"
    named = {e.attributes.get("remote_sys_name") for e in edges}
    assert {n.sys_name for n in neighbours if n.management_addresses or n.chassis_mac} <= named


def test_cdp_neighbour_details_of_the_c3560():
    data, _ = corpora_report("cisco-c3560")
    first = data.cdp[0]
    assert first.local_port and first.port_id and first.platform and first.management_addresses


def test_bridge_forwarding_table_links_ports_to_mac_holders():
    data, report = corpora_report("dlink-des3038")
    edges = [r for r in report.relations if r.attributes.get("protocol") == "bridge"]
    assert data.fdb and edges
    items = {i.ref: i for i in report.items}
    for edge in edges:
        assert items[edge.from_].class_ == "Interface" and items[edge.to].reference
    per_port = Counter(e.from_ for e in edges)
    assert max(per_port.values()) <= 8  # uplinks (many MACs) are not claimed as links


def test_device_identifiers_and_chassis_attributes():
    _, report = corpora_report("cisco-c3560")
    device = next(i for i in report.items if i.ref == "device")
    assert device.class_ == "NetworkDevice"
    assert device.identifiers["serial"] == "FOC1408Z61U"
    assert device.identifiers["sysname_ip"] == "dumsys-04@127.0.0.21"
    assert device.attributes["model"] == "WS-C3560G-48TS-E" and device.attributes["vendor"] == "Cisco"
    components = items_of(report, "HardwareModule")
    assert components and all(c.attributes.get("kind") in ("module", "powerSupply", "fan", "cpu", "chassis")
                              for c in components)


def test_linux_server_is_a_computer_like_the_agent_reports_it():
    data, report = corpora_report("linux-unknown-006")
    computer = next(i for i in report.items if i.ref == "device")
    assert computer.class_ == "Computer" and computer.identifiers["hostname"] == "dumsys-12"
    assert report.collectors["host_resources"].status == "ok"
    assert items_of(report, "FileSystem") and items_of(report, "SoftwareInstall")
    packages = [i.identifiers["package"] for i in items_of(report, "SoftwareInstall")]
    assert all(p.startswith("rpm:") and p.endswith(":unknown") for p in packages)
    assert "rpm:centos-release:unknown" in packages
    assert all(m == m.lower() for m in computer.identifiers.get("mac", []))


def test_absent_groups_are_not_applicable_and_nothing_is_claimed():
    _, report = corpora_report("clavister-amaranten")
    for name in ("entity", "host_resources", "lldp", "cdp", "bridge", "printer"):
        assert report.collectors[name].status == "not_applicable", name


def test_failed_collector_contributes_nothing_and_says_why():
    data, _ = corpora_report("cisco-c3560")
    report = build_device_report(data, "127.0.0.21", 16161, "s", "2c",
                                 failed={"interfaces": "1.3.6.1.2.1.2.2.1.2: walk cut short: timeout"})
    assert report.collectors["interfaces"].status == "failed"
    assert "timeout" in report.collectors["interfaces"].reason
    assert not items_of(report, "Interface")
    assert not [r for r in report.relations if r.type == "CONNECTED_TO" and r.attributes.get("protocol") == "cdp"
                and r.from_.startswith("if:")]


@pytest.mark.parametrize("case", printer_cases())
def test_printers(case):
    expected = json.loads((FIXTURES / "printers" / case / "expected.json").read_text())
    data = read_device(read_snmprec(FIXTURES / "printers" / case / "device.snmprec"))
    report = build_device_report(data, "127.0.0.23", 16161, "s", "2c")
    device = next(i for i in report.items if i.ref == "device")
    assert (device.class_, device.attributes["vendor"], device.attributes["device_type"]) == (
        expected["class"], expected["vendor"], expected["type"])
    assert device.attributes["model"] == expected["model"]
    assert device.identifiers.get("serial") == expected["serial"]
    assert device.identifiers["mac"] == expected["macs"]  # c2:b5:... is locally administered: not an identity
    assert device.attributes.get("page_count") == expected["page_count"]
    assert device.attributes.get("page_count_unit") == expected["page_count_unit"]
    assert {s.description: s.percent for s in data.printer.supplies} == expected["supplies"]
    assert len(items_of(report, "Interface")) == expected["interfaces"]
    assert sorted(i.identifiers["address"] for i in items_of(report, "IPAddress")) == expected["addresses"]
    assert report.collectors["printer"].status == "ok"


def _installed(names: list[str]) -> dict:
    return {f"1.3.6.1.2.1.25.6.3.1.2.{i}": n.encode() for i, n in enumerate(names, 1)}


def test_dpkg_names_follow_the_agents_identifiers_and_cut_names_are_completed_or_dropped():
    version = "1.2.3-4+deb12u5"
    cut_in_arch = f"{'a' * 40}-pkg_{version}_amd64"[:63]  # net-snmp's cut leaves "_am"
    cut_in_version = f"{'b' * 50}_{version}_amd64"[:63]  # ... or loses the architecture
    assert cut_in_arch.endswith("_am") and len(cut_in_version) == 63
    software = parse_installed(_installed(["base-files_12.4+deb12u11_amd64", "bash_5.2.15-2+b7_amd64",
                                           "tzdata_2024a-0+deb12u1_all", cut_in_arch, cut_in_version]))
    assert software.ecosystem == "deb" and software.distro == "debian"
    found = {(p.name, p.version, p.arch) for p in software.packages}
    assert ("bash", "5.2.15-2+b7", "amd64") in found and ("tzdata", "2024a-0+deb12u1", "all") in found
    assert (f"{'a' * 40}-pkg", version, "amd64") in found  # the one architecture starting "am"
    assert software.truncated_dropped == 1 and len(software.packages) == 4


def test_windows_names_stay_display_names():
    software = parse_installed(_installed(["Microsoft Office Enterprise 2007", "Microsoft .NET Framework 2.0"]))
    assert software.ecosystem == "generic" and software.packages[0].name == "Microsoft Office Enterprise 2007"


def test_date_and_time():
    assert date_and_time(bytes.fromhex("07E90514000000002B0000")) == "2025-05-20T00:00:00Z"
    assert date_and_time(bytes.fromhex("07E905140A0000002D0200")) == "2025-05-20T12:00:00Z"
    assert date_and_time(bytes.fromhex("07E9051400000000")) is None  # no zone: unknown instant
    assert date_and_time(b"\x00" * 11) is None and date_and_time(b"junk") is None


# -- hostile walks: every value of the wrong type or shape ------------------------------------------

_COLUMNS = ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.2.2.1.2.1",
            "1.3.6.1.2.1.2.2.1.6.1", "1.3.6.1.2.1.2.2.1.5.1", "1.3.6.1.2.1.31.1.1.1.1.1", "1.3.6.1.2.1.4.20.1.3.1.2.3.4",
            "1.3.6.1.2.1.4.34.1.3.1.4.10.0.0.1", "1.3.6.1.2.1.4.34.1.5.1.4.10.0.0.1", "1.3.6.1.2.1.47.1.1.1.1.5.1",
            "1.3.6.1.2.1.47.1.1.1.1.11.1", "1.3.6.1.2.1.25.2.3.1.3.1", "1.3.6.1.2.1.25.2.3.1.2.1",
            "1.3.6.1.2.1.25.2.3.1.4.1", "1.3.6.1.2.1.25.2.3.1.5.1", "1.3.6.1.2.1.25.6.3.1.2.1",
            "1.3.6.1.2.1.25.6.3.1.5.1", "1.0.8802.1.1.2.1.4.1.1.5.0.1.1", "1.0.8802.1.1.2.1.4.1.1.4.0.1.1",
            "1.0.8802.1.1.2.1.4.2.1.3.0.1.1.1.4.10.0.0.9", "1.3.6.1.4.1.9.9.23.1.2.1.1.4.1.1",
            "1.3.6.1.2.1.17.4.3.1.2.0.1.2.3.4.5", "1.3.6.1.2.1.17.1.4.1.2.1", "1.3.6.1.2.1.43.11.1.1.9.1.1",
            "1.3.6.1.2.1.43.5.1.1.17.1", "1.3.6.1.2.1.6.20.1.4.1.4.0.0.0.0.22", "1.3.6.1.2.1.2.2.1.2.x"]


def _hostile_value():
    from hypothesis import strategies as st

    from discovery.snmp.values import IpAddressValue, ObjectId
    return st.one_of(st.none(), st.integers(-2**63, 2**64), st.binary(max_size=80),
                     st.binary(max_size=20).map(IpAddressValue), st.text(max_size=30).map(ObjectId),
                     st.sampled_from([b"", b"\x00" * 6, b"\xff" * 6, "Linux x".encode(), b"To Be Filled By O.E.M."]))


def test_hostile_values_never_crash_and_the_report_stays_valid():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.sampled_from(_COLUMNS), _hostile_value(), max_size=len(_COLUMNS)))
    def check(walk):
        data = read_device({k: v for k, v in walk.items() if v is not None})
        report = build_device_report(data, "127.0.0.21", 161, "s", "2c")
        assert decode_report(encode_report(report)) == report

    check()
