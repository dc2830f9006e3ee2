"""Memory: the total from /proc/meminfo, the modules (DIMMs) from dmidecode types 17 and 16
(type 6 on very old firmware).

`memory_slots` follows GLPI's _getMemories slot for slot (same order, same ordinal), so GLPI's
recorded expectations test it; the values are fleetgraph's: junk serials ("SerNum01",
"0000000") absent, JEDEC manufacturer codes ("80AD000080AD") decoded, "Other"/"Unknown" types
absent. The collector reports only populated slots as MemoryModule items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.collectors.hardware.dmidecode import DmiStructures
from cmdb.junk import clean

# JEDEC JEP106 manufacturer ids of the DRAM module makers seen in the field: (bank, id byte).
JEDEC_MANUFACTURERS = {
    (1, 0x2C): "Micron", (1, 0xCE): "Samsung", (1, 0xAD): "Hynix", (1, 0x98): "Toshiba",
    (1, 0x89): "Intel", (2, 0x98): "Kingston", (2, 0x4F): "Transcend", (2, 0x94): "Mushkin",
    (3, 0xFE): "Elpida", (3, 0x9E): "Corsair", (4, 0x0B): "Nanya", (4, 0x25): "KingMax",
    (5, 0xCD): "G.Skill", (6, 0x9B): "Crucial", (2, 0xC8): "Agilent",
}
# Part-number prefixes of the same makers, for modules whose Manufacturer field says nothing.
PART_NUMBER_MAKERS = (
    (re.compile(r"^(HMT|HMA|HMAA|HMCG|HYMP|HYMD)"), "Hynix"),
    (re.compile(r"^(M3[789]\d|M4\d\d|M3\s?\d\d[A-Z]|K4[A-Z])"), "Samsung"),
    (re.compile(r"^(MT\d|MTA\d|\d{1,2}[A-Z]{2,3}F\d)"), "Micron"),
    (re.compile(r"^EB[EJ]"), "Elpida"),
    (re.compile(r"^NT\d"), "Nanya"),
    (re.compile(r"^(KVR|KHX|KF\d|KCP|9905)"), "Kingston"),
    (re.compile(r"^(CT\d|BLS)"), "Crucial"),
    (re.compile(r"^F[345]-\d"), "G.Skill"),
    (re.compile(r"^CM[KSTWZ]\d"), "Corsair"),
)
# The DDR generation a part number spells, for firmware that prints "<OUT OF SPEC>" as the type.
PART_NUMBER_TYPES = (
    (re.compile(r"^HMT"), "DDR3"), (re.compile(r"^HMAA?"), "DDR4"), (re.compile(r"^HMCG"), "DDR5"),
    (re.compile(r"^\d{1,2}[JK][SD]F\d"), "DDR3"), (re.compile(r"^\d{1,2}AS[FD]\d"), "DDR4"),
)
# What boards write in Manufacturer / Part Number / Serial Number when they know nothing.
_NO_MAKER = re.compile(r"manufacturer|undefined|^none$|^no dimm|\sdimm|^dimm", re.I)
_NO_PART = re.compile(r"dimm|part\s*num|ser\s*num|^no\s", re.I)
_NO_SERIAL = re.compile(r"^(sernum\d*|serial\s*num\w*\d*|no dimm|0x0+)$", re.I)
_HEX = re.compile(r"^(?:0x)?([0-9A-Fa-f]+)$")
_SIZE = re.compile(r"^(\d+)\s*([KMGT])(?:B|byte)\b", re.I)
_SPEED = re.compile(r"^(\d+(?:\.\d+)?)\s*(MHz|MT/s|GHz|GT/s)", re.I)
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_NOT_A_VALUE = {"other", "unknown"}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes: {"MemTotal": ..., "SwapTotal": ...}."""
    values = {}
    for match in re.finditer(r"^(\w+):\s+(\d+)(?:\s+(kB))?\s*$", text, re.M):
        values[match[1]] = int(match[2]) * (1024 if match[3] else 1)
    return values


@dataclass(frozen=True)
class MemorySlot:
    ordinal: int  # 1-based, file order (GLPI's NUMSLOTS)
    slot: str | None = None  # Locator: "DIMM_A1", "PROC 1 DIMM 2A"
    bank: str | None = None  # Bank Locator: "BANK 0", "P0_Node0_Channel0_Dimm0"
    form_factor: str | None = None
    type: str | None = None  # DDR4, DDR3, ...
    speed_mts: int | None = None  # rated transfer rate (dmidecode 2.x says MHz for the same number)
    size_bytes: int | None = None  # None: an empty slot
    manufacturer: str | None = None
    serial: str | None = None
    part_number: str | None = None
    error_correction: str | None = None  # of the memory array (type 16)


def size_bytes(text: str | None) -> int | None:
    """"2048 MB", "8 GB", "64 MB (Single-bank Connection)" in bytes; None for anything else."""
    match = _SIZE.match(text or "")
    return int(match[1]) * _UNITS[match[2].upper()] if match else None


