"""Cisco IOS and IOS XE: `show version`, `show inventory` (NX-OS prints the same format),
`show interfaces`, `show cdp neighbors detail`, `show lldp neighbors detail` (NX-OS's LLDP and
CDP details differ only in a few labels, which are accepted too). Pure functions of the text."""

from __future__ import annotations

import re

from discovery.ssh.netdev.model import DeviceFacts, DeviceInterface, Module, Neighbor, first_match, value

# IOS XE 16+ prints "Cisco IOS XE Software, Version 16.09.03" first and the release proper
# ("Cisco IOS Software [Fuji], ..., Version 16.9.3") after it: the latter is the version.
_SOFTWARE_LINES = (re.compile(r"^Cisco IOS Software\b.*?Version\s+([^\s,]+)", re.M),
                   re.compile(r"^(?:Cisco )?IOS(?: \(tm\))?.*?Software.*?Version\s+([^\s,]+)", re.M))
_IMAGE_NAME = re.compile(r"^(?:Cisco )?IOS.*?Software.*?\(([^)]+)\)", re.M)
_UPTIME = re.compile(r"^(\S+) uptime is (.+?)\s*$", re.M)
_PROCESSOR = re.compile(r"^[Cc]isco\s+(\S+)\s+\(.*?\)\s+(?:processor|with)", re.M)
_MODEL_NUMBER = re.compile(r"^Model [Nn]umber\s*:\s*(\S+)", re.M)
_SYSTEM_SERIAL = re.compile(r"^System [Ss]erial [Nn]umber\s*:\s*(\S+)", re.M)
_BOARD_ID = re.compile(r"^Processor board ID\s+([^\s,]+)", re.M)
_BASE_MAC = re.compile(r"^Base [Ee]thernet MAC [Aa]ddress\s*:\s*(\S+)", re.M)
_IMAGE_FILE = re.compile(r'^System image file is "([^"]+)"', re.M)
_RELOAD_REASON = re.compile(r"^Last reload reason:\s*(.+?)\s*$", re.M)
_RETURNED_BY = re.compile(r"^System returned to ROM by (.+?)(?: at .*)?\s*$", re.M)
_CONFIG_REGISTER = re.compile(r"^Configuration register is (\S+)", re.M)


def parse_show_version(text: str) -> DeviceFacts:
    uptime = _UPTIME.search(text)
    models = _MODEL_NUMBER.findall(text) or _PROCESSOR.findall(text)[:1]
    serials = _SYSTEM_SERIAL.findall(text) or _BOARD_ID.findall(text)[:1]
    macs = _BASE_MAC.findall(text)
    facts = DeviceFacts(
        hostname=value(uptime.group(1)) if uptime else None,
        uptime=value(uptime.group(2)) if uptime else None,
        os_version=next((v for p in _SOFTWARE_LINES if (v := first_match(p, text))), None),
        model=models[0] if models else None,
        serial=serials[0] if serials else None,
        chassis_mac=macs[0] if macs else None,
        image=first_match(_IMAGE_FILE, text),
        boot_reason=first_match(_RELOAD_REASON, text) or first_match(_RETURNED_BY, text),
        member_models=models if len(models) > 1 else [],
        member_serials=serials if len(serials) > 1 else [],
        member_macs=macs if len(macs) > 1 else [],
    )
    for key, pattern in (("software_image", _IMAGE_NAME), ("config_register", _CONFIG_REGISTER)):
        if found := first_match(pattern, text):
            facts.extra[key] = found
    if "IOS XE" in text or "IOS-XE" in text:
        facts.extra["os_name"] = "IOS XE"
    return facts


# -- show inventory (IOS, IOS XE, NX-OS) ------------------------------------------------------

_INV_NAME = re.compile(r'^\s*NAME:\s*(?:"(?P<qname>[^"]*)"|(?P<name>[^,]*?))\s*,\s*'
                       r'DESCR:\s*(?:"(?P<qdescr>[^"]*)"|(?P<descr>.*?))\s*$')
_INV_PID = re.compile(r"^\s*PID:\s*(?P<pid>.*?)\s*,\s*VID:\s*(?P<vid>.*?)\s*,\s*SN:\s*(?P<sn>.*?)\s*$")


