"""IF-MIB ifTable + ifXTable: one record per ifIndex.

The interface's name (its identifier in the CMDB) is ifName when the agent has it, else ifDescr:
net-snmp on Linux answers the kernel name ("eth0") in both, so a Linux host scanned by SNMP names
its interfaces like the agent does. Names an agent repeats on two rows get " #<ifIndex>" so that
every row stays its own Interface.
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.snmp import mibs
from discovery.snmp.values import Walk, index_numbers, integer, mac_address, table, text

# IANAifType names of the common types (IANAifType-MIB).
IF_TYPES = {1: "other", 6: "ethernetCsmacd", 23: "ppp", 24: "softwareLoopback", 53: "propVirtual",
            71: "ieee80211", 117: "gigabitEthernet", 131: "tunnel", 135: "l2vlan", 136: "l3ipvlan",
            142: "ipForward", 161: "ieee8023adLag", 209: "bridge", 56: "fibreChannel", 62: "fastEther",
            69: "fastEtherFX", 166: "mpls", 150: "mplsTunnel", 37: "atm", 32: "frameRelay", 18: "ds1",
            22: "propPointToPointSerial", 244: "wwanPP2"}
OPER_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notpresent",
               7: "lowerlayerdown"}


@dataclass(frozen=True)
class SnmpInterface:
    index: int
    name: str
    descr: str | None = None
    alias: str | None = None
    type: int | None = None
    mtu: int | None = None
    speed_bps: int | None = None
    mac: str | None = None
    admin_up: bool | None = None
    oper_status: str | None = None

    @property
    def type_name(self) -> str | None:
        return IF_TYPES.get(self.type, f"iftype{self.type}") if self.type is not None else None


def _speed(row: dict) -> int | None:
    high = integer(row.get("high_speed"))
    low = integer(row.get("speed"))
    if high and (low is None or low >= 4_294_967_295 or high * 1_000_000 > low):
        return high * 1_000_000  # ifSpeed saturates at 4.29 Gb/s; ifHighSpeed is in Mb/s
    return low or None


def parse_interfaces(walk: Walk) -> list[SnmpInterface]:
    rows = table(walk, mibs.IF_ENTRY, mibs.IF_COLUMNS)
    for index, row in table(walk, mibs.IFX_ENTRY, mibs.IFX_COLUMNS).items():
        if index in rows:  # ifXTable extends ifTable rows; it never adds interfaces of its own
            rows[index].update(row)
    records = []
    for index, row in rows.items():
        numbers = index_numbers(index)
        if numbers is None or len(numbers) != 1:
            continue
        if_index = numbers[0]
        name = text(row.get("name")) or text(row.get("descr")) or f"ifIndex {if_index}"
        admin = integer(row.get("admin_status"))
        records.append(SnmpInterface(
            index=if_index, name=name, descr=text(row.get("descr")), alias=text(row.get("alias")),
            type=integer(row.get("type")), mtu=integer(row.get("mtu")) or None, speed_bps=_speed(row),
            mac=mac_address(row.get("phys_address")),
            admin_up={1: True, 2: False}.get(admin) if admin is not None else None,
            oper_status=OPER_STATUS.get(integer(row.get("oper_status")) or 0),
        ))
    records.sort(key=lambda r: r.index)
    seen: dict[str, int] = {}
    for record in records:
        seen[record.name] = seen.get(record.name, 0) + 1
    return [r if seen[r.name] == 1 else SnmpInterface(**{**r.__dict__, "name": f"{r.name} #{r.index}"})
            for r in records]
