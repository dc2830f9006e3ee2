"""Printer-MIB (RFC 3805): serial number, page counter and supplies, plus the printer's model
from its hrDeviceTable row (type hrDevicePrinter).

Supply levels use the MIB's special values: -2 unknown, -3 "some remaining" (no measure), -1
other; they are reported as None with `level_state` saying which. The page counter is
prtMarkerLifeCount of marker 1 in the unit the printer declares (impressions or sheets, usually).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from discovery.snmp import mibs
from discovery.snmp.host_resources import HR_DEVICE_PRINTER, HrDevice
from discovery.snmp.values import Walk, clean_text, column, index_numbers, integer, table, text

SUPPLY_TYPES = {1: "other", 2: "unknown", 3: "toner", 4: "wasteToner", 5: "ink", 6: "inkCartridge",
                7: "inkRibbon", 8: "wasteInk", 9: "opc", 10: "developer", 11: "fuserOil", 12: "solidWax",
                13: "ribbonWax", 14: "wasteWax", 15: "fuser", 16: "coronaWire", 17: "fuserOilWick",
                18: "cleanerUnit", 19: "fuserCleaningPad", 20: "transferUnit", 21: "tonerCartridge",
                22: "fuserOiler", 23: "water", 24: "wasteWater", 25: "glueWaterAdditive", 26: "wastePaper",
                27: "bindingSupply", 28: "bandingSupply", 29: "stitchingWire", 30: "shrinkWrap",
                31: "paperWrap", 32: "staples", 33: "inserts", 34: "covers"}
COUNTER_UNITS = {3: "tenThousandthsOfInches", 4: "micrometers", 5: "characters", 6: "lines", 7: "impressions",
                 8: "sheets", 9: "dotRow", 11: "hours", 16: "feet", 17: "meters"}
SPECIAL_LEVELS = {-1: "other", -2: "unknown", -3: "some remaining"}
HR_PRINTER_STATUS = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}


@dataclass(frozen=True)
class Supply:
    index: str
    description: str | None
    type: str | None
    level: int | None
    max_capacity: int | None
    level_state: str | None = None

    @property
    def percent(self) -> int | None:
        if self.level is None or not self.max_capacity or self.max_capacity <= 0:
            return None
        return max(0, min(100, round(100 * self.level / self.max_capacity)))


@dataclass
class PrinterInfo:
    model: str | None = None
    serial: str | None = None
    page_count: int | None = None
    page_count_unit: str | None = None
    status: str | None = None
    supplies: list[Supply] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.serial or self.page_count is not None or self.supplies or self.model)


def _first(values: dict[str, object]) -> object:
    return values[min(values, key=lambda i: index_numbers(i) or (1 << 31,))] if values else None


def parse_printer(walk: Walk, devices: list[HrDevice]) -> PrinterInfo:
    printer_device = next((d for d in devices if d.type == HR_DEVICE_PRINTER), None)
    info = PrinterInfo(
        model=clean_text(printer_device.descr.encode()) if printer_device and printer_device.descr else None,
        serial=clean_text(_first(column(walk, mibs.PRT_GENERAL_SERIAL))),  # type: ignore[arg-type]
        page_count=integer(_first(column(walk, mibs.PRT_MARKER_LIFE_COUNT))),  # type: ignore[arg-type]
        page_count_unit=COUNTER_UNITS.get(integer(_first(column(walk, mibs.PRT_MARKER_COUNTER_UNIT))) or 0),  # type: ignore[arg-type]
        status=HR_PRINTER_STATUS.get(integer(_first(column(walk, mibs.HR_PRINTER_STATUS))) or 0),  # type: ignore[arg-type]
    )
    for index, row in sorted(table(walk, mibs.PRT_SUPPLIES_ENTRY, mibs.PRT_SUPPLIES_COLUMNS).items(),
                             key=lambda item: index_numbers(item[0]) or ()):
        level, capacity = integer(row.get("level")), integer(row.get("max_capacity"))
        info.supplies.append(Supply(
            index=index, description=text(row.get("descr")),
            type=SUPPLY_TYPES.get(integer(row.get("type")) or 0),
            level=level if level is not None and level >= 0 else None,
            max_capacity=capacity if capacity is not None and capacity > 0 else None,
            level_state=SPECIAL_LEVELS.get(level) if level is not None and level < 0 else None,
        ))
    return info
