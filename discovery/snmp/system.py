"""The SNMPv2-MIB system group: who the device says it is."""

from __future__ import annotations

from dataclasses import dataclass

from discovery.snmp import mibs
from discovery.snmp.values import Walk, clean_text, integer, oid_value, text


@dataclass(frozen=True)
class SystemInfo:
    descr: str | None = None
    object_id: str | None = None
    uptime_ticks: int | None = None
    contact: str | None = None
    name: str | None = None
    location: str | None = None
    services: int | None = None

    @property
    def present(self) -> bool:
        return bool(self.descr or self.object_id or self.name)

    @property
    def enterprise_number(self) -> int | None:
        """N of a sysObjectID under 1.3.6.1.4.1.N (the IANA private enterprise number)."""
        prefix = "1.3.6.1.4.1."
        if self.object_id and self.object_id.startswith(prefix):
            head = self.object_id[len(prefix):].split(".", 1)[0]
            return int(head) if head.isdigit() else None
        return None


def parse_system(walk: Walk) -> SystemInfo:
    descr = text(walk.get(mibs.SYS_DESCR))
    return SystemInfo(
        # sysDescr keeps its line breaks (Cisco, Huawei send several lines); only edges are cut.
        descr=descr.replace("\r\n", "\n") if descr else None,
        object_id=oid_value(walk.get(mibs.SYS_OBJECT_ID)),
        uptime_ticks=integer(walk.get(mibs.SYS_UPTIME)),
        contact=clean_text(walk.get(mibs.SYS_CONTACT)),
        name=clean_text(walk.get(mibs.SYS_NAME)),
        location=clean_text(walk.get(mibs.SYS_LOCATION)),
        services=integer(walk.get(mibs.SYS_SERVICES)),
    )
