"""Cisco NX-OS: `show version`. `show inventory` and the CDP/LLDP details share the IOS
parsers (discovery/ssh/netdev/cisco_ios.py). Pure functions of the text."""

from __future__ import annotations

import re

from discovery.ssh.netdev.model import DeviceFacts, first_match

_OS = re.compile(r"^\s*(?:NXOS|system):\s+version\s+(.+?)\s*$", re.M)
_CHASSIS = re.compile(r"^\s*cisco .*?(\S+)\s+[Cc]hassis", re.M)
_SUPERVISOR = re.compile(r'^\s*cisco\s+(?:N\dK-)?(\S+)\s+\("', re.M)  # ACI: cisco N9K-C9396PX ("supervisor")
_SERIAL = re.compile(r"^\s*Processor Board ID\s+(\S+)", re.M)
_HOSTNAME = re.compile(r"^\s*Device name:\s*(\S+)", re.M)
_UPTIME = re.compile(r"^\s*Kernel uptime is\s+(.+?)\s*$", re.M)
_REASON = re.compile(r"^\s*Reason:\s*(.+?)\s*$", re.M)
_IMAGE = re.compile(r"^\s*(?:NXOS|kickstart|system) image file is:\s*(\S+)", re.M)
_BIOS = re.compile(r"^\s*BIOS:\s+version\s+(\S+)", re.M)


def parse_show_version(text: str) -> DeviceFacts:
    facts = DeviceFacts(
        hostname=first_match(_HOSTNAME, text), os_version=first_match(_OS, text),
        model=first_match(_CHASSIS, text) or first_match(_SUPERVISOR, text), serial=first_match(_SERIAL, text),
        uptime=first_match(_UPTIME, text), boot_reason=first_match(_REASON, text),
        image=first_match(_IMAGE, text),
    )
    if bios := first_match(_BIOS, text):
        facts.extra["bios_version"] = bios
    return facts
