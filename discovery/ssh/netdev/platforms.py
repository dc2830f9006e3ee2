"""The network platforms the SSH scanner knows: how to recognise each from its `show version`
answer, which commands to run, and which pure parser reads each answer. One line per command.

Commands run one per SSH exec channel (no interactive shell, so no pager and no prompt to
parse). A device that rejects a command ("% Invalid input", "syntax error") or has the protocol
off ("% LLDP is not enabled") gives that section `not_applicable`, not a failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from discovery.ssh.netdev import arista_eos, cisco_ios, cisco_nxos, hp_procurve, juniper_junos, paloalto_panos

SectionKind = Literal["facts", "modules", "interfaces", "neighbors"]


@dataclass(frozen=True)
class Section:
    name: str  # the report's collector status is "netdev.<name>"
    command: str
    kind: SectionKind
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class Platform:
    name: str  # ntc-templates' platform name, e.g. "cisco_ios"
    vendor: str
    os_name: str
    sections: tuple[Section, ...]  # the first one gives the DeviceFacts

    @property
    def facts(self) -> Section:
        return self.sections[0]


_IOS_NEIGHBORS = (Section("lldp", "show lldp neighbors detail", "neighbors", cisco_ios.parse_lldp_neighbors_detail),
                  Section("cdp", "show cdp neighbors detail", "neighbors", cisco_ios.parse_cdp_neighbors_detail))

PLATFORMS: dict[str, Platform] = {p.name: p for p in (
    Platform("cisco_ios", "Cisco", "IOS", (
        Section("version", "show version", "facts", cisco_ios.parse_show_version),
        Section("inventory", "show inventory", "modules", cisco_ios.parse_show_inventory),
        Section("interfaces", "show interfaces", "interfaces", cisco_ios.parse_show_interfaces),
        *_IOS_NEIGHBORS)),
    Platform("cisco_nxos", "Cisco", "NX-OS", (
        Section("version", "show version", "facts", cisco_nxos.parse_show_version),
        Section("inventory", "show inventory", "modules", cisco_ios.parse_show_inventory),
        *_IOS_NEIGHBORS)),
    Platform("juniper_junos", "Juniper Networks", "Junos", (
        Section("version", "show version", "facts", juniper_junos.parse_show_version),
        Section("inventory", "show chassis hardware", "modules", juniper_junos.parse_show_chassis_hardware))),
    Platform("arista_eos", "Arista Networks", "EOS", (
        Section("version", "show version", "facts", arista_eos.parse_show_version),
        Section("inventory", "show inventory", "modules", arista_eos.parse_show_inventory))),
    Platform("hp_procurve", "HP", "ArubaOS-Switch", (
        Section("version", "show system", "facts", hp_procurve.parse_show_system),)),
    Platform("paloalto_panos", "Palo Alto Networks", "PAN-OS", (
        Section("version", "show system info", "facts", paloalto_panos.parse_show_system_info),)),
)}

# What a device's `show version` (first) answer looks like, most specific first.
_SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cisco_nxos", re.compile(r"Cisco Nexus Operating System|^\s*NXOS: version|^\s*kickstart: version", re.M)),
    ("cisco_ios", re.compile(r"^(?:Cisco )?IOS(?: XE| \(tm\))?.*Software|^Cisco IOS-XE software", re.M)),
    ("arista_eos", re.compile(r"^\s*Arista \S+.*\n(?:.*\n){0,6}?\s*(?:Hardware version|Serial number|System MAC)", re.M)),
    ("juniper_junos", re.compile(r"^Model: \S+\s*$(?:.*\n){0,3}?^(?:Junos: |JUNOS )", re.M)),
    ("hp_procurve", re.compile(r"^\s*Image stamp:", re.M)),
    ("paloalto_panos", re.compile(r"^sw-version: \S+", re.M)),
)
# Commands tried in turn to recognise a device; PAN-OS has no `show version`.
PROBE_COMMANDS = ("show version", "show system info")

_UNSUPPORTED = re.compile(
    r"% ?Invalid (?:input|command)|% ?Unrecognized command|% ?Unknown command|% ?Incomplete command|"
    r"^\s*error: (?:syntax error|unknown command)|Invalid input detected|% ?Ambiguous command", re.M | re.I)
_DISABLED = re.compile(r"%\s*(?P<what>LLDP|CDP)\S*\s+is not (?:enabled|running)|(?P<off>LLDP|CDP) is disabled", re.I)


def detect_platform(text: str) -> str | None:
    """The platform whose answer `text` is, or None."""
    for name, signature in _SIGNATURES:
        if signature.search(text):
            return name
    return None


def unsupported_reason(text: str) -> str | None:
    """Why a device's answer is no answer: the command is unknown, or the protocol is off."""
    if match := _DISABLED.search(text):
        return f"{(match['what'] or match['off']).upper()} is not enabled on the device"
    if match := _UNSUPPORTED.search(text):
        return f"the device does not know the command ({match.group(0).strip()})"
    return None
