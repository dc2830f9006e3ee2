"""`dmidecode` output: a pure parser and the mappers that turn its structures into BIOS, system
and memory facts. Shared with the SSH scanner (one parser, two transports).

`parse_dmidecode` has the semantics of GLPI agent's getDmidecodeInfos, so GLPI's recorded
expectations test it: {DMI type number (str): [one {field: value} per structure, file order]};
values trimmed; multi-line lists (Characteristics, Flags) and fields without a value skipped;
placeholder values ("Not Specified", "To Be Filled By O.E.M.", ...) dropped; a structure left
with no field is no structure. The mappers then apply fleetgraph's stricter junk denylist
(cmdb.junk) on top: a value GLPI would pass but that carries no information stays absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmdb.junk import clean, clean_uuid

DmiStructures = dict[str, list[dict[str, str]]]

_TYPE_LINE = re.compile(r"DMI type (\d+)")
_FIELD_LINE = re.compile(r"^\s+([^:]+):\s(.*\S)")
# GLPI's isInvalidBiosValue, matched against the whole raw value, case-insensitive.
_PLACEHOLDER = re.compile(
    r"^(?:N/A|None|Unknown|Not\s*Specified|Not\s*Present|Not\s*Available|Not\s*Installed|Default\s*string"
    r"|System\s*Product\s*Name|System\s*manufacturer|System\s*Serial\s*Number|System\s*Version"
    r"|Chassis\s*Serial\s*Number|Chassis\s*manufacturer?|Chassis\s*Version|No\s*Asset\s*Tag"
    r"|<BAD\s*INDEX>|(?:<OUT\s*OF\s*SPEC>){1,2}|\s*To\s*Be\s*Filled\s*By\s*O\.E\.M\.)$",
    re.I,
)


def is_placeholder(value: str) -> bool:
    """A value dmidecode prints where the firmware has none (GLPI's list, exactly)."""
    return bool(_PLACEHOLDER.match(value))


def parse_dmidecode(text: str) -> DmiStructures:
    """dmidecode's text output (any version 2.x-3.x, any OS) as structures grouped by type."""
    infos: DmiStructures = {}
    dmi_type: str | None = None
    block: dict[str, str] = {}
    for line in text.splitlines():
        if header := _TYPE_LINE.search(line):
            if block and dmi_type is not None:
                infos.setdefault(dmi_type, []).append(block)
            block, dmi_type = {}, header[1]
            continue
        if dmi_type is None:
            continue
        match = _FIELD_LINE.match(line)
        if not match or is_placeholder(match[2]):
            continue
        block[match[1]] = " ".join(match[2].split())
    if block and dmi_type is not None:
        infos.setdefault(dmi_type, []).append(block)
    return infos


def _first(infos: DmiStructures, dmi_type: int) -> dict[str, str]:
    structures = infos.get(str(dmi_type))
    return structures[0] if structures else {}


# Lenovo puts the machine type in Product Name ("20HRCTO1WW") and the name people know in
# Version ("ThinkPad X1 Carbon 5th"); GLPI swaps them, and so do we.
_LENOVO_FAMILIES = re.compile(r"^(Think|Idea|Yoga|Netfinity|Netvista|Intelli)", re.I)


def system_model(manufacturer: str | None, product: str | None, version: str | None) -> tuple[str | None, str | None]:
    """(model, model_version): the product name and version, Lenovo's swapped back."""
    if manufacturer and version and manufacturer.strip().upper() == "LENOVO" and _LENOVO_FAMILIES.match(version):
        return version, product
    return product, version


@dataclass(frozen=True)
class BiosFacts:
    """Types 0-3 in GLPI's BIOS shape. `*_raw` are the values as getDmidecodeInfos left them;
    the properties are what fleetgraph reports (junk-cleaned)."""

    bios_vendor: str | None = None
    bios_version: str | None = None
    bios_date: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    model_version: str | None = None
    sku: str | None = None
    serial: str | None = None
    board_vendor: str | None = None
    board_model: str | None = None
    board_serial: str | None = None
    asset_tag: str | None = None

    def glpi(self) -> dict[str, str | None]:
        return {"BMANUFACTURER": self.bios_vendor, "BVERSION": self.bios_version, "BDATE": self.bios_date,
                "SMANUFACTURER": self.manufacturer, "SMODEL": self.model, "SKUNUMBER": self.sku,
                "SSN": self.serial, "MMANUFACTURER": self.board_vendor, "MMODEL": self.board_model,
                "MSN": self.board_serial, "ASSETTAG": self.asset_tag}


def bios_from_dmidecode(infos: DmiStructures) -> BiosFacts:
    """BIOS (type 0), system (1), baseboard (2) and chassis (3) facts, as GLPI's _getBios reads
    them: first structure of each type; the system serial falls back to the chassis serial."""
    bios, system, board, chassis = (_first(infos, t) for t in (0, 1, 2, 3))
    manufacturer = system.get("Manufacturer") or system.get("Vendor")
    model, version = system_model(manufacturer, system.get("Product") or system.get("Product Name"),
                                  system.get("Version"))
    serial = system.get("Serial Number")
    if serial is None:
        serial = chassis.get("Serial Number")
    return BiosFacts(
        bios_vendor=bios.get("Vendor"), bios_version=bios.get("Version"), bios_date=bios.get("Release Date"),
        manufacturer=manufacturer, model=model, model_version=version, sku=system.get("SKU Number"),
        serial=serial, board_vendor=board.get("Manufacturer"), board_model=board.get("Product Name"),
        board_serial=board.get("Serial Number"), asset_tag=chassis.get("Asset Tag"),
    )


def hardware_from_dmidecode(infos: DmiStructures) -> tuple[str | None, str | None]:
    """(system UUID, chassis type name) as dmidecode prints them (GLPI's _getHardware)."""
    return _first(infos, 1).get("UUID"), _first(infos, 3).get("Type")


def computer_facts_from_dmidecode(infos: DmiStructures) -> dict[str, object]:
    """Computer attributes from dmidecode, junk removed: the same names as the sysfs DMI facts."""
    bios = bios_from_dmidecode(infos)
    uuid, chassis = hardware_from_dmidecode(infos)
    chassis_info = _first(infos, 3)
    facts = {
        "manufacturer": bios.manufacturer, "model": bios.model, "model_version": bios.model_version,
        "sku": bios.sku, "serial": clean(bios.serial) or clean(chassis_info.get("Serial Number")),
        "system_uuid": clean_uuid(uuid), "chassis_type": chassis if chassis not in ("Other", "Unknown") else None,
        "chassis_vendor": chassis_info.get("Manufacturer"), "asset_tag": bios.asset_tag,
        "bios_vendor": bios.bios_vendor, "bios_version": bios.bios_version, "bios_date": bios.bios_date,
        "board_vendor": bios.board_vendor, "board_model": bios.board_model, "board_serial": bios.board_serial,
    }
    return {name: clean(value) if isinstance(value, str) and name != "system_uuid" else value
            for name, value in facts.items()}
