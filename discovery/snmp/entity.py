"""ENTITY-MIB entPhysicalTable (chassis, modules, power supplies, fans) and vendor chassis tables
for devices without ENTITY-MIB (Dell Force10 S-series stack units).

The device's own model, serial, manufacturer and firmware come from its chassis: the first row of
class chassis(3), or for a stack the lowest-indexed chassis. The other physical parts worth a CI
(modules, power supplies, fans, CPUs, other stack members) become components; ports, sensors and
containers (slots, bays) do not: interfaces already describe ports, and a slot is not a part.
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.snmp import mibs
from discovery.snmp.values import Walk, clean_text, index_numbers, integer, table, text

# PhysicalClass (ENTITY-MIB)
CLASS_NAMES = {1: "other", 2: "unknown", 3: "chassis", 4: "backplane", 5: "container", 6: "powerSupply",
               7: "fan", 8: "sensor", 9: "module", 10: "port", 11: "stack", 12: "cpu"}
CHASSIS = 3
COMPONENT_CLASSES = {3, 6, 7, 9, 12}


@dataclass(frozen=True)
class PhysicalEntity:
    index: int
    physical_class: str
    descr: str | None = None
    name: str | None = None
    hardware_rev: str | None = None
    firmware_rev: str | None = None
    software_rev: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    contained_in: int | None = None

    @property
    def worth_a_component(self) -> bool:
        """A part with something to say: a serial or a model, or a module at all."""
        return bool(self.serial or self.model or self.physical_class == "module")


def parse_entities(walk: Walk) -> list[PhysicalEntity]:
    records = []
    for index, row in table(walk, mibs.ENT_PHYSICAL_ENTRY, mibs.ENT_PHYSICAL_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 1:
            continue
        records.append(PhysicalEntity(
            index=numbers[0], physical_class=CLASS_NAMES.get(integer(row.get("class")) or 2, "unknown"),
            descr=text(row.get("descr")), name=text(row.get("name")),
            hardware_rev=clean_text(row.get("hardware_rev")), firmware_rev=clean_text(row.get("firmware_rev")),
            software_rev=clean_text(row.get("software_rev")), serial=clean_text(row.get("serial")),
            manufacturer=clean_text(row.get("manufacturer")), model=clean_text(row.get("model")),
            contained_in=integer(row.get("contained_in")),
        ))
    return sorted(records, key=lambda e: e.index)


def parse_stack_units(walk: Walk) -> list[PhysicalEntity]:
    """FORCE10-SMI chassisStackUnitTable rows as chassis entities (model, serial, firmware)."""
    records = []
    for index, row in table(walk, mibs.F10_STACK_UNIT_ENTRY, mibs.F10_STACK_UNIT_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 1:
            continue
        number = integer(row.get("number"))
        records.append(PhysicalEntity(
            index=numbers[0], physical_class="chassis", descr=text(row.get("descr")),
            name=str(number - 1) if number is not None else None,  # units are numbered from 0 on the CLI
            hardware_rev=clean_text(row.get("revision")), firmware_rev=clean_text(row.get("firmware")),
            serial=clean_text(row.get("serial")), manufacturer="Dell", model=clean_text(row.get("model")),
        ))
    return sorted(records, key=lambda e: e.index)


def main_chassis(entities: list[PhysicalEntity]) -> PhysicalEntity | None:
    """The chassis that speaks for the device: the first chassis row with a serial or a model
    (stack members follow the master), else the first chassis row."""
    chassis = [e for e in entities if e.physical_class == "chassis"]
    return next((e for e in chassis if e.serial or e.model), chassis[0] if chassis else None)
