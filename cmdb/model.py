"""CI classes and relationship types, declared once.

Every other module reads these tables; adding a class or a relationship type is one line here.
A *dependent* class (Interface, IPAddress, SoftwareInstall, ...) is identified in the context of
its host, the way ServiceNow's IRE treats dependent CIs: its identifier values are only unique
together with the CI it hangs off, which reconcile finds through the relation named in `scope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Propagation = Literal["to_from", "from_to", "both", "none"]


@dataclass(frozen=True, slots=True)
class RelType:
    name: str
    description: str
    # How the failure of one end impacts the other. "to_from": if `to` fails, `from` is impacted
    # (A DEPENDS_ON B: B down, A impacted). "from_to": the reverse. "both": either way.
    impact: Propagation


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a dependent CI hangs: the relation type and which end of it the dependent CI is."""

    rel_type: str
    dependent_end: Literal["from", "to"]


@dataclass(frozen=True, slots=True)
class CIClass:
    name: str
    description: str
    # Identifier kinds in order of strength, strongest first (reconcile rules may refine this).
    identifier_kinds: tuple[str, ...]
    scope: tuple[Scope, ...] = ()
    # Readings, not configuration (free space, ...): kept as current values with provenance, but
    # a new reading is not a change — no history row, no drift, no delta report of its own.
    measurements: frozenset[str] = frozenset()

    @property
    def is_dependent(self) -> bool:
        return bool(self.scope)


REL_TYPES: dict[str, RelType] = {
    r.name: r
    for r in (
        RelType("RUNS_ON", "an OS, VM or service runs on a host", "to_from"),
        RelType("INSTALLED_ON", "a software install is installed on a host", "to_from"),
        RelType("INSTANCE_OF", "a software install is an instance of a software product", "none"),
        RelType("HAS_INTERFACE", "a host or device has a network interface", "from_to"),
        RelType("HAS_IP", "an interface or host holds an IP address", "from_to"),
        RelType("HAS_DISK", "a host has a disk", "from_to"),
        RelType("HAS_FILESYSTEM", "a host has a mounted file system", "from_to"),
        RelType("HAS_COMPONENT", "a host has a hardware component (memory module, CPU, PSU)", "from_to"),
        RelType("DEPENDS_ON", "a CI needs another to work", "to_from"),
        RelType("CONNECTED_TO", "a physical or logical link between two interfaces or devices", "both"),
        RelType("HOSTS", "a hypervisor or host hosts a virtual machine or container", "from_to"),
        RelType("MEMBER_OF", "a CI belongs to a group, cluster or business service", "from_to"),
        RelType("LICENSED_BY", "a software install is covered by a license entitlement", "none"),
        RelType("SERVED_BY", "a license entitlement is served by a license server host", "to_from"),
    )
}


def _dependent(*scopes: tuple[str, Literal["from", "to"]]) -> tuple[Scope, ...]:
    return tuple(Scope(rel, end) for rel, end in scopes)


CI_CLASSES: dict[str, CIClass] = {
    c.name: c
    for c in (
        CIClass("Computer", "a physical or virtual machine running an OS",
                ("serial", "system_uuid", "mac", "fqdn", "hostname", "agent_id")),
        CIClass("VirtualMachine", "a guest seen from its hypervisor",
                ("system_uuid", "mac", "fqdn", "hostname")),
        CIClass("NetworkDevice", "a switch, router, firewall, AP, UPS or storage head",
                ("serial", "chassis_mac", "sysname_ip")),
        CIClass("Printer", "a network printer", ("serial", "mac", "sysname_ip"),
                measurements=frozenset({"page_count", "supplies"})),
        CIClass("OperatingSystem", "the OS running on a host", ("family",),
                _dependent(("RUNS_ON", "from"))),
        CIClass("Interface", "a network interface of a host or device", ("name",),
                _dependent(("HAS_INTERFACE", "to"))),
        CIClass("IPAddress", "an IP address held by a host", ("address",),
                _dependent(("HAS_IP", "to"))),
        CIClass("Disk", "a block device of a host", ("serial", "name"),
                _dependent(("HAS_DISK", "to"))),
        CIClass("FileSystem", "a mounted file system of a host", ("mount",),
                _dependent(("HAS_FILESYSTEM", "to")), frozenset({"free_bytes", "used_bytes"})),
        CIClass("MemoryModule", "a memory module (DIMM) of a host", ("slot", "serial"),
                _dependent(("HAS_COMPONENT", "to"))),
        CIClass("PCIDevice", "a PCI device of a host (controller, GPU, NIC, sound card)", ("slot",),
                _dependent(("HAS_COMPONENT", "to"))),
        CIClass("HardwareModule", "a field-replaceable part of a device: chassis, supervisor, line card, "
                "power supply, fan, transceiver", ("slot", "serial"), _dependent(("HAS_COMPONENT", "to"))),
        CIClass("Software", "a software product (package name in its ecosystem, any version)",
                ("purl",)),
        CIClass("SoftwareInstall", "a package installed on a host", ("package",),
                _dependent(("INSTALLED_ON", "from"))),
        CIClass("Service", "a listening service on a host (identified by protocol/port, e.g. tcp/22)", ("name",),
                _dependent(("RUNS_ON", "from"))),
        CIClass("LicenseEntitlement", "a license right: feature, vendor, count, expiry",
                ("license_key",)),
        CIClass("BusinessService", "a service the business names and depends on", ("name",)),
    )
}

CLASS_NAMES: tuple[str, ...] = tuple(CI_CLASSES)
REL_TYPE_NAMES: tuple[str, ...] = tuple(REL_TYPES)
