"""BRIDGE-MIB / Q-BRIDGE-MIB forwarding databases: which MAC was learned behind which port.

Only `learned` entries count (status 3): `self` entries are the switch's own addresses, `mgmt`
ones are static configuration. Bridge ports map to interfaces through dot1dBasePortIfIndex.
Q-BRIDGE entries (per VLAN) are read when present, else the VLAN-unaware dot1dTpFdbTable.
Cisco IOS keeps a forwarding table per VLAN behind community@vlan indexing, which a single
community walk does not see; those switches report their neighbours through CDP/LLDP instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.snmp import mibs
from discovery.snmp.values import Walk, column, index_numbers, integer, mac_address, table

LEARNED = 3


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    if_index: int | None
    bridge_port: int
    vlan: int | None = None


def bridge_address(walk: Walk) -> str | None:
    return mac_address(walk.get(mibs.DOT1D_BASE_BRIDGE_ADDRESS))


def _mac_from_index(numbers: tuple[int, ...]) -> str | None:
    if len(numbers) != 6 or any(n > 255 for n in numbers):
        return None
    return mac_address(bytes(numbers))


def parse_fdb(walk: Walk) -> list[FdbEntry]:
    ports = {int(i): integer(v) for i, v in column(walk, mibs.DOT1D_BASE_PORT_IF_INDEX).items() if i.isdigit()}
    entries: dict[tuple[str, int | None], FdbEntry] = {}
    for index, row in table(walk, mibs.DOT1Q_TP_FDB_ENTRY, mibs.DOT1Q_TP_FDB_COLUMNS).items():
        numbers = index_numbers(index)
        port = integer(row.get("port"))
        if not numbers or len(numbers) != 7 or not port or integer(row.get("status")) not in (None, LEARNED):
            continue
        mac = _mac_from_index(numbers[1:])
        if mac:
            entries[(mac, numbers[0])] = FdbEntry(mac, ports.get(port), port, numbers[0])
    if not entries:
        for index, row in table(walk, mibs.DOT1D_TP_FDB_ENTRY, mibs.DOT1D_TP_FDB_COLUMNS).items():
            numbers = index_numbers(index)
            port = integer(row.get("port"))
            if not numbers or not port or integer(row.get("status")) not in (None, LEARNED):
                continue
            mac = _mac_from_index(numbers)
            if mac:
                entries[(mac, None)] = FdbEntry(mac, ports.get(port), port)
    return sorted(entries.values(), key=lambda e: (e.if_index or 0, e.mac, e.vlan or 0))
