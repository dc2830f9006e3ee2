"""From a network device's parsed answers to a report: a NetworkDevice with its modules
(HardwareModule, HAS_COMPONENT), interfaces (Interface, HAS_INTERFACE; IPAddress, HAS_IP) and
LLDP/CDP neighbours.

A neighbour is a CI this device does not own: it becomes a *reference* item (`Item.reference`,
see cmdb/report.py) related to the local Interface by CONNECTED_TO. With a management address
the reference is that IPAddress (reconcile resolves it to the host holding the address); with
only a MAC chassis id it is a NetworkDevice identified by chassis_mac. The neighbour's name,
port and platform travel as the relation's attributes.

Identifiers: the chassis serial, the chassis MAC, and `sysname_ip` spelled
"<hostname, lower case>@<scanned address>" (weak: it matches only when unique).
Pure: the caller fetched the text (discovery/ssh/scanner.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from agent.builder import ContributionError, ReportGraph
from agent.collectors.base import Contribution
from cmdb.junk import clean, clean_mac
from cmdb.report import CollectorStatus, Report
from discovery.base import build_report
from discovery.ssh.netdev.model import DeviceFacts, DeviceInterface, Module, Neighbor
from discovery.ssh.netdev.platforms import Platform

DEVICE_REF = "device"
# Device text longer than this is cut: no real serial, model or description comes close, and the
# wire format refuses strings past 64 KiB (a hostile device must cost one field, not the report).
MAX_VALUE_CHARS = 1024
# Part numbers and serials Junos prints for parts soldered on the board, and dash fillers.
_NOT_A_SERIAL = {"builtin", "non-jnpr"}
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]+")
# Abbreviations in LLDP/CDP "local interface" columns, longest first.
_INTERFACE_PREFIXES = (
    ("TwentyFiveGigE", "TwentyFiveGigE"), ("Twe", "TwentyFiveGigE"), ("Tw", "TwoGigabitEthernet"),
    ("Te", "TenGigabitEthernet"), ("Gi", "GigabitEthernet"), ("Fa", "FastEthernet"), ("Fo", "FortyGigabitEthernet"),
    ("Hu", "HundredGigE"), ("Po", "Port-channel"), ("Eth", "Ethernet"), ("Et", "Ethernet"), ("Vl", "Vlan"),
    ("Lo", "Loopback"), ("Mgmt", "mgmt"),
)


@dataclass
class SectionOutput:
    """What one command gave: its text, or why there is none."""

    text: str | None = None
    status: str = "ok"  # ok | failed | not_applicable
    reason: str | None = None
    duration_ms: float | None = None


@dataclass
class _Parsed:
    facts: DeviceFacts
    modules: list[Module] = field(default_factory=list)
    interfaces: list[DeviceInterface] = field(default_factory=list)
    neighbors: dict[str, list[Neighbor]] = field(default_factory=dict)


def _ref(prefix: str, name: str) -> str:
    return f"{prefix}:{_REF_UNSAFE.sub('_', name)}"[:128]


def _serial(text: str | None) -> str | None:
    value = clean(text)
    return None if value is None or value.lower() in _NOT_A_SERIAL else value


def canonical_interface(name: str, known: dict[str, str]) -> str:
    """The full interface name for an abbreviated one ("Gi1/0/2" -> "GigabitEthernet1/0/2"),
    preferring a name the device listed (`known`: lower-case name -> name)."""
    if name.lower() in known:
        return known[name.lower()]
    match = re.match(r"^([A-Za-z-]+)\s*(\d.*)$", name)
    if not match:
        return name
    letters, rest = match.groups()
    for full in known.values():  # an interface the device listed whose name starts the same way
        found = re.match(r"^([A-Za-z-]+)(\d.*)$", full)
        if found and found.group(2) == rest and found.group(1).lower().startswith(letters.lower()):
            return full
    for short, full in _INTERFACE_PREFIXES:
        if letters.lower() == short.lower():
            return full + rest
    return name


def _device_item(out: Contribution, platform: Platform, facts: DeviceFacts, modules: list[Module],
                 address: str) -> dict[str, Any]:
    chassis = next((m for m in modules if "chassis" in m.name.lower()), modules[0] if modules else None)
    model = clean((chassis.model if chassis else None) or facts.model or (chassis.description if chassis else None))
    serial = _serial(facts.serial) or _serial(chassis.serial if chassis else None)
    version = clean(re.sub(r"\s*\[.*\]\s*$", "", facts.os_version)) if facts.os_version else None
    os_name = facts.extra.get("os_name", platform.os_name)
    hostname = clean(facts.hostname)
    attributes: dict[str, Any] = {
        "hostname": hostname, "vendor": platform.vendor, "model": model, "serial": serial,
        "os_name": os_name, "os_version": version,
        "firmware": version,  # the attribute drift tracks on network devices (cmdb.config)
        "platform": platform.name, "management_address": address,
        "hardware_version": clean(facts.hardware_version), "image": clean(facts.image),
        "stack_serials": [s for s in map(_serial, facts.member_serials) if s],
        "stack_models": [m for m in map(clean, facts.member_models) if m],
    }
    for key, found in sorted(facts.extra.items()):
        if key != "os_name":
            attributes.setdefault(key, clean(found))
    identifiers = {
        "serial": serial,
        "chassis_mac": clean_mac(facts.chassis_mac),
        "sysname_ip": f"{hostname.lower()}@{address}" if hostname else None,
    }
    out.add("NetworkDevice", DEVICE_REF, identifiers, attributes)
    return {"type": "network_device", "vendor": platform.vendor, "model": model, "serial": serial,
            "hostname": hostname, "os": " ".join(x for x in (os_name, version) if x), "platform": platform.name}


def _module_items(out: Contribution, modules: list[Module]) -> None:
    seen: set[tuple[str, str | None, str | None]] = set()
    slots: dict[str, int] = {}
    for module in modules:
        serial = _serial(module.serial)
        key = (module.name, serial, module.model)
        if key in seen:  # the same part listed twice (IOS prints some modules once per port)
            continue
        seen.add(key)
        slots[module.name] = slots.get(module.name, 0) + 1
        slot = module.name if slots[module.name] == 1 else f"{module.name} ({slots[module.name]})"
        ref = _ref("module", slot)
        out.add("HardwareModule", ref, {"slot": slot, "serial": serial}, {
            "name": module.name, "description": clean(module.description), "model": clean(module.model),
            "hardware_version": clean(module.hardware_version), "serial": serial, "vendor": clean(module.vendor),
            "parent": module.parent,
        })
        out.relate(DEVICE_REF, "HAS_COMPONENT", ref)


def _interface_items(out: Contribution, interfaces: list[DeviceInterface]) -> None:
    for iface in interfaces:
        ref = _ref("if", iface.name)
        status = (iface.link_status or "").lower()
        out.add("Interface", ref, {"name": iface.name}, {
            "name": iface.name, "mac": clean_mac(iface.mac), "permanent_mac": clean_mac(iface.burned_in_mac),
            "description": clean(iface.description), "mtu": iface.mtu, "type": clean(iface.hardware_type),
            "admin_up": None if not status else status != "administratively down",
            "operstate": "up" if status == "up" else ("down" if status else None),
            "line_protocol": clean(iface.protocol_status), "bandwidth_kbit": iface.bandwidth_kbit,
        })
        out.relate(DEVICE_REF, "HAS_INTERFACE", ref)
        if iface.ip_address:
            ip_ref = _ref("ip", iface.ip_address)
            if ip_ref not in out.items:
                out.add("IPAddress", ip_ref, {"address": iface.ip_address}, {
                    "address": iface.ip_address, "prefix_length": iface.prefix_length, "family": "inet",
                    "interface": iface.name})
                out.relate(ref, "HAS_IP", ip_ref)


def _address(text: str | None) -> str | None:
    try:
        return ipaddress.ip_address((text or "").strip()).compressed if text else None
    except ValueError:
        return None


def _neighbor_items(out: Contribution, neighbors: list[Neighbor], known: dict[str, str]) -> None:
    for n in neighbors:
        # LLDP's chassis id may itself be an address (subtype "network address": phones, APs).
        address = _address(n.mgmt_address) or _address(n.chassis_id)
        mac = clean_mac(n.chassis_id) if n.chassis_id else None
        if address:
            target = out.add("IPAddress", _ref("neighbor", address), {"address": address}, reference=True)
        elif mac:
            target = out.add("NetworkDevice", _ref("neighbor", mac), {"chassis_mac": mac}, reference=True)
        else:
            continue  # nothing that could ever name the neighbour's CI
        local = DEVICE_REF
        if n.local_interface:
            name = canonical_interface(n.local_interface, known)
            local = _ref("if", name)
            if local not in out.items:
                out.add("Interface", local, {"name": name}, {"name": name})
                out.relate(DEVICE_REF, "HAS_INTERFACE", local)
        out.relate(local, "CONNECTED_TO", target, {
            "protocol": n.protocol, "neighbor_name": clean(n.name), "neighbor_port": clean(n.port_id),
            "neighbor_port_description": clean(n.port_description), "neighbor_platform": clean(n.platform),
            "neighbor_capabilities": clean(n.capabilities), "neighbor_chassis_id": clean(n.chassis_id),
        })


def _clipped(out: Contribution) -> Contribution:
    for item in out.items.values():
        for values in (item.identifiers, item.attributes):
            for key, found in values.items():
                if isinstance(found, str) and len(found) > MAX_VALUE_CHARS:
                    values[key] = found[:MAX_VALUE_CHARS]
                elif isinstance(found, list):
                    values[key] = [v[:MAX_VALUE_CHARS] if isinstance(v, str) else v for v in found][:256]
    for attrs in out.relation_attributes.values():
        for key, found in attrs.items():
            if isinstance(found, str):
                attrs[key] = found[:MAX_VALUE_CHARS]
    return out


def _merge(graph: ReportGraph, name: str, out: Contribution, statuses: dict[str, CollectorStatus]) -> None:
    """Add a section's items; a section the wire format would refuse fails alone, with why."""
    try:
        graph.merge(*graph.validated(name, _clipped(out)))
    except ContributionError as exc:
        statuses[name] = CollectorStatus(status="failed", reason=f"unusable answer: {exc}"[:2048])


