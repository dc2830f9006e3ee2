"""DeviceData -> a `fleetgraph.report/1` Report: items per collector, relations, statuses.

The device is one item (ref "device"): a NetworkDevice, a Printer or, for HOST-RESOURCES servers,
a Computer identified the way the agent identifies one (identity MACs of hardware NICs,
hostname, FQDN), so an SNMP scan and the agent on the same Linux host meet on one CI. Packages
use the agent's dpkg identifiers; file systems the agent's mount refs.

Neighbours (LLDP, CDP) and MACs learned on switch ports (bridge FDB) become CONNECTED_TO relations
from the local Interface to a *reference* item (`Item.reference`): the remote end is another CI
this scan does not own. Today reconcile resolves references to IPAddress CIs (reconcile/
references.py), so the remote end is an IPAddress reference when its address is known (LLDP/CDP
management address, or the ARP entry of a learned MAC), else a NetworkDevice reference by
chassis MAC or a Computer reference by MAC, which reconcile notes as unresolved for now.

Collector status: `ok` when the MIB group answered and every walk of it completed, `failed`
(with the reason) when a walk was cut short, `not_applicable` when the group is absent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent.collectors.base import Contribution
from agent.collectors.network import VIRTUAL_NAME
from agent.collectors.services import listening_services, service_ref
from agent.collectors.software.purl import purl_encode, purl_namespace, purl_prefix, ref_token
from cmdb.junk import is_identity_mac
from cmdb.report import CollectorStatus, Item, Relation, Report, check_report
from discovery.base import build_report, source_id
from discovery.snmp.device import DeviceData
from discovery.snmp.host_resources import disk_name, file_systems, processors
from discovery.snmp.neighbours import Neighbour

DEVICE_REF = "device"
# ENTITY-MIB modules, power supplies and fans (identified by slot, hanging off the device).
COMPONENT_CLASS = "HardwareModule"
# A switch port where more MACs than this were learned leads to another switch (or a hypervisor):
# its MACs say nothing about what is plugged into that port.
MAX_MACS_PER_PORT = 8
COLLECTORS = ("system", "interfaces", "ip", "entity", "host_resources", "services", "lldp", "cdp", "bridge",
              "printer")
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")


def _ref(*parts: object) -> str:
    return _REF_UNSAFE.sub("_", ":".join(str(p) for p in parts))[:128]


def device_identifiers(data: DeviceData, address: str) -> dict[str, Any]:
    identity, system = data.identity, data.system
    macs = sorted({i.mac for i in data.interfaces if i.mac and is_identity_mac(i.mac)
                   and not VIRTUAL_NAME.match(i.name) and i.type != 24})
    sysname_ip = f"{system.name.lower()}@{address}" if system.name else None
    if identity.ci_class == "Computer":
        name = (system.name or "").lower().rstrip(".")
        return {"mac": macs, "hostname": name.split(".", 1)[0] or None, "fqdn": name if "." in name else None}
    if identity.ci_class == "Printer":
        return {"serial": data.printer.serial or identity.serial, "mac": macs, "sysname_ip": sysname_ip}
    chassis_mac = data.lldp_chassis_mac or data.bridge_mac
    return {"serial": identity.serial,
            "chassis_mac": chassis_mac if chassis_mac and is_identity_mac(chassis_mac) else None,
            "sysname_ip": sysname_ip}


def _system(out: Contribution, data: DeviceData, address: str, snmp_version: str) -> None:
    identity, system = data.identity, data.system
    attributes = {
        "vendor": identity.vendor, "manufacturer": identity.manufacturer or identity.vendor,
        "model": identity.model, "serial": identity.serial, "device_type": identity.device_type,
        "os": identity.os, "os_version": identity.os_version, "firmware": identity.firmware,
        "software_version": identity.software_version, "hardware_revision": identity.hardware_revision,
        "enterprise": identity.enterprise, "enterprise_number": identity.enterprise_number,
        "identified_by": identity.rule, "sys_name": system.name, "sys_descr": system.descr,
        "sys_object_id": system.object_id, "sys_location": system.location, "sys_contact": system.contact,
        "management_address": address, "snmp_version": snmp_version,
    }
    if identity.ci_class == "Computer":
        name = (system.name or "").lower()
        attributes.update(hostname=name.split(".", 1)[0] or None, fqdn=name if "." in name else None)
        family = (identity.os or "").split()[0].lower() or None
        if family:
            out.add("OperatingSystem", "os", {"family": family},
                    {"name": identity.os, "kernel_release": identity.os_version if family == "linux" else None,
                     "version": identity.os_version if family != "linux" else None})
            out.relate("os", "RUNS_ON", DEVICE_REF)
    out.add(identity.ci_class, DEVICE_REF, device_identifiers(data, address), attributes)


def _interfaces(out: Contribution, data: DeviceData) -> dict[int, str]:
    refs = {}
    for iface in data.interfaces:
        ref = out.add("Interface", _ref("if", iface.index), {"name": iface.name}, {
            "name": iface.name, "descr": iface.descr if iface.descr != iface.name else None,
            "alias": iface.alias, "if_index": iface.index, "type": iface.type_name, "mtu": iface.mtu,
            "speed_bps": iface.speed_bps, "mac": iface.mac, "admin_up": iface.admin_up,
            "operstate": iface.oper_status,
            "virtual": iface.type == 24 or bool(VIRTUAL_NAME.match(iface.name)) or None,
        })
        out.relate(DEVICE_REF, "HAS_INTERFACE", ref)
        refs[iface.index] = ref
    return refs


def _ip(out: Contribution, data: DeviceData, if_refs: Mapping[int, str]) -> None:
    names = {i.index: i.name for i in data.interfaces}
    for addr in data.addresses:
        ref = out.add("IPAddress", _ref("ip", addr.address), {"address": addr.address}, {
            "address": addr.address, "prefix_length": addr.prefix_length, "family": addr.family,
            "interface": names.get(addr.if_index) if addr.if_index is not None else None,
        })
        holder = if_refs.get(addr.if_index) if addr.if_index is not None else None
        out.relate(holder or DEVICE_REF, "HAS_IP", ref)


def _entity(out: Contribution, data: DeviceData) -> None:
    chassis_index = next((e.index for e in data.entities if e.physical_class == "chassis"
                          and (e.serial or e.model)), None)
    names = [e.name for e in data.entities if e.name]
    for entity in data.entities:
        if entity.index == chassis_index or entity.physical_class not in ("chassis", "module", "powerSupply", "fan", "cpu"):
            continue
        if not entity.worth_a_component:
            continue
        slot = entity.name if entity.name and names.count(entity.name) == 1 else f"{entity.name or entity.descr or 'entity'} #{entity.index}"
        ref = out.add(COMPONENT_CLASS, _ref("entity", entity.index), {"slot": slot}, {
            "slot": slot, "kind": entity.physical_class, "description": entity.descr, "model": entity.model,
            "serial": entity.serial, "manufacturer": entity.manufacturer, "firmware": entity.firmware_rev,
            "software_version": entity.software_rev, "hardware_revision": entity.hardware_rev,
        })
        out.relate(DEVICE_REF, "HAS_COMPONENT", ref)


def _host_resources(out: Contribution, data: DeviceData) -> None:
    cpus = processors(data.hr_devices)
    out.add(data.identity.ci_class, DEVICE_REF, {}, {
        "memory_bytes": data.memory_bytes, "cpu_threads": len(cpus) or None,
        "cpu_model": next((c.descr.split(": ", 1)[-1] for c in cpus if c.descr), None),
    })
    for area in file_systems(data.storage):
        ref = _ref("fs", area.descr)
        used = area.used_bytes if area.size_bytes else None
        out.add("FileSystem", ref, {"mount": area.descr}, {
            "mount": area.descr, "fs_type": area.fs_type, "size_bytes": area.size_bytes or None,
            "used_bytes": used, "free_bytes": area.size_bytes - used if used is not None and area.size_bytes else None,
            "network": area.kind == "networkDisk" or None,
        })
        out.relate(DEVICE_REF, "HAS_FILESYSTEM", ref)
    for device in data.hr_devices:
        name = disk_name(device) if device.type == "1.3.6.1.2.1.25.3.1.6" else None
        if name:
            ref = out.add("Disk", _ref("disk", name), {"name": name},
                          {"name": name, "description": device.descr, "size_bytes": device.capacity_bytes})
            out.relate(DEVICE_REF, "HAS_DISK", ref)
    _software(out, data)


def _software(out: Contribution, data: DeviceData) -> None:
    software = data.software
    namespace = purl_namespace(software.distro) if software.ecosystem in ("deb", "rpm") else None
    for pkg in software.packages:
        eco = pkg.ecosystem
        software_purl = purl_prefix(eco, namespace if eco != "generic" else None) + purl_encode(pkg.name)
        install_purl = software_purl + (f"@{purl_encode(pkg.version)}" if pkg.version else "") \
            + (f"?arch={purl_encode(pkg.arch)}" if pkg.arch else "")
        package = f"{eco}:{pkg.name}:{pkg.arch or 'unknown'}"
        sw_ref = out.add("Software", ref_token("sw", eco, pkg.name), {"purl": software_purl},
                         {"name": pkg.name, "ecosystem": eco})
        pkg_ref = out.add("SoftwareInstall", ref_token("pkg", package), {"package": package}, {
            "name": pkg.name, "version": pkg.version, "arch": pkg.arch, "purl": install_purl,
            "install_date": pkg.install_date, "kind": pkg.kind,
        })
        out.relate(pkg_ref, "INSTALLED_ON", DEVICE_REF)
        out.relate(pkg_ref, "INSTANCE_OF", sw_ref)


def _services(out: Contribution, data: DeviceData) -> None:
    # The agent's rules: loopback-only TCP listeners and UDP sockets in the ephemeral range are
    # clients or a process talking to itself, not services. The remote range is unknown: Linux's.
    for key, service in sorted(listening_services(data.sockets).items()):
        process = data.processes.get(service.owner_pid) if service.owner_pid else None
        ref = out.add("Service", service_ref(*key), {"name": f"{key[0]}/{key[1]}"}, {
            "protocol": key[0], "port": key[1], "bind_addresses": sorted(service.bind_addresses),
            "process_name": process,
        })
        out.relate(ref, "RUNS_ON", DEVICE_REF)


def _remote_ref(out: Contribution, address: str | None, mac: str | None, by_mac_class: str) -> str | None:
    """A reference item for the remote end: by address when known (resolvable), else by MAC."""
    if address:
        return out.add("IPAddress", _ref("peer", address), {"address": address}, reference=True)
    if mac and is_identity_mac(mac):
        kind = "chassis_mac" if by_mac_class == "NetworkDevice" else "mac"
        return out.add(by_mac_class, _ref("peer", mac), {kind: mac}, reference=True)
    return None


def _neighbours(out: Contribution, neighbours: list[Neighbour], if_refs: Mapping[int, str]) -> int:
    skipped = 0
    for n in neighbours:
        remote = _remote_ref(out, n.management_addresses[0] if n.management_addresses else None,
                             n.chassis_mac, "NetworkDevice")
        if remote is None:
            skipped += 1
            continue
        local = if_refs.get(n.local_if_index) if n.local_if_index is not None else None
        out.relate(local or DEVICE_REF, "CONNECTED_TO", remote, {
            "protocol": n.protocol, "local_port": n.local_port, "remote_interface": n.port_id,
            "remote_port_descr": n.port_descr, "remote_sys_name": n.sys_name, "remote_chassis_id": n.chassis_id,
            "remote_platform": n.platform, "remote_capabilities": list(n.capabilities),
        })
    return skipped


def _bridge(out: Contribution, data: DeviceData, if_refs: Mapping[int, str]) -> None:
    uplinks = {n.local_if_index for n in data.lldp + data.cdp if n.local_if_index is not None}
    own = {i.mac for i in data.interfaces if i.mac} | {data.bridge_mac}
    arp = {entry.mac: entry.address for entry in data.arp}
    by_port: dict[int, list] = defaultdict(list)
    for entry in data.fdb:
        if entry.if_index is not None and entry.if_index in if_refs and entry.mac not in own:
            by_port[entry.if_index].append(entry)
    for if_index, entries in sorted(by_port.items()):
        if if_index in uplinks or len({e.mac for e in entries}) > MAX_MACS_PER_PORT:
            continue
        for entry in entries:
            remote = _remote_ref(out, arp.get(entry.mac), entry.mac, "Computer")
            if remote:
                out.relate(if_refs[if_index], "CONNECTED_TO", remote,
                           {"protocol": "bridge", "mac": entry.mac, "vlan": entry.vlan})


def _printer(out: Contribution, data: DeviceData) -> None:
    info = data.printer
    out.add(data.identity.ci_class, DEVICE_REF, {"serial": info.serial}, {
        "printer_model": info.model, "printer_serial": info.serial, "page_count": info.page_count,
        "page_count_unit": info.page_count_unit, "printer_status": info.status,
        "supplies": [f"{s.description or s.type or s.index}: "
                     + (f"{s.percent}%" if s.percent is not None else s.level_state or "unknown")
                     for s in info.supplies][:200],
    })


def _status(name: str, data: DeviceData, failed: Mapping[str, str], gaps: Mapping[str, list[str]],
            seconds: float) -> CollectorStatus:
    duration = round(seconds * 1000, 1)
    if failed.get(name):
        return CollectorStatus(status="failed", reason=failed[name][:2048], duration_ms=duration)
    if name not in data.present:
        return CollectorStatus(status="not_applicable", duration_ms=duration)
    reason = None
    if gaps.get(name):
        reason = (f"skipped {len(gaps[name])} value(s) the agent could not return: "
                  + ", ".join(gaps[name][:5]))
    return CollectorStatus(status="ok", reason=reason, duration_ms=duration)


def build_device_report(data: DeviceData, address: str, port: int, scanner_id: str, snmp_version: str,
                        failed: Mapping[str, str] | None = None, gaps: Mapping[str, list[str]] | None = None,
                        seconds: float = 0.0, collected_at: datetime | None = None) -> Report:
    """The report of one scanned device. `failed` and `gaps` are per collector name."""
    failed, gaps = failed or {}, gaps or {}
    parts: dict[str, Contribution] = {name: Contribution() for name in COLLECTORS}
    _system(parts["system"], data, address, snmp_version)
    if_refs = _interfaces(parts["interfaces"], data) if "interfaces" in data.present else {}
    if "ip" in data.present:
        _ip(parts["ip"], data, if_refs)
    if "entity" in data.present:
        _entity(parts["entity"], data)
    if "host_resources" in data.present:
        _host_resources(parts["host_resources"], data)
    if "services" in data.present:
        _services(parts["services"], data)
    if "lldp" in data.present:
        _neighbours(parts["lldp"], data.lldp, if_refs)
    if "cdp" in data.present:
        _neighbours(parts["cdp"], data.cdp, if_refs)
    if "bridge" in data.present:
        _bridge(parts["bridge"], data, if_refs)
    if "printer" in data.present and data.printer.present:
        _printer(parts["printer"], data)
    items, relations = merge(parts, failed)
    statuses = {name: _status(name, data, failed, gaps, seconds) for name in COLLECTORS}
    if data.software.truncated_dropped and statuses["host_resources"].status == "ok":
        statuses["host_resources"].reason = (f"{data.software.truncated_dropped} package name(s) cut by the agent "
                                             "to 63 characters without their architecture were left out")
    report = build_report("snmp", source_id(scanner_id, "snmp", address, port), items, relations, statuses,
                          collected_at=collected_at)
    check_report(report)
    return report


def merge(parts: Mapping[str, Contribution], failed: Mapping[str, str]) -> tuple[list[Item], list[Relation]]:
    """Items merged by ref (first collector keeps the item; identifiers and attributes are added
    to), relations deduplicated. A failed collector contributes nothing."""
    items: dict[str, Item] = {}
    relations: list[Relation] = []
    seen: set[tuple] = set()
    for name, part in parts.items():
        if failed.get(name):
            continue
        for contributed in part.items.values():
            item = items.get(contributed.ref)
            if item is None:
                items[contributed.ref] = Item(class_=contributed.class_, ref=contributed.ref,
                                              identifiers=dict(contributed.identifiers),
                                              attributes=dict(contributed.attributes), collector=name,
                                              reference=contributed.reference)
                continue
            item.reference = item.reference and contributed.reference
            for kind, value in contributed.identifiers.items():
                item.identifiers.setdefault(kind, value)
            for key, value in contributed.attributes.items():
                item.attributes.setdefault(key, value)
        for i, (src, rel_type, dst) in enumerate(part.relations):
            attributes = part.relation_attributes.get(i, {})
            key = (src, rel_type, dst, repr(sorted(attributes.items())))
            if key not in seen:
                seen.add(key)
                relations.append(Relation(from_=src, type=rel_type, to=dst, attributes=dict(attributes)))
    refs = set(items)
    relations = [r for r in relations if r.from_ in refs and r.to in refs]
    return list(items.values()), relations
