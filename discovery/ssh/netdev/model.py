"""What the network-device parsers return: plain typed facts, one shape for every platform.

Parsers are pure functions of a command's text. Unknown is None (never "" or "N/A"); values are
kept as the device prints them (trimmed): normalising MACs, names and junk is the report
builder's business (netdev/report.py), so the parsers can be checked against the recorded
outputs' own parse results field for field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class DeviceFacts:
    """The chassis as `show version` (or its platform's equivalent) describes it."""

    hostname: str | None = None
    model: str | None = None  # the chassis product id, e.g. WS-C3850-48U, mx240, DCS-7150S-52-CL
    serial: str | None = None  # the chassis (or stack master's) serial
    os_version: str | None = None
    chassis_mac: str | None = None
    hardware_version: str | None = None
    uptime: str | None = None
    image: str | None = None  # the running software image file
    boot_reason: str | None = None
    # Stack members (switches of a Catalyst stack, a Junos virtual chassis): in member order.
    member_models: list[str] = field(default_factory=list)
    member_serials: list[str] = field(default_factory=list)
    member_macs: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)  # platform-specific facts worth keeping


@dataclass
class Module:
    """A field-replaceable part: chassis, supervisor, line card, power supply, fan, transceiver."""

    name: str  # where it sits, as the device names the slot ("Slot 1", "Power Supply 0", "Xcvr 0")
    description: str | None = None
    model: str | None = None  # product id / part number
    hardware_version: str | None = None
    serial: str | None = None
    vendor: str | None = None  # when the device says (third-party transceivers)
    parent: str | None = None  # the name of the module it sits in (Junos' FPC > PIC > Xcvr tree)


@dataclass
class DeviceInterface:
    name: str
    link_status: str | None = None  # "up", "down", "administratively down"
    protocol_status: str | None = None
    hardware_type: str | None = None
    mac: str | None = None
    burned_in_mac: str | None = None
    description: str | None = None
    ip_address: str | None = None
    prefix_length: int | None = None
    mtu: int | None = None
    bandwidth_kbit: int | None = None


@dataclass
class Neighbor:
    """A device seen on a local port through LLDP or CDP."""

    protocol: str  # "lldp" | "cdp"
    local_interface: str | None = None
    name: str | None = None  # system name / device id
    chassis_id: str | None = None
    port_id: str | None = None
    port_description: str | None = None
    mgmt_address: str | None = None
    platform: str | None = None
    capabilities: str | None = None
    description: str | None = None  # first line of the system description / version
    vlan_id: str | None = None
    serial: str | None = None
    vendor: str | None = None


# -- small text helpers shared by the platform parsers -----------------------------------------

def value(text: str | None) -> str | None:
    """A trimmed value; None when empty."""
    if text is None:
        return None
    text = text.strip()
    return text or None


def key_values(text: str, separator: str = ":") -> dict[str, str]:
    """`Key: value` lines (first occurrence of each key wins), keys lower-cased."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(separator)
        if sep and key.strip():
            out.setdefault(key.strip().lower(), rest.strip())
    return out


def first_match(pattern: re.Pattern[str], text: str, group: int | str = 1) -> str | None:
    match = pattern.search(text)
    return value(match.group(group)) if match else None