def device_report(platform: Platform, address: str, source_id: str,
                  outputs: dict[str, SectionOutput]) -> tuple[Report, dict[str, Any]]:
    """The report of one device from its sections' outputs (`outputs[section name]`)."""
    statuses: dict[str, CollectorStatus] = {}
    parsed: dict[str, Any] = {}
    for section in platform.sections:
        output = outputs.get(section.name) or SectionOutput(status="failed", reason="not fetched")
        name = f"netdev.{section.name}"
        if output.status != "ok" or output.text is None:
            statuses[name] = CollectorStatus(status=output.status if output.status != "ok" else "failed",
                                             reason=output.reason, duration_ms=output.duration_ms)
            continue
        try:
            parsed[section.name] = section.parse(output.text)
        except Exception as exc:  # a parser bug must not cost the other sections
            statuses[name] = CollectorStatus(status="failed", reason=f"parse error: {type(exc).__name__}: {exc}"[:2048],
                                             duration_ms=output.duration_ms)
            continue
        statuses[name] = CollectorStatus(status="ok", duration_ms=output.duration_ms)

    facts = parsed.get(platform.facts.name) or DeviceFacts()
    modules = next((parsed[s.name] for s in platform.sections if s.kind == "modules" and s.name in parsed), [])
    graph = ReportGraph("unused")
    del graph.items["computer"]  # a device report has no Computer

    device = Contribution()
    summary = _device_item(device, platform, facts, modules, address)
    _merge(graph, f"netdev.{platform.facts.name}", device, statuses)
    if DEVICE_REF not in graph.items:
        return build_report("ssh", source_id, [], [], statuses), {k: v for k, v in summary.items() if v}
    known: dict[str, str] = {}
    for section in platform.sections[1:]:
        if section.name not in parsed:
            continue
        out = Contribution()
        if section.kind == "modules":
            _module_items(out, parsed[section.name])
        elif section.kind == "interfaces":
            _interface_items(out, parsed[section.name])
            known.update({i.name.lower(): i.name for i in parsed[section.name]})
        elif section.kind == "neighbors":
            _neighbor_items(out, parsed[section.name], known)
        # An interface both listed and named by a neighbour keeps its first collector (merge).
        _merge(graph, f"netdev.{section.name}", out, statuses)
    report = build_report("ssh", source_id, list(graph.items.values()), graph.relations, statuses)
    return report, {k: v for k, v in summary.items() if v}
