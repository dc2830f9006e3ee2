"""IP-MIB: the device's own addresses, and its ARP/neighbour cache.

Addresses come from ipAddressTable (RFC 4293, IPv4 and IPv6) when the agent has it, else from the
legacy ipAddrTable (IPv4). The ARP cache (ipNetToPhysicalTable, else ipNetToMediaTable) is not
an inventory of the device itself: report.py uses it to name the holder of a MAC seen in the
bridge forwarding table by its IP address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from discovery.snmp import mibs
from discovery.snmp.values import Walk, index_numbers, integer, ip_address, mac_address, oid_value, table

# ipAddressType: 1 unicast, 2 anycast, 3 broadcast; ipAddressStatus 1 preferred ... 7 duplicate.
_UNICAST = 1


@dataclass(frozen=True)
class SnmpAddress:
    address: str
    prefix_length: int | None
    family: int
    if_index: int | None


@dataclass(frozen=True)
class ArpEntry:
    if_index: int | None
    address: str
    mac: str


def _inet_from_index(numbers: tuple[int, ...]) -> tuple[str | None, int]:
    """(address, sub-identifiers used) of an InetAddressType.InetAddress index (type, length,
    bytes...); addresses with a zone (types 3, 4) lose the zone."""
    if len(numbers) < 2:
        return None, len(numbers)
    kind, length = numbers[0], numbers[1]
    raw = numbers[2:2 + length]
    if len(raw) != length or any(b > 255 for b in raw):
        return None, 2 + length
    if kind in (1, 3) and length >= 4:
        return ipaddress.IPv4Address(bytes(raw[:4])).compressed, 2 + length
    if kind in (2, 4) and length >= 16:
        return ipaddress.IPv6Address(bytes(raw[:16])).compressed, 2 + length
    return None, 2 + length


def _prefix_from_pointer(pointer: str | None) -> int | None:
    """ipAddressPrefix points at ipAddressPrefixOrigin.<ifIndex>.<type>.<len>.<addr>.<prefixlen>:
    the prefix length is its last sub-identifier. "0.0" means unknown."""
    if not pointer or pointer in ("0.0", "0"):
        return None
    last = pointer.rsplit(".", 1)[-1]
    return int(last) if last.isdigit() and int(last) <= 128 else None


def _mask_length(mask: object) -> int | None:
    text = ip_address(mask) if isinstance(mask, bytes) else None
    if text is None:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        return None  # a non-contiguous mask


def parse_addresses(walk: Walk) -> list[SnmpAddress]:
    found: dict[str, SnmpAddress] = {}
    for index, row in table(walk, mibs.IP_ADDRESS_ENTRY, mibs.IP_ADDRESS_COLUMNS).items():
        numbers = index_numbers(index)
        address, _ = _inet_from_index(numbers) if numbers else (None, 0)
        if address is None or integer(row.get("type")) not in (None, _UNICAST):
            continue
        found[address] = SnmpAddress(address, _prefix_from_pointer(oid_value(row.get("prefix"))),
                                     6 if ":" in address else 4, integer(row.get("if_index")))
    for index, row in table(walk, mibs.IP_AD_ENTRY, mibs.IP_AD_COLUMNS).items():
        # The row's index is the address; the ipAdEntAddr column may be missing or malformed.
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 4 or any(n > 255 for n in numbers):
            continue
        address = ipaddress.IPv4Address(bytes(numbers)).compressed
        if address in found:
            continue
        found[address] = SnmpAddress(address, _mask_length(row.get("netmask")), 4, integer(row.get("if_index")))
    return sorted(found.values(), key=lambda a: (a.family, ipaddress.ip_address(a.address)))


def parse_arp(walk: Walk) -> list[ArpEntry]:
    entries: dict[tuple[int | None, str], ArpEntry] = {}
    for index, row in table(walk, mibs.IP_NET_TO_PHYSICAL_ENTRY, mibs.IP_NET_TO_PHYSICAL_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) < 3 or integer(row.get("type")) == 2:  # 2: invalid
            continue
        address, _ = _inet_from_index(numbers[1:])
        mac = mac_address(row.get("phys_address"))
        if address and mac:
            entries[(numbers[0], address)] = ArpEntry(numbers[0], address, mac)
    for index, row in table(walk, mibs.IP_NET_TO_MEDIA_ENTRY, mibs.IP_NET_TO_MEDIA_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 5 or any(n > 255 for n in numbers[1:]) or integer(row.get("type")) == 2:
            continue
        address = ipaddress.IPv4Address(bytes(numbers[1:])).compressed
        mac = mac_address(row.get("phys_address"))
        if mac and (numbers[0], address) not in entries:
            entries[(numbers[0], address)] = ArpEntry(numbers[0], address, mac)
    return list(entries.values())
