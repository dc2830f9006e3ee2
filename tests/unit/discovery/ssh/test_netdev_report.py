"""Platform detection and the network-device report, on recorded real device outputs
(corpora/ssh/ntc; no real device can run here), plus hostile and malformed answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb.report import check_report, decode_report, encode_report
from discovery.ssh.netdev import arista_eos, cisco_ios, juniper_junos
from discovery.ssh.netdev.platforms import PLATFORMS, detect_platform, unsupported_reason
from discovery.ssh.netdev.report import SectionOutput, canonical_interface, device_report
from tests.unit.discovery.ssh.test_netdev_parsers import NTC

# The answer that tells each platform apart: `show version`, else (PAN-OS) `show system info`.
PROBES = sorted([*NTC.glob("*/show_version/*.raw"), *NTC.glob("paloalto_panos/show_system_info/*.raw")])


def _raw(relative: str) -> str:
    return (NTC / relative).read_text(errors="replace")


@pytest.mark.parametrize("raw", PROBES, ids=lambda p: p.stem)
def test_every_recorded_first_answer_names_its_platform(raw):
    assert detect_platform(raw.read_text(errors="replace")) == raw.parent.parent.name


@pytest.mark.parametrize("text", [
    "Linux\n", "", "\n% Invalid input detected at '^' marker.\n", "error: syntax error, expecting <command>",
    "-bash: show: command not found\n", "\x00\xff" * 100, "Arista\n", "Model: x\n",
])
def test_other_answers_name_no_platform(text):
    assert detect_platform(text) is None


def test_unsupported_and_disabled_answers():
    assert unsupported_reason("% CDP is not enabled\n") == "CDP is not enabled on the device"
    assert unsupported_reason("% LLDP is not enabled") == "LLDP is not enabled on the device"
    assert "does not know the command" in unsupported_reason("\n% Invalid input detected at '^' marker.\n")
    assert "does not know the command" in unsupported_reason("error: syntax error, expecting <command>")
    assert unsupported_reason(_raw("cisco_ios/show_version/cisco_ios_show_version.raw")) is None


def _ok(relative: str) -> SectionOutput:
    return SectionOutput(text=_raw(relative))


def _valid(report):
    check_report(decode_report(encode_report(report)))  # what the collector's ingest accepts
    return report


def test_an_ios_switch_report():
    outputs = {"version": _ok("cisco_ios/show_version/cisco_ios_show_version.raw"),
               "inventory": _ok("cisco_ios/show_inventory/cisco_ios_show_inventory.raw"),
               "interfaces": _ok("cisco_ios/show_interfaces/cisco_ios_show_interfaces3.raw"),
               "lldp": SectionOutput(status="not_applicable", reason="LLDP is not enabled on the device"),
               "cdp": _ok("cisco_ios/show_cdp_neighbors_detail/cisco_ios_show_cdp_neighbors_detail.raw")}
    report, summary = device_report(PLATFORMS["cisco_ios"], "192.0.2.1", "s/ssh/192.0.2.1:22", outputs)
    _valid(report)
    device = next(i for i in report.items if i.ref == "device")
    assert device.class_ == "NetworkDevice" and device.collector == "netdev.version"
    assert device.identifiers == {"serial": "CAT1451S15C", "sysname_ip": "router1@192.0.2.1"}
    assert device.attributes["model"] == "WS-C4948E" and device.attributes["os_version"] == "12.2(54)SG1"
    assert device.attributes["firmware"] == "12.2(54)SG1" and device.attributes["os_name"] == "IOS"
    modules = [i for i in report.items if i.class_ == "HardwareModule"]
    # The recorded inventory lists one module three times: it is one part.
    assert [(m.identifiers, m.attributes.get("model")) for m in modules] == [
        ({"slot": "3640 chassis", "serial": "FF1045C5"}, None),
        ({"slot": "One port Fastethernet TX", "serial": "7720321"}, "NM-1FE-TX=")]
    interfaces = {i.ref: i for i in report.items if i.class_ == "Interface"}
    assert interfaces["if:GigabitEthernet0/0"].attributes["mac"] == "00:0f:35:2d:23:81"
    assert interfaces["if:GigabitEthernet0/0"].attributes["description"] == "Connects to LAN"
    assert {r.to for r in report.relations if r.type == "HAS_IP"} >= {"ip:192.27.6.129"}
    connected = [r for r in report.relations if r.type == "CONNECTED_TO"]
    # 4 neighbours; vIOS-L2-1 gives no address and no MAC: nothing could name its CI, so no relation
    assert len(connected) == 3 and all(r.attributes["protocol"] == "cdp" for r in connected)
    assert "vIOS-L2-1" not in {r.attributes["neighbor_name"] for r in connected}
    first = next(r for r in connected if r.attributes["neighbor_name"] == "desktop-switch")
    assert (first.from_, first.to) == ("if:GigabitEthernet1/0/16", "neighbor:10.1.1.2")
    assert first.attributes["neighbor_port"] == "GigabitEthernet0/1"
    refs = {i.ref: i for i in report.items if i.reference}
    assert refs["neighbor:10.1.1.2"].class_ == "IPAddress" and refs["neighbor:10.1.1.2"].identifiers == {
        "address": "10.1.1.2"}
    assert report.collectors["netdev.lldp"].status == "not_applicable"
    assert summary == {"type": "network_device", "vendor": "Cisco", "model": "WS-C4948E", "serial": "CAT1451S15C",
                       "hostname": "router1", "os": "IOS 12.2(54)SG1", "platform": "cisco_ios"}


def test_an_nxos_model_comes_from_the_chassis_part_and_bracket_notes_leave_the_version():
    outputs = {"version": _ok("cisco_nxos/show_version/cisco_nxos_show_version5.raw"),
               "inventory": _ok("cisco_nxos/show_inventory/cisco_nxos_show_inventory2.raw"),
               "lldp": SectionOutput(status="failed", reason="no answer within 30s")}
    report, _ = device_report(PLATFORMS["cisco_nxos"], "192.0.2.2", "s/ssh/192.0.2.2:22", outputs)
    device = next(i for i in _valid(report).items if i.ref == "device")
    assert device.attributes["model"] == "N9K-C93180YC-EX" and device.attributes["os_version"] == "10.4(5)"
    fans = [i for i in report.items if i.class_ == "HardwareModule" and i.attributes["name"].startswith("Fan")]
    assert fans and all("serial" not in f.identifiers for f in fans)  # "N/A" is no serial
    assert report.collectors["netdev.lldp"].status == "failed"
    assert report.collectors["netdev.cdp"].reason == "not fetched"


def test_junos_and_eos_reports():
    junos, _ = device_report(PLATFORMS["juniper_junos"], "192.0.2.3", "s/ssh/192.0.2.3:22", {
        "version": _ok("juniper_junos/show_version/juniper_junos_show_version.raw"),
        "inventory": _ok("juniper_junos/show_chassis_hardware/juniper_junos_show_chassis_hardware.raw")})
    device = next(i for i in _valid(junos).items if i.ref == "device")
    assert device.attributes["model"] == "mx240" and device.identifiers["serial"] == "qfsn-0123456789"
    xcvrs = [i for i in junos.items if i.class_ == "HardwareModule" and i.attributes["name"].startswith("Xcvr")]
    assert xcvrs[0].attributes["parent"] == "PIC 0"
    assert not any(i.identifiers.get("serial") == "BUILTIN" for i in junos.items)
    eos, summary = device_report(PLATFORMS["arista_eos"], "192.0.2.4", "s/ssh/192.0.2.4:22", {
        "version": _ok("arista_eos/show_version/arista_eos_show_version3.raw"),
        "inventory": _ok("arista_eos/show_inventory/arista_eos_show_inventory2.raw")})
    device = next(i for i in _valid(eos).items if i.ref == "device")
    assert device.identifiers["chassis_mac"] == "98:5d:82:b8:fa:f5"
    assert summary["vendor"] == "Arista Networks"
    optic = next(i for i in eos.items if i.ref == "module:Ethernet8")
    assert optic.attributes["vendor"] == "PROLABS" and optic.identifiers["serial"] == "PL300OQME039B"


def test_abbreviated_port_names_become_the_devices_names():
    known = {"gigabitethernet1/0/1": "GigabitEthernet1/0/1", "ethernet1/49": "Ethernet1/49"}
    assert canonical_interface("Gi1/0/1", known) == "GigabitEthernet1/0/1"
    assert canonical_interface("Eth1/49", known) == "Ethernet1/49"
    assert canonical_interface("Te1/1/1", {}) == "TenGigabitEthernet1/1/1"
    assert canonical_interface("Tw2/0/33", {}) == "TwoGigabitEthernet2/0/33"
    assert canonical_interface("ge-0/0/0", {}) == "ge-0/0/0"


def test_hostile_answers_give_a_valid_report_not_a_crash():
    junk = "\x00\x1b[2J" + "A" * 5000 + "\n" + "NAME: \"x\" , DESCR: \"" + "yz" * 40000 + "\"\nPID: ,VID: ,SN: \n"
    outputs = {"version": SectionOutput(text=_raw("cisco_ios/show_version/cisco_ios_show_version3.raw")),
               "inventory": SectionOutput(text=junk), "interfaces": SectionOutput(text=junk),
               "lldp": SectionOutput(text="Chassis id: not-a-mac\nPort id: x\n" * 3),
               "cdp": SectionOutput(text="Device ID: x\nEntry address(es):\n  IP address: 999.1.1.1\n")}
    report, _ = device_report(PLATFORMS["cisco_ios"], "192.0.2.9", "s/ssh/192.0.2.9:22", outputs)
    _valid(report)
    assert not [r for r in report.relations if r.type == "CONNECTED_TO"]  # nothing that names a neighbour
    # 80,000 characters of description (past the wire format's 64 KiB): cut, the report stays valid
    module = next(i for i in report.items if i.class_ == "HardwareModule")
    assert module.attributes["description"] == "yz" * 512
    assert all(s.status == "ok" for s in report.collectors.values())


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000))
def test_parsers_never_raise_on_any_text(text):
    for parse in (cisco_ios.parse_show_version, cisco_ios.parse_show_inventory, cisco_ios.parse_show_interfaces,
                  cisco_ios.parse_cdp_neighbors_detail, cisco_ios.parse_lldp_neighbors_detail,
                  juniper_junos.parse_show_chassis_hardware, arista_eos.parse_show_inventory):
        parse(text)
    detect_platform(text)
    unsupported_reason(text)


def test_the_corpus_path_is_shared_with_the_parser_test():
    assert isinstance(NTC, Path) and NTC.is_dir()