def speed_mts(text: str | None) -> int | None:
    match = _SPEED.match(text or "")
    if not match:
        return None
    value = float(match[1]) * (1000 if match[2].upper().startswith("G") else 1)
    return round(value) or None


def jedec_manufacturer(code: str) -> str | None:
    """A JEP106 code as SMBIOS shows it ("80AD000080AD", "00AD00B300AD", "7F7FFE0000000000",
    "CE00000000000000") as the maker's name, when it is one of the makers known here."""
    hexdigits = code.lower().removeprefix("0x")
    pairs = [int(hexdigits[i:i + 2], 16) for i in range(0, len(hexdigits) - 1, 2)]
    if len(pairs) < 2:
        return None
    bank = 1
    while pairs and pairs[0] == 0x7F:  # old style: one 0x7F continuation byte per bank
        bank, pairs = bank + 1, pairs[1:]
    if not pairs:
        return None
    if bank == 1 and len(pairs) >= 2 and (pairs[0] & 0x7F) < 0x10 and pairs[1]:
        bank, ident = (pairs[0] & 0x7F) + 1, pairs[1]  # SPD style: continuation count, then id
    else:
        ident = pairs[0]
    return JEDEC_MANUFACTURERS.get((bank, ident))


def decode_part_number(text: str | None) -> str | None:
    """The part number, hex-encoded ones ("0x4D33...") decoded; junk and fillers absent."""
    if not text:
        return None
    if text.lower().startswith("0x") and _HEX.match(text) and len(text) % 2 == 0:
        raw = bytes.fromhex(text[2:])
        text = "".join(chr(b) for b in raw if 32 <= b < 127)
    text = text.strip().rstrip("-").strip()
    if not text or _NO_PART.search(text):
        return None
    return clean(text)


def _is_jedec_code(raw: str) -> bool:
    digits = raw.lower().removeprefix("0x")
    return len(digits) >= 4 and len(digits) % 2 == 0 and bool(_HEX.match(digits))


def module_manufacturer(raw: str | None, part_number: str | None) -> str | None:
    """The module maker: the Manufacturer text, or its JEDEC code decoded, or the maker whose
    part numbers look like this one; None when nothing says."""
    if raw and _is_jedec_code(raw):
        if maker := jedec_manufacturer(raw):
            return maker
    elif raw and not _NO_MAKER.search(raw) and clean(raw):
        return clean(raw)
    for pattern, maker in PART_NUMBER_MAKERS:
        if part_number and pattern.match(part_number):
            return maker
    return None


def _part_type(part_number: str | None) -> str | None:
    for pattern, ddr in PART_NUMBER_TYPES:
        if part_number and pattern.match(part_number):
            return ddr
    return None


def _serial(raw: str | None) -> str | None:
    value = clean(raw)
    return None if value is None or _NO_SERIAL.match(value) else value


def _enum(raw: str | None) -> str | None:
    value = clean(raw)
    return None if value is None or value.lower() in _NOT_A_VALUE else value


def memory_slots(infos: DmiStructures) -> list[MemorySlot]:
    """Every memory slot dmidecode lists, empty ones included (size_bytes None), BIOS flash
    devices left out; from type 17 (SMBIOS 2.1+), else from type 6."""
    devices = infos.get("17")
    if devices:
        arrays = infos.get("16") or [{}]
        ecc = _enum(arrays[0].get("Error Correction Type"))
        slots = []
        for ordinal, info in enumerate(devices, 1):
            if "flash" in (info.get("Type") or "").lower():
                continue  # the BIOS's own storage, not system memory
            part = decode_part_number(info.get("Part Number"))
            slots.append(MemorySlot(
                ordinal=ordinal, slot=clean(info.get("Locator")), bank=clean(info.get("Bank Locator")),
                form_factor=_enum(info.get("Form Factor")), type=_enum(info.get("Type")) or _part_type(part),
                speed_mts=speed_mts(info.get("Speed")), size_bytes=size_bytes(info.get("Size")),
                manufacturer=module_manufacturer(info.get("Manufacturer"), part),
                serial=_serial(info.get("Serial Number")), part_number=part, error_correction=ecc,
            ))
        return slots
    return [MemorySlot(ordinal=ordinal, slot=clean(info.get("Socket Designation") or info.get("Socket")), type=_enum(info.get("Type")),
                       size_bytes=size_bytes(info.get("Installed Size")))
            for ordinal, info in enumerate(infos.get("6") or [], 1)]


def slot_names(slots: list[MemorySlot]) -> list[str]:
    """A name per slot, unique on this host: the locator, prefixed by the bank locator where
    locators repeat ("BANK 1 / DIMM0"), else the ordinal ("slot 3")."""
    counts: dict[str | None, int] = {}
    for s in slots:
        counts[s.slot] = counts.get(s.slot, 0) + 1
    names, seen = [], set()
    for s in slots:
        name = s.slot if s.slot and counts[s.slot] == 1 else \
            (f"{s.bank} / {s.slot}" if s.bank and s.slot else None)
        if name is None or name in seen:
            name = f"slot {s.ordinal}"
        seen.add(name)
        names.append(name)
    return names
