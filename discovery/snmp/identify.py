"""Device identification: sysObjectID -> IANA enterprise -> vendor; rules (data/device_rules.toml)
-> device type, OS, version, model; ENTITY-MIB (or a vendor chassis table) -> model, serial,
firmware. Rules are data, so a new device family is a new `[[rule]]`, tested on the recordings.

What wins where several sources say something:
- vendor: the rule's `vendor`, else the enterprise's vendor, else the chassis manufacturer.
- model: the chassis model name, else the rule's model pattern in sysDescr.
- serial: the chassis serial, else the rule's serial pattern in sysDescr (APC cards put it there).
- CI class: Printer for printers, Computer for servers and workstations (HOST-RESOURCES
  hosts that the agent would report too), NetworkDevice for everything else.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from discovery.snmp.entity import PhysicalEntity, main_chassis
from discovery.snmp.system import SystemInfo

DATA = Path(__file__).with_name("data")
DEVICE_TYPES = ("switch", "router", "firewall", "printer", "ups", "pdu", "server", "workstation", "storage",
                "ap", "wireless-controller", "management-controller", "camera", "sensor", "media-converter",
                "appliance")
TRAITS = ("host_resources", "bridge", "printer", "stack_units")
COMPUTER_TYPES = {"server", "workstation"}


class RuleError(ValueError):
    """A rule file entry that cannot work (unknown key, bad pattern, unknown type)."""


@dataclass(frozen=True)
class Enterprise:
    number: int
    organization: str
    vendor: str | None


@dataclass(frozen=True)
class DeviceRule:
    id: str
    object_id: tuple[str, ...] = ()
    descr: re.Pattern[str] | None = None
    when: frozenset[str] = frozenset()
    type: str | None = None
    os: str | None = None
    vendor: str | None = None
    version: re.Pattern[str] | None = None
    model: re.Pattern[str] | None = None
    serial: re.Pattern[str] | None = None

    def matches(self, system: SystemInfo, traits: frozenset[str]) -> bool:
        oid = system.object_id or ""
        if self.object_id and not any(oid == p or oid.startswith(p + ".") for p in self.object_id):
            return False
        if self.descr is not None and not self.descr.search(system.descr or ""):
            return False
        return self.when <= traits


@dataclass(frozen=True)
class Identity:
    vendor: str | None = None
    enterprise_number: int | None = None
    enterprise: str | None = None
    device_type: str | None = None
    os: str | None = None
    os_version: str | None = None
    model: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    firmware: str | None = None
    software_version: str | None = None
    hardware_revision: str | None = None
    rule: str | None = None
    ci_class: str = "NetworkDevice"
    notes: tuple[str, ...] = field(default=())


def load_enterprises(path: Path = DATA / "enterprises.tsv") -> dict[int, Enterprise]:
    table = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 4 or not columns[0].isdigit():
            raise RuleError(f"{path.name} line {number}: expected 4 tab-separated columns starting with a number")
        table[int(columns[0])] = Enterprise(int(columns[0]), columns[1], columns[2] or None)
    return table


def _pattern(rule_id: str, key: str, value: object) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RuleError(f"rule {rule_id}: {key} must be a string")
    try:
        return re.compile(value, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise RuleError(f"rule {rule_id}: {key} is not a valid regular expression: {exc}") from None


_RULE_KEYS = {"id", "object_id", "descr", "when", "type", "os", "vendor", "version", "model", "serial"}


def parse_rules(document: dict) -> tuple[DeviceRule, ...]:
    rules = []
    for position, entry in enumerate(document.get("rule", []), 1):
        rule_id = str(entry.get("id") or f"#{position}")
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise RuleError(f"rule {rule_id}: unknown key(s) {', '.join(sorted(unknown))}")
        if entry.get("type") is not None and entry["type"] not in DEVICE_TYPES:
            raise RuleError(f"rule {rule_id}: type {entry['type']!r} is not one of {', '.join(DEVICE_TYPES)}")
        when = frozenset(entry.get("when", ()))
        if when - set(TRAITS):
            raise RuleError(f"rule {rule_id}: unknown trait(s) {', '.join(sorted(when - set(TRAITS)))}")
        if not (entry.get("object_id") or entry.get("descr") or when):
            raise RuleError(f"rule {rule_id}: a rule needs object_id, descr or when")
        rules.append(DeviceRule(
            id=rule_id, object_id=tuple(entry.get("object_id", ())), descr=_pattern(rule_id, "descr", entry.get("descr")),
            when=when, type=entry.get("type"), os=entry.get("os"), vendor=entry.get("vendor"),
            version=_pattern(rule_id, "version", entry.get("version")),
            model=_pattern(rule_id, "model", entry.get("model")), serial=_pattern(rule_id, "serial", entry.get("serial")),
        ))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RuleError(f"rule ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return tuple(rules)


@lru_cache(maxsize=1)
def default_rules() -> tuple[DeviceRule, ...]:
    with open(DATA / "device_rules.toml", "rb") as handle:
        return parse_rules(tomllib.load(handle))


@lru_cache(maxsize=1)
def default_enterprises() -> dict[int, Enterprise]:
    return load_enterprises()


def _group(pattern: re.Pattern[str] | None, text: str | None) -> str | None:
    if pattern is None or not text:
        return None
    match = pattern.search(text)
    if match is None:
        return None
    value = next((g for g in match.groups() if g), None) if match.groups() else match.group(0)
    return value.strip() if value and value.strip() else None


def identify(system: SystemInfo, entities: list[PhysicalEntity] = (), traits: frozenset[str] = frozenset(),  # type: ignore[assignment]
             rules: tuple[DeviceRule, ...] | None = None,
             enterprises: dict[int, Enterprise] | None = None) -> Identity:
    rules = default_rules() if rules is None else rules
    enterprises = default_enterprises() if enterprises is None else enterprises
    number = system.enterprise_number
    enterprise = enterprises.get(number) if number is not None else None
    rule = next((r for r in rules if r.matches(system, traits)), None)
    chassis = main_chassis(list(entities))
    notes = []
    if number is not None and enterprise is None:
        notes.append(f"enterprise {number} is not in data/enterprises.tsv")
    vendor = (rule.vendor if rule else None) or (enterprise.vendor if enterprise else None) \
        or (chassis.manufacturer if chassis else None)
    device_type = rule.type if rule else None
    model = (chassis.model if chassis else None) or _group(rule.model if rule else None, system.descr)
    if model is None and chassis and chassis.descr and chassis.physical_class == "chassis" and rule is None:
        model = chassis.descr
    ci_class = "Printer" if device_type == "printer" else "Computer" if device_type in COMPUTER_TYPES \
        else "NetworkDevice"
    return Identity(
        vendor=vendor, enterprise_number=number, enterprise=enterprise.organization if enterprise else None,
        device_type=device_type, os=rule.os if rule else None,
        os_version=_group(rule.version if rule else None, system.descr),
        model=model, serial=(chassis.serial if chassis else None) or _group(rule.serial if rule else None, system.descr),
        manufacturer=chassis.manufacturer if chassis else None,
        firmware=chassis.firmware_rev if chassis else None,
        software_version=chassis.software_rev if chassis else None,
        hardware_revision=chassis.hardware_rev if chassis else None,
        rule=rule.id if rule else None, ci_class=ci_class, notes=tuple(notes),
    )
