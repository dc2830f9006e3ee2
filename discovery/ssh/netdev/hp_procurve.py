"""HP/Aruba ProCurve (ArubaOS-Switch): `show system`. Two "Key : value" columns per line; a
stack (VSF) prints one block per member after "VSF-Member :n" / "Member :n". Pure function."""

from __future__ import annotations

import re

from discovery.ssh.netdev.model import DeviceFacts, value

# A key is words (with "(sec)", "(%)", "- Total"); it ends at " : ". The value runs to the next
# key of the same line (two or more blanks, then a key) or to the end of the line.
_PAIR = re.compile(r"(?P<key>[A-Za-z][A-Za-z0-9 ()%/-]*?)\s*:\s*(?P<value>.*?)(?=\s{2,}[A-Za-z][A-Za-z0-9 ()%/-]*?\s+:\s|\s*$)")
_MEMBER = re.compile(r"^\s*(?:VSF-)?Member\s*:\s*(\d+)", re.I)


def _pairs(line: str) -> list[tuple[str, str]]:
    return [(m["key"].strip().lower(), m["value"].strip()) for m in _PAIR.finditer(line.strip())]


def parse_show_system(text: str) -> DeviceFacts:
    common: dict[str, str] = {}
    members: list[dict[str, str]] = []
    for line in text.splitlines():
        if match := _MEMBER.match(line):
            members.append({"member_id": match.group(1)})
            continue
        for key, found in _pairs(line):
            target = members[-1] if members else common
            target.setdefault(key, found)
    first = members[0] if members else common
    facts = DeviceFacts(
        hostname=value(common.get("system name")),
        os_version=value(common.get("software revision") or first.get("software revision")),
        serial=value(first.get("serial number") or common.get("serial number")),
        chassis_mac=value(common.get("base mac addr") or first.get("mac addr")),
        uptime=value(first.get("up time") or common.get("up time")),
        member_serials=[s for m in members if (s := value(m.get("serial number")))],
        member_macs=[s for m in members if (s := value(m.get("mac addr")))],
    )
    for key, name in (("rom version", "rom_version"), ("system contact", "contact"),
                      ("system location", "location")):
        if found := value(first.get(key) or common.get(key)):
            facts.extra[name] = found
    return facts
