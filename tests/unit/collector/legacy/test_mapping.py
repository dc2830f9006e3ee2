"""OCS / FusionInventory inventories mapped to native reports: every folder under
tests/fixtures/legacy/inventories/ is a case (recorded on this kind of machine, or assembled from
real DMI values), compared with its expected.json; then the rules the mapping keeps whatever the
input (validation, junk, software counts, statuses)."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the fixtures are ours: trusted input for the independent count
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from cmdb.junk import is_junk
from cmdb.report import decode_report, encode_report
from collector.legacy import mapping
from collector.legacy.fields import distro_id, os_family, prefix_length, utc_offset, virtualization
from collector.legacy.mapping import (
    detect_source_kind,
    device_id_problem,
    inventory_report_id,
    map_inventory,
)
from collector.legacy.software import Package, install_date, read_package
from collector.legacy.xml import parse_request

from .conftest import Case, cases

INVENTORIES = cases("inventories")
HARDWARE_ATTRIBUTES = {"manufacturer", "model", "serial", "system_uuid", "sku", "bios_vendor", "board_vendor",
                       "board_serial", "asset_tag", "chassis_serial", "vendor"}


def mapped(case: Case) -> dict:
    """The case's report as the collector stores it (JSON), after the collector's own validation."""
    request = parse_request(case.xml)
    headers = case.expected["headers"]
    kind = detect_source_kind(headers.get("User-Agent"), headers.get("Content-Type"), request)
    report = map_inventory(request, kind, inventory_report_id(kind, request.device_id, case.xml),
                           datetime.fromisoformat(case.expected["received_at"]), headers.get("User-Agent"))
    body = encode_report(report)
    decode_report(body)  # what POST /api/v1/reports would accept, the legacy endpoint stores
    return msgspec.json.decode(body)


@pytest.mark.parametrize("case", INVENTORIES, ids=[c.name for c in INVENTORIES])
def test_inventory_maps_to_the_expected_report(case: Case):
    report, expected = mapped(case), case.expected
    assert report["source"] == expected["source"]
    assert report["source"]["kind"] == expected["kind"]
    assert report["collected_at"] == expected["collected_at"]
    assert {name: s["status"] for name, s in report["collectors"].items()} == expected["collectors"]
    assert dict(Counter(i["class"] for i in report["items"])) == expected["counts"]
    assert dict(Counter(r["type"] for r in report["relations"])) == expected["relations"]
    items = {i["ref"]: i for i in report["items"]}
    for ref, want in expected["items"].items():
        assert ref in items, f"{case.name}: no item {ref!r}"
        got = {k: v for k, v in items[ref].items() if k in ("class", "identifiers", "attributes", "collector")}
        assert got == want, f"{case.name}: item {ref!r}"


@pytest.mark.parametrize("case", INVENTORIES, ids=[c.name for c in INVENTORIES])
def test_one_software_install_per_softwares_entry(case: Case):
    """The agent's SOFTWARES count, read independently from the XML, is the report's."""
    entries = ET.fromstring(case.xml).find("CONTENT").findall("SOFTWARES")
    report = mapped(case)
    installs = [i for i in report["items"] if i["class"] == "SoftwareInstall"]
    assert len(entries) == case.expected["softwares_in_xml"] == len(installs)
    assert Counter(r["type"] for r in report["relations"])["INSTALLED_ON"] == len(installs)
    assert all(r["to"] == "computer" for r in report["relations"] if r["type"] == "INSTALLED_ON")


@pytest.mark.parametrize("case", INVENTORIES, ids=[c.name for c in INVENTORIES])
def test_no_junk_value_becomes_an_identifier_or_hardware_attribute(case: Case):
    for item in mapped(case)["items"]:
        for kind, value in item.get("identifiers", {}).items():
            for v in value if isinstance(value, list) else [value]:
                assert not is_junk(v), f"{item['ref']}: identifier {kind}={v!r} is junk"
        for name, value in item.get("attributes", {}).items():
            assert value not in ("", None, []), f"{item['ref']}: {name} is empty: unknown must be absent"
            if name in HARDWARE_ATTRIBUTES:
                assert not is_junk(value), f"{item['ref']}: {name}={value!r} is junk"


def test_junk_dmi_of_the_dl120_leaves_no_serial_uuid_or_board_serial():
    case = next(c for c in INVENTORIES if c.name == "ocs-hp-dl120-g6-junk-dmi-assembled")
    computer = next(i for i in mapped(case)["items"] if i["ref"] == "computer")
    assert "serial" not in computer["identifiers"] and "system_uuid" not in computer["identifiers"]
    assert not {"serial", "system_uuid", "board_serial", "sku"} & set(computer["attributes"])
    assert computer["attributes"]["manufacturer"] == "HP"  # a real value beside the junk stays


# -- rules that hold for any input ----------------------------------------------------------------

def _request(sections: str, device_id: str = "host-01") -> bytes:
    return (f"<REQUEST><DEVICEID>{device_id}</DEVICEID><QUERY>INVENTORY</QUERY>"
            f"<CONTENT>{sections}</CONTENT></REQUEST>").encode()


def _map(xml: bytes, kind: str = "fusion", received: datetime = datetime(2024, 5, 1, tzinfo=UTC)) -> dict:
    request = parse_request(xml)
    body = encode_report(map_inventory(request, kind, inventory_report_id(kind, request.device_id, xml), received))
    decode_report(body)
    return msgspec.json.decode(body)


def test_source_kind_from_user_agent_then_content_type_then_the_xml():
    versionclient = parse_request(_request("<VERSIONCLIENT>FusionInventory-Agent_v2.5</VERSIONCLIENT>"))
    plain = parse_request(_request(""))
    assert detect_source_kind("FusionInventory-Agent_v2.6-3", "application/x-compress", plain) == "fusion"
    assert detect_source_kind("GLPI-Agent_v1.7", None, plain) == "fusion"
    assert detect_source_kind("OCS-NG_unified_unix_agent_v2.10.0", "application/x-compress-zlib", plain) == "ocs"
    assert detect_source_kind("curl/8", "application/x-compress-zlib; charset=x", plain) == "fusion"
    assert detect_source_kind(None, "application/x-compress", plain) == "ocs"
    assert detect_source_kind(None, None, versionclient) == "fusion"
    assert detect_source_kind(None, "text/xml", plain) == "ocs"


@pytest.mark.parametrize("device_id, ok", [
    ("vm-2026-11-21-20-37-42", True), ("LAPTOP-7F3K2-2024-06-03-14-29-58", True), ("a" * 128, True),
    ("a" * 129, False), ("", False), (None, False), ("my pc", False), ("-leading-dash", False),
    ("x;rm -rf /", False), ("café-01", False),
])
def test_device_id_must_be_a_source_id(device_id, ok):
    assert (device_id_problem(device_id) is None) is ok


def test_report_id_is_deterministic_per_device_and_content():
    a = inventory_report_id("fusion", "vm-01", b"<REQUEST/>")
    assert a == inventory_report_id("fusion", "vm-01", b"<REQUEST/>")
    assert a != inventory_report_id("fusion", "vm-01", b"<REQUEST> </REQUEST>")
    assert a != inventory_report_id("fusion", "vm-02", b"<REQUEST/>")
    assert a != inventory_report_id("ocs", "vm-01", b"<REQUEST/>")
    odd = inventory_report_id("ocs", "host@corp/+x" + "y" * 120, b"")
    assert len(odd) <= 128 and odd.startswith("ocs-host_corp__x")


def test_collected_at_is_logdate_only_with_an_offset_and_when_plausible():
    received = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    tz = "<OPERATINGSYSTEM><TIMEZONE><NAME>Europe/Paris</NAME><OFFSET>+0200</OFFSET></TIMEZONE></OPERATINGSYSTEM>"
    log = "<ACCESSLOG><LOGDATE>{}</LOGDATE></ACCESSLOG>"
    at = lambda sections: _map(_request(sections), received=received)["collected_at"]  # noqa: E731
    assert at(tz + log.format("2024-05-01 13:30:00")) == "2024-05-01T11:30:00Z"
    assert at(log.format("2024-05-01 13:30:00")) == "2024-05-01T12:00:00Z"  # no offset: receipt time
    assert at(tz + log.format("2024-05-01 16:00:00")) == "2024-05-01T12:00:00Z"  # ahead of us
    assert at(tz + log.format("2023-01-01 00:00:00")) == "2024-05-01T12:00:00Z"  # months old
    assert at(tz + log.format("2024-02-30 10:00:00")) == "2024-05-01T12:00:00Z"  # no such day


def test_a_missing_section_is_not_applicable_with_the_reason():
    collectors = _map(_request("<HARDWARE><NAME>host-01</NAME></HARDWARE>"), kind="ocs")["collectors"]
    assert collectors["hardware"]["status"] == "ok"
    assert collectors["softwares"] == {"status": "not_applicable", "reason": mapping.ABSENT_REASONS["SOFTWARES"]}
    assert "--nosoftware" in collectors["softwares"]["reason"]
    assert collectors["networks"]["status"] == "not_applicable"


def test_a_section_that_cannot_be_mapped_fails_alone(monkeypatch):
    def broken(request, facts):
        raise RuntimeError("mapper bug")

    monkeypatch.setattr(mapping, "SECTION_MAPPERS",
                        tuple((s, broken if s == "NETWORKS" else m) for s, m in mapping.SECTION_MAPPERS))
    report = _map(_request("<HARDWARE><NAME>host-01</NAME></HARDWARE><NETWORKS><DESCRIPTION>eth0</DESCRIPTION>"
                           "</NETWORKS><SOFTWARES><NAME>bash</NAME><FROM>deb</FROM></SOFTWARES>"))
    assert report["collectors"]["networks"] == {"status": "failed", "reason": "RuntimeError: mapper bug",
                                                "duration_ms": report["collectors"]["networks"]["duration_ms"]}
    assert report["collectors"]["softwares"]["status"] == "ok"
    assert {i["class"] for i in report["items"]} == {"Computer", "Software", "SoftwareInstall"}


def test_unknown_sections_are_ignored_and_known_unmapped_ones_say_why():
    report = _map(_request("<FOO-BAR><X>1</X></FOO-BAR><PROCESSES><CMD>sshd</CMD></PROCESSES>"))
    assert "foo-bar" not in report["collectors"]
    assert report["collectors"]["processes"]["status"] == "not_applicable"
    assert report["collectors"]["processes"]["reason"].startswith("not mapped: ")


def test_software_without_name_is_skipped_and_overlong_names_are_left_out():
    report = _map(_request("<SOFTWARES><VERSION>1</VERSION></SOFTWARES>"
                           f"<SOFTWARES><NAME>{'n' * 1100}</NAME></SOFTWARES>"
                           "<SOFTWARES><NAME>ok</NAME><FROM>WMI</FROM></SOFTWARES>"))
    installs = [i for i in report["items"] if i["class"] == "SoftwareInstall"]
    assert [i["identifiers"]["package"] for i in installs] == ["wmi:ok:unknown"]


@pytest.mark.parametrize("kind, eco, value, expected", [
    ("ocs", "deb", "2025/04/20 00:00:00", "2025-05-20T00:00:00Z"),  # OCS counts months from 0
    ("ocs", "deb", "2024/11/31 23:59:59", "2024-12-31T23:59:59Z"),
    ("ocs", "deb", "2024/12/01 00:00:00", None),  # month 13
    ("ocs", "rpm", "2020-11-14 10:00:00", "2020-11-14T10:00:00Z"),  # OCS rpm dates are right
    ("fusion", "rpm", "14/11/2020", "2020-11-14"),
    ("fusion", "deb", "31/02/2020", None),
    ("fusion", "registry", "20200101", None),
])
def test_install_dates(kind, eco, value, expected):
    package = Package(eco, "p", None, "1", {"INSTALLDATE": value})
    assert install_date(kind, package, None) == expected


def test_install_date_uses_the_agents_offset():
    package = Package("rpm", "p", None, "1", {"INSTALLDATE": "2020-11-14 10:00:00"})
    assert install_date("ocs", package, timedelta(hours=2)) == "2020-11-14T08:00:00Z"


def test_multiarch_names_of_ocs_are_dpkg_names():
    def name_arch(entry: dict) -> tuple[str, str | None]:
        package = read_package(entry)
        assert package is not None
        return package.name, package.arch

    assert name_arch({"NAME": "libc6:amd64", "ARCHITECTURE": "amd64", "FROM": "deb"}) == ("libc6", "amd64")
    assert name_arch({"NAME": "libc6:i386", "FROM": "deb"}) == ("libc6", "i386")
    assert name_arch({"NAME": "weird:name", "ARCHITECTURE": "amd64", "FROM": "deb"}) == ("weird:name", "amd64")
    assert name_arch({"NAME": "perl:any", "ARCH": "x", "FROM": "rpm"}) == ("perl:any", "x")


@pytest.mark.parametrize("mask, version, length", [
    ("255.255.255.0", 4, 24), ("255.0.0.0", 4, 8), ("0.0.0.0", 4, 0), ("255.255.255.255", 4, 32),
    ("255.0.255.0", 4, None), ("ffff:ffff:ffff:ffff::", 6, 64), ("24", 4, 24), ("129", 6, None),
    ("", 4, None), ("garbage", 4, None), ("255.255.255.0", 6, None),
])
def test_prefix_length(mask, version, length):
    assert prefix_length(mask, version) == length


def test_vocabularies():
    assert distro_id("Debian GNU/Linux 12") == "debian" and distro_id("Ubuntu") == "ubuntu"
    assert distro_id("Red Hat Enterprise Linux Server") == "rhel" and distro_id("CentOS Linux") == "centos"
    assert distro_id("Microsoft Windows 10 Pro") is None and distro_id(None) is None
    assert os_family("MSWin32") == "windows" and os_family("linux") == "linux"
    assert os_family(None, "Debian GNU/Linux") == "linux" and os_family("darwin") == "macos"
    assert os_family(None, "Plan 9") is None
    assert utc_offset("+0200") == timedelta(hours=2) and utc_offset("-05:30") == -timedelta(hours=5, minutes=30)
    assert utc_offset("+2500") is None and utc_offset("UTC") is None
    assert virtualization("Physical") == "none" and virtualization("VirtualBox") == "oracle"
    assert virtualization("Some Hyper Thing") == "some-hyper-thing" and virtualization("") is None


@pytest.mark.parametrize("eco, name, version, arch", [
    ("deb", "libstdc++6", "12.2.0-14+deb12u1", "amd64"), ("rpm", "kernel", "1:3.10.0", None),
    ("registry", "Mozilla Firefox (x64 en-US)", "126.0.1", "x86_64"), ("deb", "café", None, "all"),
])
def test_purls_are_spelled_as_our_agent_spells_them(eco, name, version, arch):
    from agent.collectors.software.purl import package_url, purl_namespace
    from collector.legacy.software import _purls

    software, install = _purls(Package(eco, name, arch, version, {}), "debian")
    type_, namespace = (eco, purl_namespace("debian")) if eco in ("deb", "rpm") else ("generic", eco)
    assert software == package_url(type_, namespace, name)
    assert install == package_url(type_, namespace, name, version, {"arch": arch})
