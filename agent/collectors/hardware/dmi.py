"""DMI/SMBIOS facts of the Computer: system, BIOS, baseboard and chassis.

Two sources, one shape: /sys/class/dmi/id (no root needed, except for serials) and `dmidecode`
(root; also lists the memory modules). sysfs is read first, dmidecode fills what sysfs did not
say. Both may be missing (containers, many VMs and ARM boards, this CI machine): the attributes
are then absent and the collector is still ok. Every string goes through cmdb.junk.
"""

from __future__ import annotations

import os

from agent.collectors.hardware.dmidecode import (
    DmiStructures,
    computer_facts_from_dmidecode,
    parse_dmidecode,
    system_model,
)
from agent.context import CommandError, Context
from cmdb.junk import clean, clean_uuid

DMI_DIR = "/sys/class/dmi/id"
DMI_FILES = ("sys_vendor", "product_name", "product_version", "product_serial", "product_uuid",
             "product_sku", "bios_vendor", "bios_version", "bios_date", "chassis_type",
             "chassis_vendor", "chassis_serial", "chassis_asset_tag", "board_vendor",
             "board_name", "board_serial")
# BIOS, system, baseboard, chassis, memory array, memory device: all the collectors read.
DMIDECODE = ["dmidecode", "-t", "0,1,2,3,16,17"]
DMIDECODE_TIMEOUT = 15.0
# SMBIOS 3.x chassis types, spelled as dmidecode prints them so that both sources give the
# same value (a source switch must not write a history row); 1 Other and 2 Unknown say nothing.
CHASSIS_TYPES = {
    3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box", 6: "Mini Tower", 7: "Tower",
    8: "Portable", 9: "Laptop", 10: "Notebook", 11: "Hand Held", 12: "Docking Station",
    13: "All In One", 14: "Sub Notebook", 15: "Space-saving", 16: "Lunch Box",
    17: "Main Server Chassis", 18: "Expansion Chassis", 19: "Sub Chassis",
    20: "Bus Expansion Chassis", 21: "Peripheral Chassis", 22: "RAID Chassis",
    23: "Rack Mount Chassis", 24: "Sealed-case PC", 25: "Multi-system", 26: "CompactPCI",
    27: "AdvancedTCA", 28: "Blade", 29: "Blade Enclosing", 30: "Tablet", 31: "Convertible",
    32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC", 35: "Mini PC", 36: "Stick PC",
}
DMI_ATTRIBUTES = ("manufacturer", "model", "model_version", "sku", "serial", "system_uuid",
                  "chassis_type", "chassis_vendor", "asset_tag", "bios_vendor", "bios_version",
                  "bios_date", "board_vendor", "board_model", "board_serial")


def dmi_facts(raw: dict[str, str | None]) -> dict[str, object]:
    """Computer attributes from /sys/class/dmi/id file contents ({file name: text or None}),
    junk removed. The system serial falls back to the chassis serial, as dmidecode users expect."""
    v = {name: clean(text) for name, text in raw.items() if text is not None}
    chassis, chassis_code = None, (raw.get("chassis_type") or "").strip()
    if chassis_code.isdigit():
        chassis = CHASSIS_TYPES.get(int(chassis_code) & 0x7F)  # bit 7 is the lock flag
    model, model_version = system_model(v.get("sys_vendor"), v.get("product_name"), v.get("product_version"))
    return {
        "manufacturer": v.get("sys_vendor"),
        "model": model,
        "model_version": model_version,
        "sku": v.get("product_sku"),
        "serial": v.get("product_serial") or v.get("chassis_serial"),
        "system_uuid": clean_uuid(v.get("product_uuid")),
        "chassis_type": chassis,
        "chassis_vendor": v.get("chassis_vendor"),
        "asset_tag": v.get("chassis_asset_tag"),
        "bios_vendor": v.get("bios_vendor"),
        "bios_version": v.get("bios_version"),
        "bios_date": v.get("bios_date"),
        "board_vendor": v.get("board_vendor"),
        "board_model": v.get("board_name"),
        "board_serial": v.get("board_serial"),
    }


def read_dmi(ctx: Context) -> dict[str, object]:
    """DMI facts from sysfs, or {} when the machine has no readable DMI there."""
    if ctx.list_dir(DMI_DIR) is None:
        return {}
    return dmi_facts({name: ctx.read_file(f"{DMI_DIR}/{name}") for name in DMI_FILES})


def read_dmidecode(ctx: Context) -> DmiStructures:
    """dmidecode's structures, or {} when it is missing, not allowed (it needs root) or finds no
    SMBIOS table (containers, most ARM boards: it then exits 1)."""
    if not ctx.has_command("dmidecode"):
        return {}
    if ctx.local and hasattr(os, "geteuid") and os.geteuid() != 0:
        return {}  # it would only say "Permission denied": spare the fork
    try:
        return parse_dmidecode(ctx.run(DMIDECODE, timeout=DMIDECODE_TIMEOUT))
    except CommandError:
        return {}


def merged_dmi(sysfs: dict[str, object], dmidecode: DmiStructures) -> dict[str, object]:
    """sysfs facts, completed by dmidecode's where sysfs said nothing (serials need root)."""
    facts = {name: sysfs.get(name) for name in DMI_ATTRIBUTES}
    if dmidecode:
        for name, value in computer_facts_from_dmidecode(dmidecode).items():
            if facts.get(name) is None:
                facts[name] = value
    return facts