def parse_show_inventory(text: str) -> list[Module]:
    """One Module per NAME/DESCR + PID/VID/SN pair, in order."""
    out: list[Module] = []
    current: Module | None = None
    for line in text.splitlines():
        if match := _INV_NAME.match(line):
            name = match["qname"] if match["qname"] is not None else match["name"]
            descr = match["qdescr"] if match["qdescr"] is not None else match["descr"]
            current = Module(name=name.strip(), description=value(descr))
            out.append(current)
        elif (match := _INV_PID.match(line)) and current is not None:
            current.model, current.hardware_version, current.serial = (
                value(match["pid"]), value(match["vid"]), value(match["sn"]))
            current = None
    return out


# -- show interfaces --------------------------------------------------------------------------

_IF_HEADER = re.compile(r"^(?P<name>\S+) is (?P<link>.+?), line protocol is (?P<proto>.+?)\s*$")
_IF_HARDWARE = re.compile(r"^\s+Hardware is (?P<hw>.+?)(?:, address is (?P<mac>\S+)(?: \(bia (?P<bia>[^)\s]+)\))?)?\s*$")
_IF_DESCRIPTION = re.compile(r"^\s+Description:\s*(.*?)\s*$")
_IF_ADDRESS = re.compile(r"^\s+Internet address is (?P<ip>[\d.]+)/(?P<len>\d+)")
_IF_MTU = re.compile(r"^\s+MTU (?P<mtu>\d+) bytes(?:, BW (?P<bw>\d+) Kbit)?")


def parse_show_interfaces(text: str) -> list[DeviceInterface]:
    out: list[DeviceInterface] = []
    iface: DeviceInterface | None = None
    for line in text.splitlines():
        if match := _IF_HEADER.match(line):
            iface = DeviceInterface(name=match["name"], link_status=value(match["link"]),
                                    protocol_status=value(match["proto"]))
            out.append(iface)
            continue
        if iface is None:
            continue
        if match := _IF_HARDWARE.match(line):
            iface.hardware_type, iface.mac, iface.burned_in_mac = value(match["hw"]), match["mac"], match["bia"]
        elif (match := _IF_DESCRIPTION.match(line)) and iface.description is None:
            iface.description = value(match.group(1))
        elif match := _IF_ADDRESS.match(line):
            iface.ip_address, iface.prefix_length = match["ip"], int(match["len"])
        elif match := _IF_MTU.match(line):
            iface.mtu = int(match["mtu"])
            iface.bandwidth_kbit = int(match["bw"]) if match["bw"] else None
    return out


# -- CDP and LLDP neighbour details -----------------------------------------------------------

_SEPARATOR = re.compile(r"^-{5,}\s*$")
_NOT_ADVERTISED = "not advertised"


def _records(text: str, starts: re.Pattern[str], marker: re.Pattern[str] | None = None) -> list[list[str]]:
    """The text cut into neighbour records: at separator lines, or where a record's first
    field starts again (outputs captured without separators). A record is kept when a line of
    it matches `marker` (default: `starts`)."""
    records: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if _SEPARATOR.match(line) or (starts.match(line) and any(starts.match(x) for x in current)):
            if current:
                records.append(current)
            current = [] if _SEPARATOR.match(line) else [line]
            continue
        current.append(line)
    if current:
        records.append(current)
    marker = marker or starts
    return [r for r in records if any(marker.match(x) for x in r)]


def _field(line: str, label: str) -> str | None:
    """The value of `Label: value`; None when absent or "not advertised"."""
    rest = line.split(":", 1)[1] if ":" in line else ""
    rest = rest.strip()
    if not rest or _NOT_ADVERTISED in rest:
        return None
    return rest


_CDP_START = re.compile(r"^\s*Device ID\s*:")
_CDP_IP = re.compile(r"^\s*(?:IP address|IPv4 Address|IPv6 address|IPv6 Address)\s*:\s*(\S+)")
_CDP_PLATFORM = re.compile(r"^\s*Platform\s*:\s*(?P<platform>.*?)\s*,\s*Capabilities\s*:\s*(?P<caps>.*?)\s*$")
_CDP_INTERFACE = re.compile(r"^\s*Interface\s*:\s*(?P<local>[^,]+?)\s*,\s*Port ID \(outgoing port\)\s*:\s*(?P<port>.+?)\s*$")
_CDP_VLAN = re.compile(r"^\s*Native VLAN\s*:\s*(\S+)")


