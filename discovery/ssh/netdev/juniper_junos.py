"""Juniper Junos: `show version` and `show chassis hardware`. Pure functions of the text.

A virtual chassis or an SRX cluster prints one block per member (`fpc0:`, `node0:`); the
first block describes the device.
"""

from __future__ import annotations

import re

from discovery.ssh.netdev.model import DeviceFacts, Module, first_match, value

_HOSTNAME = re.compile(r"^Hostname:\s*(\S+)", re.M)
_MODEL = re.compile(r"^Model:\s*(\S+)", re.M)
_SERIAL = re.compile(r"^Serial Number:\s*(\S+)", re.M)
# The release: the "Junos:" line of 12.1 and later, else the suite that names it in older ones.
_RELEASES = (
    re.compile(r"^Junos:\s*(\S+)", re.M),
    re.compile(r"^JUNOS Software Release \[([^\]]+)\]", re.M),
    re.compile(r"^JUNOS EX\s+Software Suite \[([^\]]+)\]", re.M),
    re.compile(r"^JUNOS Base OS boot \[([^\]]+)\]", re.M),
)


def parse_show_version(text: str) -> DeviceFacts:
    release = next((found for pattern in _RELEASES if (found := first_match(pattern, text))), None)
    return DeviceFacts(hostname=first_match(_HOSTNAME, text), model=first_match(_MODEL, text),
                       serial=first_match(_SERIAL, text), os_version=release)


_HEADER = re.compile(r"^Item\s+Version\s+Part number\s+Serial number\s+Description\s*$")
_END = re.compile(r"^\s*(?:\{.*\}|$)")


def parse_show_chassis_hardware(text: str) -> list[Module]:
    """One Module per row of the hardware table, in order; `parent` is the row it is indented
    under (FPC > MIC > PIC > Xcvr). Columns are cut where the header puts them: descriptions
    and versions hold blanks ("REV 05", "JNP204 [MX204]"), so splitting on blanks would not do."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        return []
    header = lines[start]
    cols = [header.index(h) for h in ("Version", "Part number", "Serial number", "Description")]
    out: list[Module] = []
    parents: list[tuple[int, str]] = []  # (indent, name) of the rows above, outermost first
    for line in lines[start + 1:]:
        if _END.match(line):
            if line.strip():  # "{master:0}": the table is over
                break
            continue
        indent = len(line) - len(line.lstrip(" "))
        name = value(line[:cols[0]])
        if name is None:
            continue
        fields = [value(line[a:b]) for a, b in zip(cols, [*cols[1:], None])]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        out.append(Module(name=name, hardware_version=fields[0], model=fields[1], serial=fields[2],
                          description=fields[3], parent=parents[-1][1] if parents else None))
        parents.append((indent, name))
    return out
