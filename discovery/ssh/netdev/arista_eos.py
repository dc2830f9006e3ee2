"""Arista EOS: `show version` and `show inventory`. Pure functions of the text."""

from __future__ import annotations

import re

from discovery.ssh.netdev.model import DeviceFacts, Module, key_values, value

_MODEL = re.compile(r"^\s*Arista\s+(\S+)", re.M)


def parse_show_version(text: str) -> DeviceFacts:
    fields = key_values(text)
    model = _MODEL.search(text)
    image = value(fields.get("software image version"))
    facts = DeviceFacts(
        model=model.group(1) if model else None,
        hardware_version=value(fields.get("hardware version")),
        serial=value(fields.get("serial number")),
        chassis_mac=value(fields.get("system mac address")),
        os_version=image.split()[0] if image else None,  # "4.31.6M-... (engineering build)"
        uptime=value(fields.get("uptime")),
    )
    for key, name in (("total memory", "total_memory_kb"), ("free memory", "free_memory_kb"),
                      ("architecture", "architecture")):
        if found := value(fields.get(key)):
            facts.extra[name] = found.removesuffix(" kB").strip()
    return facts


# Section title (after "System has N ...") -> the prefix a slot is named with.
_SECTIONS = (("power supply", "PowerSupply"), ("fan module", "Fan"), ("card slot", "Linecard"),
             ("transceiver", "Ethernet"))
_SECTION = re.compile(r"^System has \d+ (.+?)\s*$")
_EMPTY_SLOT = re.compile(r"^not\b|^unknown$", re.I)


def _data_rows(lines: list[str]) -> list[list[str]]:
    """Rows of a section under its column titles and dashes (a header is a line whose next
    line is dashes, or any line before the dashes)."""
    dashes = next((i for i, line in enumerate(lines) if line.strip().startswith("---")), None)
    rows = lines[dashes + 1:] if dashes is not None else lines
    return [line.split() for line in rows if line.strip() and not line.strip().startswith("---")]


def parse_show_inventory(text: str) -> list[Module]:
    """The chassis, then power supplies, fans, line cards and transceivers, as the device lists
    them; empty slots are left out."""
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("System information") or (_SECTION.match(line)):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
    out: list[Module] = []
    for title, lines in sections:
        if title.startswith("System information"):
            out.extend(_system(lines))
            continue
        kind = _SECTION.match(title).group(1).lower()  # type: ignore[union-attr]
        prefix = next((p for key, p in _SECTIONS if key in kind), None)
        if prefix is None:
            continue  # "ports": counts, not parts
        for row in _data_rows(lines):
            module = _row(prefix, row)
            if module is not None:
                out.append(module)
    return out


def _system(lines: list[str]) -> list[Module]:
    """The chassis: a model line then a "hw-version serial mfg-date" line, with or without the
    column titles above each."""
    data = [line for line in lines if line.strip() and not line.strip().startswith("---")
            and not re.match(r"^\s*(Model\s+Description|HW Version)", line)]
    if not data:
        return []
    model, _, description = data[0].strip().partition(" ")
    version = serial = None
    if len(data) > 1:
        words = data[1].split()
        version, serial = (words + [None, None])[:2]
    return [Module(name="Chassis", model=value(model), description=value(description),
                   hardware_version=value(version), serial=value(serial))]


def _row(prefix: str, row: list[str]) -> Module | None:
    if not row:
        return None
    slot = row[0]
    rest = row[1:]
    if not rest or _EMPTY_SLOT.match(" ".join(rest)):
        return None
    if prefix == "Fan":  # module, number of fans, model, serial
        rest = rest[1:]
    if prefix == "Ethernet":  # port, manufacturer (may hold blanks), model, serial, rev
        if len(rest) < 4:
            return None
        return Module(name=f"{prefix}{slot}", vendor=" ".join(rest[:-3]), model=rest[-3], serial=rest[-2],
                      hardware_version=rest[-1])
    model = rest[0] if rest else None
    serial = rest[1] if len(rest) > 1 else None
    return Module(name=f"{prefix}{slot}", model=value(model), serial=value(serial))