def parse_cdp_neighbors_detail(text: str) -> list[Neighbor]:
    out = []
    for record in _records(text, _CDP_START):
        n = Neighbor(protocol="cdp")
        entry_addresses: list[str] = []
        mgmt_addresses: list[str] = []
        section = None
        version_next = False
        for line in record:
            stripped = line.strip()
            if version_next:
                if stripped:
                    n.description = stripped
                    version_next = False
                continue
            if _CDP_START.match(line):
                n.name = _field(line, "Device ID")
            elif stripped.lower().startswith("entry address"):
                section = entry_addresses
            elif stripped.lower().startswith(("management address", "mgmt address")):
                section = mgmt_addresses
            elif (match := _CDP_IP.match(line)) and section is not None:
                section.append(match.group(1))
            elif match := _CDP_PLATFORM.match(line):
                n.platform, n.capabilities = value(match["platform"]), value(match["caps"])
                section = None
            elif match := _CDP_INTERFACE.match(line):
                n.local_interface, n.port_id = value(match["local"]), value(match["port"])
                section = None
            elif stripped.startswith("Version") and stripped.rstrip(" :") == "Version":
                version_next = True
                section = None
            elif match := _CDP_VLAN.match(line):
                n.vlan_id = match.group(1)
            elif stripped and not line.startswith(" "):
                section = None
        addresses = mgmt_addresses or entry_addresses
        n.mgmt_address = addresses[0] if addresses else None
        out.append(n)
    return out


_LLDP_LABELS = {
    "local intf": "local_interface", "local port id": "local_interface", "chassis id": "chassis_id",
    "port id": "port_id", "port description": "port_description", "system name": "name",
    "enabled capabilities": "capabilities", "vlan id": "vlan_id", "serial number": "serial",
    "manufacturer": "vendor", "model": "platform",
}
_LLDP_MGMT = re.compile(r"^\s*(?:IP|IPV4|IPv4|Management Address)\s*:\s*(\S+)")


_LLDP_LOCAL = re.compile(r"^\s*(?:Local Intf|Local Port id)\s*:")
_LLDP_CHASSIS = re.compile(r"^\s*Chassis id\s*:")


def parse_lldp_neighbors_detail(text: str) -> list[Neighbor]:
    out = []
    # A record starts with its local port when the device prints it (IOS shows it for directly
    # attached ports only), else with the chassis id.
    starts = _LLDP_LOCAL if any(_LLDP_LOCAL.match(line) for line in text.splitlines()) else _LLDP_CHASSIS
    for record in _records(text, starts, _LLDP_CHASSIS):
        n = Neighbor(protocol="lldp")
        description_next = False
        in_mgmt = False
        system_capabilities = None
        for line in record:
            stripped = line.strip()
            if description_next:
                if stripped:
                    n.description = None if _NOT_ADVERTISED in stripped else stripped
                    description_next = False
                continue
            label = stripped.split(":", 1)[0].strip().lower() if ":" in stripped else stripped.lower()
            if label.startswith("system description"):
                description_next = ":" in stripped and not stripped.split(":", 1)[1].strip()
                if not description_next:
                    n.description = _field(stripped, label)
                continue
            if label.startswith("management address"):
                in_mgmt = True
                if ":" in stripped and (inline := _field(stripped, label)) and re.match(r"^[\d.:a-fA-F]+$", inline):
                    n.mgmt_address = n.mgmt_address or inline
                continue
            if in_mgmt and (match := _LLDP_MGMT.match(line)):
                n.mgmt_address = n.mgmt_address or match.group(1)
                continue
            if line and not line.startswith(" "):
                in_mgmt = False
            attribute = _LLDP_LABELS.get(label)
            if attribute and getattr(n, attribute) is None:
                setattr(n, attribute, _field(stripped, label))
            elif label == "system capabilities":
                system_capabilities = _field(stripped, label)
        n.capabilities = n.capabilities or system_capabilities  # what it does, else what it could do
        out.append(n)
    return out
