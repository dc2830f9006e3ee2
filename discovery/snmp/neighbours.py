"""LLDP-MIB and CISCO-CDP-MIB neighbour tables: who is plugged into which local port.

Both give one `Neighbour` per remote device and local port: the remote chassis id (a MAC when
the subtype says so), its port, system name, description, platform and management addresses.
LLDP names the local port by lldpLocPortNum, which most agents set to the ifIndex and some do
not: `local_port` is resolved to an ifIndex through lldpLocPortTable (port id = ifName, ifDescr,
ifAlias or the interface MAC) before falling back to the number itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from discovery.snmp import mibs
from discovery.snmp.interfaces import SnmpInterface
from discovery.snmp.values import (
    Walk,
    clean_text,
    column,
    index_numbers,
    integer,
    ip_address,
    mac_address,
    table,
    text,
)

# LldpChassisIdSubtype / LldpPortIdSubtype
CHASSIS_MAC = 4
CHASSIS_NETWORK_ADDRESS = 5
PORT_MAC = 3
PORT_NETWORK_ADDRESS = 4
LLDP_CAPABILITIES = ("other", "repeater", "bridge", "wlanAccessPoint", "router", "telephone", "docsisCableDevice",
                     "stationOnly")
CDP_CAPABILITIES = ("router", "transparentBridge", "sourceRouteBridge", "switch", "host", "igmp", "repeater")


@dataclass(frozen=True)
class Neighbour:
    protocol: str  # lldp or cdp
    local_if_index: int | None
    local_port: str | None  # the local port as the protocol names it
    chassis_id: str | None = None
    chassis_mac: str | None = None
    port_id: str | None = None
    port_descr: str | None = None
    sys_name: str | None = None
    sys_descr: str | None = None
    platform: str | None = None
    management_addresses: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = field(default=())


def _id_text(subtype: int | None, raw: object, mac_subtype: int, address_subtype: int) -> tuple[str | None, str | None]:
    """(printable id, MAC when the id is one) of an LLDP chassis or port id."""
    if subtype == mac_subtype:
        mac = mac_address(raw)
        return mac, mac
    if subtype == address_subtype and isinstance(raw, bytes) and len(raw) in (5, 17):
        return ip_address(raw[1:]), None  # first octet: the IANA address family
    value = text(raw)
    if value and not value.isprintable() and isinstance(raw, bytes):
        value = raw.hex(":")
    return value, None


def _bits(value: object, names: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, bytes):
        return ()
    number = int.from_bytes(value[:2].ljust(2, b"\0"), "big")
    return tuple(name for i, name in enumerate(names) if number & (0x8000 >> i))


def local_port_map(walk: Walk, interfaces: list[SnmpInterface]) -> dict[int, int]:
    """{lldpLocPortNum: ifIndex}: by the port id naming an interface, else by equal numbers."""
    by_name: dict[str, int] = {}
    for iface in interfaces:
        for key in (iface.name, iface.descr, iface.alias, iface.mac):
            if key:
                by_name.setdefault(key.lower(), iface.index)
    indexes = {iface.index for iface in interfaces}
    mapping = {}
    for index, row in table(walk, mibs.LLDP_LOC_PORT_ENTRY, mibs.LLDP_LOC_PORT_COLUMNS).items():
        if not index.isdigit():
            continue
        port_num = int(index)
        port_id, _ = _id_text(integer(row.get("id_subtype")), row.get("id"), PORT_MAC, PORT_NETWORK_ADDRESS)
        for key in (port_id, text(row.get("desc"))):
            if key and key.lower() in by_name:
                mapping[port_num] = by_name[key.lower()]
                break
        else:
            if port_num in indexes:
                mapping[port_num] = port_num
    return mapping


def _lldp_management_addresses(walk: Walk) -> dict[tuple[int, int], list[str]]:
    """{(local port, remote index): addresses} from lldpRemManAddrTable's index
    (timeMark.localPort.remIndex.addrSubtype.addrLen.addr...)."""
    found: dict[tuple[int, int], list[str]] = {}
    for index in column(walk, mibs.LLDP_REM_MAN_ADDR_IF_SUBTYPE):
        numbers = index_numbers(index)
        if not numbers or len(numbers) < 6:
            continue
        _, port, rem, family, length = numbers[:5]
        raw = numbers[5:5 + length]
        if len(raw) != length or any(b > 255 for b in raw):
            continue
        try:
            address = ipaddress.ip_address(bytes(raw)).compressed if family in (1, 2) else None
        except ValueError:
            address = None
        if address:
            found.setdefault((port, rem), []).append(address)
    return found


def parse_lldp(walk: Walk, interfaces: list[SnmpInterface]) -> list[Neighbour]:
    ports = local_port_map(walk, interfaces)
    addresses = _lldp_management_addresses(walk)
    names = {i.index: i.name for i in interfaces}
    neighbours = []
    for index, row in table(walk, mibs.LLDP_REM_ENTRY, mibs.LLDP_REM_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 3:
            continue
        _, port, rem = numbers
        chassis, chassis_mac = _id_text(integer(row.get("chassis_id_subtype")), row.get("chassis_id"),
                                        CHASSIS_MAC, CHASSIS_NETWORK_ADDRESS)
        port_id, _ = _id_text(integer(row.get("port_id_subtype")), row.get("port_id"), PORT_MAC, PORT_NETWORK_ADDRESS)
        if_index = ports.get(port, port if port in names else None)
        neighbours.append(Neighbour(
            protocol="lldp", local_if_index=if_index, local_port=names.get(if_index) if if_index else str(port),
            chassis_id=chassis, chassis_mac=chassis_mac, port_id=port_id, port_descr=text(row.get("port_desc")),
            sys_name=clean_text(row.get("sys_name")), sys_descr=text(row.get("sys_desc")),
            management_addresses=tuple(dict.fromkeys(addresses.get((port, rem), []))),
            capabilities=_bits(row.get("capabilities"), LLDP_CAPABILITIES),
        ))
    return sorted(neighbours, key=lambda n: (n.local_if_index or 0, n.chassis_id or "", n.port_id or ""))


def parse_cdp(walk: Walk, interfaces: list[SnmpInterface]) -> list[Neighbour]:
    names = {i.index: i.name for i in interfaces}
    neighbours = []
    for index, row in table(walk, mibs.CDP_CACHE_ENTRY, mibs.CDP_CACHE_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 2:
            continue
        if_index = numbers[0]
        address = ip_address(row.get("address")) if integer(row.get("address_type")) in (1, None) else None
        caps = row.get("capabilities")
        cap_bits = int.from_bytes(caps[-4:], "big") if isinstance(caps, bytes) and caps else 0
        neighbours.append(Neighbour(
            protocol="cdp", local_if_index=if_index, local_port=names.get(if_index, str(if_index)),
            chassis_id=clean_text(row.get("device_id")), port_id=text(row.get("device_port")),
            sys_name=clean_text(row.get("device_id")), sys_descr=text(row.get("version")),
            platform=clean_text(row.get("platform")), management_addresses=(address,) if address else (),
            capabilities=tuple(name for i, name in enumerate(CDP_CAPABILITIES) if cap_bits & (1 << i)),
        ))
    return sorted(neighbours, key=lambda n: (n.local_if_index or 0, n.chassis_id or ""))
