"""The network-device parsers against recorded real device outputs (corpora/ssh/ntc): every
`<platform>/<command>/<case>.raw` found is parsed and compared, field for field, with the
parse result recorded beside it (`<case>.json`, ntc-templates' TextFSM result).

No real switch or router can run here: these recorded outputs are how the parsers meet real
devices. A new case is a new file pair; a platform/command pair without a comparison fails the
test (`test_every_recorded_command_has_a_comparison`).

The comparison covers the fields the scanner uses (ntc's names on the left); ntc's own known
mistakes are listed in NTC_DEFECTS with the reason, never silently skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from discovery.ssh.netdev import arista_eos, cisco_ios, cisco_nxos, hp_procurve, juniper_junos, paloalto_panos

NTC = Path("/work/shared/corpora/ssh/ntc")
if not NTC.is_dir():  # a checkout beside shared/
    NTC = Path(__file__).resolve().parents[5] / "shared" / "corpora" / "ssh" / "ntc"
CASES = sorted(NTC.glob("*/*/*.raw"))


def _s(text) -> str:
    """ntc keeps trailing blanks and uses "" for unknown; our parsers trim and use None."""
    return "" if text is None else str(text).strip()


def _case_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}/{path.stem}"


def _expected(path: Path) -> list[dict]:
    return json.loads(path.with_suffix(".json").read_text())["parsed_sample"]


# -- one projection per platform/command: (ours, ntc's) as lists of comparable dicts ---------

def ios_version(text, ntc):
    f = cisco_ios.parse_show_version(text)
    ours = {"hostname": f.hostname, "version": f.os_version, "uptime": f.uptime,
            "hardware": f.member_models or ([f.model] if f.model else []),
            "serial": f.member_serials or ([f.serial] if f.serial else []),
            "mac_address": f.member_macs or ([f.chassis_mac] if f.chassis_mac else []),
            "running_image": (f.image or "").split(":", 1)[-1], "software_image": f.extra.get("software_image"),
            "config_register": f.extra.get("config_register"), "reload_reason": f.boot_reason}
    return [_norm(ours)], [_norm({k: r[k] for k in ours}) for r in ntc]


def cisco_inventory(parse):
    def compare(text, ntc):
        ours = [{"name": m.name, "descr": m.description, "pid": m.model, "vid": m.hardware_version, "sn": m.serial}
                for m in parse(text)]
        return [_norm(r) for r in ours], [_norm({k: r[k] for k in ("name", "descr", "pid", "vid", "sn")}) for r in ntc]
    return compare


IF_FIELDS = ("interface", "link_status", "protocol_status", "hardware_type", "mac_address", "bia", "description",
             "ip_address", "prefix_length", "mtu", "bandwidth")


def ios_interfaces(text, ntc):
    ours = [{"interface": i.name, "link_status": i.link_status, "protocol_status": i.protocol_status,
             "hardware_type": i.hardware_type, "mac_address": i.mac, "bia": i.burned_in_mac,
             "description": i.description, "ip_address": i.ip_address, "prefix_length": i.prefix_length,
             "mtu": i.mtu, "bandwidth": f"{i.bandwidth_kbit} Kbit" if i.bandwidth_kbit is not None else None}
            for i in cisco_ios.parse_show_interfaces(text)]
    return [_norm(r) for r in ours], [_norm({k: r[k] for k in IF_FIELDS}) for r in ntc]


CDP_FIELDS = ("neighbor_name", "mgmt_address", "platform", "neighbor_interface", "local_interface",
              "neighbor_description", "capabilities")


def ios_cdp(text, ntc):
    ours = [{"neighbor_name": n.name, "mgmt_address": n.mgmt_address, "platform": n.platform,
             "neighbor_interface": n.port_id, "local_interface": n.local_interface,
             "neighbor_description": n.description, "capabilities": n.capabilities}
            for n in cisco_ios.parse_cdp_neighbors_detail(text)]
    return [_norm(r) for r in ours], [_norm({k: r[k] for k in CDP_FIELDS}) for r in ntc]


LLDP_FIELDS = ("local_interface", "chassis_id", "neighbor_port_id", "neighbor_interface", "neighbor_name",
               "mgmt_address", "capabilities", "neighbor_description", "vlan_id", "serial", "platform",
               "manufacturer")


def ios_lldp(text, ntc):
    ours = [{"local_interface": n.local_interface, "chassis_id": n.chassis_id, "neighbor_port_id": n.port_id,
             "neighbor_interface": n.port_description, "neighbor_name": n.name, "mgmt_address": n.mgmt_address,
             "capabilities": n.capabilities, "neighbor_description": n.description, "vlan_id": n.vlan_id,
             "serial": n.serial, "platform": n.platform, "manufacturer": n.vendor}
            for n in cisco_ios.parse_lldp_neighbors_detail(text)]
    return [_norm(r) for r in ours], [_norm({k: r.get(k, "") for k in LLDP_FIELDS}) for r in ntc]


def nxos_version(text, ntc):
    f = cisco_nxos.parse_show_version(text)
    ours = {"hostname": f.hostname, "os": f.os_version, "platform": f.model, "serial": f.serial,
            "uptime": f.uptime, "last_reboot_reason": f.boot_reason, "boot_image": f.image,
            "bios": f.extra.get("bios_version")}
    return [_norm(ours)], [_norm({k: r[k] for k in ours}) for r in ntc]


def junos_version(text, ntc):
    f = juniper_junos.parse_show_version(text)
    ours = {"hostname": f.hostname, "model": f.model, "junos_version": f.os_version, "serial_number": f.serial}
    return [_norm(ours)], [_norm({k: r[k] for k in ours}) for r in ntc]


# ntc records name the row's group in their field names; the row is the deepest group present.
_JUNOS_DEPTH = ("xcvr", "pic", "mic", "qxm", "cpu")


def junos_hardware(text, ntc):
    rows = juniper_junos.parse_show_chassis_hardware(text)
    ours = [_norm({"number": _number(m.name), "version": m.hardware_version, "part": m.model,
                   "serial_number": m.serial, "description": m.description}) for m in rows]
    expected = []
    for record in ntc:
        groups = {k.split("_")[0] for k, v in record.items() if v}
        group = next((g for g in _JUNOS_DEPTH if g in groups), None) or groups.pop()
        expected.append(_norm({f: record.get(f"{group}_{f}", "") for f in
                               ("number", "version", "part", "serial_number", "description")}))
    return ours, expected


def _number(name: str) -> str:
    found = re.search(r"(\d+)$", name)
    return found.group(1) if found else ""


def eos_version(text, ntc):
    f = arista_eos.parse_show_version(text)
    ours = {"model": f.model, "hw_version": f.hardware_version, "serial_number": f.serial, "sys_mac": f.chassis_mac,
            "image": f.os_version, "uptime": f.uptime, "total_memory": f.extra.get("total_memory_kb"),
            "free_memory": f.extra.get("free_memory_kb")}
    return [_norm(ours)], [_norm({k: r[k] for k in ours}) for r in ntc]


def eos_inventory(text, ntc):
    ours = [_norm({"port": re.sub(r"^\D+", "", m.name), "pid": m.model, "sn": m.serial,
                   "vid": m.hardware_version, "descr": m.description if m.name == "Chassis" else m.vendor})
            for m in arista_eos.parse_show_inventory(text)]
    # ntc also lists the port counts ("Management 1", "Switched 52"): counts, not parts.
    parts = [r for r in ntc if r["pid"] or r["sn"]]
    return ours, [_norm({k: r[k] for k in ("port", "pid", "sn", "vid", "descr")}) for r in parts]


def procurve_system(text, ntc):
    f = hp_procurve.parse_show_system(text)
    members = max(1, len(f.member_serials))
    ours = [_norm({"name": f.hostname, "software_version": f.os_version,
                   "serial": f.member_serials[i] if f.member_serials else f.serial,
                   "mac_address": f.member_macs[i] if f.member_macs else f.chassis_mac,
                   "uptime": f.uptime, "rom_version": f.extra.get("rom_version"),
                   "contact": f.extra.get("contact"), "location": f.extra.get("location")}) for i in range(members)]
    return ours, [_norm({k: r[k] for k in ours[0]}) for r in ntc]


def panos_system(text, ntc):
    f = paloalto_panos.parse_show_system_info(text)
    ours = {"hostname": f.hostname, "model": f.model, "serial": f.serial, "os": f.os_version,
            "mac_address": f.chassis_mac, "uptime": f.uptime, "family": f.extra.get("family"),
            "ip_address": f.extra.get("ip_address")}
    return [_norm(ours)], [_norm({k: r[k] for k in ours}) for r in ntc]


def _norm(record: dict) -> dict:
    return {k: [_s(x) for x in v] if isinstance(v, list) else _s(v) for k, v in record.items()}


COMPARISONS = {
    ("cisco_ios", "show_version"): ios_version,
    ("cisco_ios", "show_inventory"): cisco_inventory(cisco_ios.parse_show_inventory),
    ("cisco_ios", "show_interfaces"): ios_interfaces,
    ("cisco_ios", "show_cdp_neighbors_detail"): ios_cdp,
    ("cisco_ios", "show_lldp_neighbors_detail"): ios_lldp,
    ("cisco_nxos", "show_version"): nxos_version,
    ("cisco_nxos", "show_inventory"): cisco_inventory(cisco_ios.parse_show_inventory),
    ("juniper_junos", "show_version"): junos_version,
    ("juniper_junos", "show_chassis_hardware"): junos_hardware,
    ("arista_eos", "show_version"): eos_version,
    ("arista_eos", "show_inventory"): eos_inventory,
    ("hp_procurve", "show_system"): procurve_system,
    ("paloalto_panos", "show_system_info"): panos_system,
}

# (case id, index of the ntc record, field): why ntc's value is not what the device printed.
_JUNOS = "juniper_junos/show_chassis_hardware/juniper_junos_show_chassis_hardware"
NTC_DEFECTS: dict[tuple[str, int, str], str] = {
    (f"{_JUNOS}3", 0, "serial_number"): "ntc splits the Chassis row on blanks and takes the description's first "
                                        "word 'JNP204' for the serial; the Serial number column says A0000",
    (f"{_JUNOS}3", 0, "description"): "the same split leaves '[MX204]' of the description 'JNP204 [MX204]'",
    (f"{_JUNOS}_dac_no_revision", 0, "serial_number"): "ntc reads 'Virtual' (the description's first word) for "
                                                       "the serial; the column says XH3123120000",
    (f"{_JUNOS}_dac_no_revision", 0, "description"): "the same split leaves 'Chassis' of 'Virtual Chassis'",
}
# Cases where our parser reads more rows than ntc's template keeps (ntc's rows must still all be
# found, in order): a row-subsequence comparison.
SUBSEQUENCE = {("juniper_junos", "show_chassis_hardware")}


def test_the_corpus_is_there():
    assert len(CASES) >= 64, f"expected the 64 recorded cases under {NTC}"


def test_every_recorded_command_has_a_comparison():
    pairs = {(p.parent.parent.name, p.parent.name) for p in CASES}
    assert pairs <= set(COMPARISONS), f"no comparison for {sorted(pairs - set(COMPARISONS))}"


@pytest.mark.parametrize("raw", CASES, ids=_case_id)
def test_parser_matches_the_recorded_parse(raw):
    key = (raw.parent.parent.name, raw.parent.name)
    ours, expected = COMPARISONS[key](raw.read_text(encoding="utf-8", errors="replace"), _expected(raw))
    case = _case_id(raw)
    for (c, index, field_), _reason in NTC_DEFECTS.items():
        if c == case:  # ours must differ from ntc's mistake (and say something)
            expected[index][field_] = _Not(expected[index][field_])
    if key in SUBSEQUENCE:
        _assert_subsequence(ours, expected, case)
        return
    assert len(ours) == len(expected), f"{case}: {len(ours)} records, ntc has {len(expected)}"
    for i, (got, want) in enumerate(zip(ours, expected)):
        for field_, wanted in want.items():
            assert _same(got[field_], wanted), f"{case} record {i} field {field_}: {got[field_]!r} != {wanted!r}"


class _Not:
    """An ntc value known to be wrong: ours must be another, non-empty value."""

    def __init__(self, wrong):
        self.wrong = wrong

    def __repr__(self):
        return f"anything but {self.wrong!r}"


def _same(got, wanted) -> bool:
    if isinstance(wanted, _Not):
        return bool(got) and got != wanted.wrong
    return got == wanted


def _assert_subsequence(ours, expected, case):
    position = 0
    for i, want in enumerate(expected):
        while position < len(ours) and not all(_same(ours[position][k], w) for k, w in want.items()):
            position += 1
        assert position < len(ours), f"{case}: ntc record {i} {want} not found in order among ours"
        position += 1
