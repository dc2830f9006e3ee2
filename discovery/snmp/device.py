"""Everything one walk says about a device, parsed: a pure function of `{oid: value}`.

`read_device(walk)` runs every parser and the identification, so tests can hand it a recorded
walk (.snmprec) and the scanner a live one, and both get the same `DeviceData`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from agent.collectors.services import SocketEntry
from discovery.snmp import mibs
from discovery.snmp.bridge import FdbEntry, bridge_address, parse_fdb
from discovery.snmp.entity import PhysicalEntity, parse_entities, parse_stack_units
from discovery.snmp.host_resources import (
    HrDevice,
    StorageArea,
    listeners,
    parse_devices,
    parse_memory_bytes,
    parse_storage,
    processes,
)
from discovery.snmp.identify import Identity, identify
from discovery.snmp.interfaces import SnmpInterface, parse_interfaces
from discovery.snmp.ip import ArpEntry, SnmpAddress, parse_addresses, parse_arp
from discovery.snmp.neighbours import Neighbour, parse_cdp, parse_lldp
from discovery.snmp.printer import PrinterInfo, parse_printer
from discovery.snmp.software import InstalledSoftware, parse_installed
from discovery.snmp.system import SystemInfo, parse_system
from discovery.snmp.values import Walk, mac_address


@dataclass
class DeviceData:
    system: SystemInfo
    identity: Identity
    interfaces: list[SnmpInterface] = field(default_factory=list)
    addresses: list[SnmpAddress] = field(default_factory=list)
    arp: list[ArpEntry] = field(default_factory=list)
    entities: list[PhysicalEntity] = field(default_factory=list)
    memory_bytes: int | None = None
    storage: list[StorageArea] = field(default_factory=list)
    hr_devices: list[HrDevice] = field(default_factory=list)
    software: InstalledSoftware = field(default_factory=InstalledSoftware)
    processes: dict[int, str] = field(default_factory=dict)
    sockets: list[SocketEntry] = field(default_factory=list)
    lldp_chassis_mac: str | None = None
    lldp: list[Neighbour] = field(default_factory=list)
    cdp: list[Neighbour] = field(default_factory=list)
    bridge_mac: str | None = None
    fdb: list[FdbEntry] = field(default_factory=list)
    printer: PrinterInfo = field(default_factory=PrinterInfo)
    # Which MIB groups answered at all (a group that did not is "not applicable" to the device).
    present: frozenset[str] = frozenset()


def _has(walk: Walk, *roots: str) -> bool:
    prefixes = tuple(root + "." for root in roots)
    return any(oid.startswith(prefixes) for oid in walk)


def groups_present(walk: Walk) -> frozenset[str]:
    found = set()
    if any(walk.get(oid) is not None for oid in mibs.SYSTEM_SCALARS):
        found.add("system")
    if _has(walk, mibs.IF_ENTRY):
        found.add("interfaces")
    if _has(walk, mibs.IP_AD_ENTRY, mibs.IP_ADDRESS_ENTRY):
        found.add("ip")
    if _has(walk, mibs.ENT_PHYSICAL_ENTRY, mibs.F10_STACK_UNIT_ENTRY):
        found.add("entity")
    if _has(walk, mibs.F10_STACK_UNIT_ENTRY):
        found.add("stack_units")
    if _has(walk, "1.3.6.1.2.1.25.2", mibs.HR_SW_RUN_ENTRY, mibs.HR_SW_INSTALLED_ENTRY):
        found.add("host_resources")
    if _has(walk, mibs.TCP_LISTENER_PROCESS, mibs.TCP_CONN_STATE, mibs.UDP_ENDPOINT_PROCESS, mibs.UDP_LOCAL_ADDRESS):
        found.add("services")
    if _has(walk, "1.0.8802.1.1.2.1"):
        found.add("lldp")
    if _has(walk, "1.3.6.1.4.1.9.9.23.1.3", mibs.CDP_CACHE_ENTRY):
        found.add("cdp")
    if _has(walk, "1.3.6.1.2.1.17.1.1", mibs.DOT1D_BASE_PORT_IF_INDEX, mibs.DOT1D_TP_FDB_ENTRY, mibs.DOT1Q_TP_FDB_ENTRY):
        found.add("bridge")
    if _has(walk, "1.3.6.1.2.1.43"):  # Printer-MIB; hrPrinterTable alone is a print server's queues
        found.add("printer")
    return frozenset(found)


def read_device(walk: Walk) -> DeviceData:
    system = parse_system(walk)
    present = groups_present(walk)
    interfaces = parse_interfaces(walk)
    entities = parse_entities(walk) or parse_stack_units(walk)
    hr_devices = parse_devices(walk)
    printer = parse_printer(walk, hr_devices)
    traits = frozenset(t for t in ("host_resources", "bridge", "stack_units") if t in present)
    if "printer" in present and printer.present:
        traits |= {"printer"}
    identity = identify(system, entities, traits)
    if identity.device_type == "printer":  # a printer names itself in hrDeviceTable and Printer-MIB
        identity = replace(identity, model=identity.model or printer.model, serial=identity.serial or printer.serial)
    return DeviceData(
        system=system, identity=identity,
        interfaces=interfaces, addresses=parse_addresses(walk), arp=parse_arp(walk), entities=entities,
        memory_bytes=parse_memory_bytes(walk), storage=parse_storage(walk), hr_devices=hr_devices,
        software=parse_installed(walk), processes=processes(walk), sockets=listeners(walk),
        lldp_chassis_mac=mac_address(walk.get(mibs.LLDP_LOC_CHASSIS_ID))
        if walk.get(mibs.LLDP_LOC_CHASSIS_ID_SUBTYPE) == 4 else None,
        lldp=parse_lldp(walk, interfaces), cdp=parse_cdp(walk, interfaces),
        bridge_mac=bridge_address(walk), fdb=parse_fdb(walk), printer=printer, present=present,
    )
