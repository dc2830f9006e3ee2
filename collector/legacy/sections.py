"""One mapper per OCS / FusionInventory section: a pure function of the parsed request that
returns a Contribution (`agent.collectors.base`), the way each of our agent's collectors does.

Items use our agent's refs, identifiers, attribute names and units, so the same machine reported
by both merges attribute by attribute and item by item: `computer`, `os`, `if:<name>`,
`ip:<address>`, `disk:<name>`, `fs:<mount>`, `dimm:<slot>`, `pci:<slot>`. Sizes arrive in MiB
(memory, swap, file systems) or MB (disks) and leave in bytes. The software section lives in
`collector.legacy.software`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.hardware.disks import VIRTUAL_BLOCK_PREFIXES
from agent.collectors.hardware.filesystems import Mount, mount_ref, real_mounts
from agent.collectors.hardware.virtualization import virtualization_kind
from agent.collectors.network import VIRTUAL_NAME
from agent.collectors.os import split_fqdn
from cmdb.junk import clean, clean_mac, clean_uuid, is_identity_mac
from collector.legacy.fields import (
    MB,
    MIB,
    distro_id,
    flag,
    hardware_text,
    ip_address,
    iso_utc,
    kernel_name,
    local_time,
    os_family,
    positive_int,
    prefix_length,
    scaled_bytes,
    split_list,
    sub_text,
    text,
    utc_offset,
    virtualization,
)
from collector.legacy.xml import Entry, LegacyRequest

_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")
_PCI_SLOT = re.compile(r"^(?:([0-9a-f]{4}):)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$", re.I)
_OCS_CLASS = re.compile(r"^(?P<name>.*?)\s*\[(?P<id>[0-9a-f]{4})\]$", re.I)
# OCS writes the lspci revision into TYPE ("rev 01")
_OCS_REVISION = re.compile(r"^rev\s+([0-9a-f]{2})$", re.I)
# Interface types of the agents to iproute2's link types (what our agent reports).
_LINK_TYPES = {"ethernet": "ether", "ether": "ether", "loopback": "loopback", "wifi": "ether",
               "infiniband": "infiniband", "bridge": "ether", "aggregate": "ether"}
_NOT_HARDWARE_TYPES = {"loopback", "bridge", "aggregate", "alias", "dialup", "tunnel", "vlan"}
_DISK_INTERFACES = {"scsi": "SCSI", "ide": "ATA", "hdc": "ATA", "usb": "USB", "1394": "IEEE1394",
                    "serial-ata": "SATA", "sata": "SATA", "sas": "SAS", "nvme": "NVMe"}
_NO_DOMAIN = {"workgroup"}  # OCS's "no domain found"
_ALIAS = re.compile(r"^(?P<name>[^:\s]+):(?P<label>[\w.-]+)$")  # eth0:1, an address label


@dataclass(frozen=True, slots=True)
class Facts:
    """What several sections need, read once from the whole request."""

    kind: str  # "ocs" | "fusion"
    hostname: str | None
    fqdn: str | None
    domain: str | None
    distro: str | None  # os-release ID: the purl namespace of distribution packages
    utc_offset: timedelta | None  # the agent's UTC offset, when it says it


def first(request: LegacyRequest, section: str) -> Entry:
    entries = request.entries(section)
    return entries[0] if entries else {}


def read_facts(request: LegacyRequest, kind: str) -> Facts:
    hardware, os_entry = first(request, "HARDWARE"), first(request, "OPERATINGSYSTEM")
    name = text(hardware, "NAME")
    candidate = text(os_entry, "FQDN")
    domain = text(os_entry, "DNS_DOMAIN")
    if kind == "ocs" and not domain:
        # OCS: `hostname -d`, else the resolv.conf search list joined with '/', else "WORKGROUP".
        workgroup = clean(text(hardware, "WORKGROUP"))
        if workgroup and "/" not in workgroup and workgroup.lower() not in _NO_DOMAIN:
            domain = workgroup
    if name and domain and (not candidate or "." not in candidate):
        candidate = f"{name.split('.', 1)[0]}.{domain}"
    host, fqdn, found_domain = split_fqdn(clean(name), candidate)
    os_name = text(os_entry, "NAME") or text(hardware, "OSNAME")
    offset = utc_offset(sub_text(os_entry, "TIMEZONE", "OFFSET"))
    return Facts(kind, host, fqdn, found_domain, distro_id(os_name), offset)


# -- the Computer ---------------------------------------------------------------------------------

def map_hardware(request: LegacyRequest, facts: Facts) -> Contribution:
    """HARDWARE: names, UUID, memory, network summary, users; the OS when there is no
    OPERATINGSYSTEM section (OCS)."""
    hw = first(request, "HARDWARE")
    out = Contribution()
    tech = virtualization(text(hw, "VMSYSTEM"))
    last_user = text(hw, "LASTLOGGEDUSER")
    out.computer(
        identifiers={"hostname": facts.hostname, "fqdn": facts.fqdn if facts.domain else None,
                     "system_uuid": clean_uuid(text(hw, "UUID"))},
        attributes={
            "hostname": facts.hostname, "fqdn": facts.fqdn, "domain": facts.domain,
            "system_uuid": clean_uuid(text(hw, "UUID")),
            "memory_bytes": scaled_bytes(hw, "MEMORY", MIB),
            "swap_bytes": scaled_bytes(hw, "SWAP", MIB) if text(hw, "SWAP") != "0" else 0,
            "virtualization": tech, "virtualization_kind": virtualization_kind(tech),
            "dns_servers": [str(a) for a in map(ip_address, split_list(text(hw, "DNS"))) if a],
            "default_gateway": str(gw) if (gw := ip_address(text(hw, "DEFAULTGATEWAY"))) else None,
            "chassis_type": hardware_text(hw, "CHASSIS_TYPE"),
            "vm_name": text(hw, "VMNAME"), "vm_host_serial": hardware_text(hw, "VMHOSTSERIAL"),
            # USERS, when sent, says the same with the Windows domain: it is read there
            "logged_in_users": None if request.entries("USERS") else sorted(split_list(text(hw, "USERID"))),
            # `last` with no login prints only "wtmp begins ...", which both agents read as user "wtmp"
            "last_logged_user": last_user if last_user and last_user != "wtmp" else None,
        },
    )
    if not request.entries("OPERATINGSYSTEM"):
        _ocs_operating_system(out, hw, facts)
    return out


def _ocs_operating_system(out: Contribution, hw: Entry, facts: Facts) -> None:
    """OCS Linux: OSNAME "<NAME> <VERSION_ID>", OSVERSION the version, OSCOMMENTS the PRETTY_NAME
    (older distribution modules: `uname -v`); DESCRIPTION "<arch>/<uptime>"."""
    os_name, version, comments = text(hw, "OSNAME"), text(hw, "OSVERSION"), text(hw, "OSCOMMENTS")
    family = os_family(os_name)
    if family is None:
        return
    name = os_name[: -len(version) - 1] if os_name and version and os_name.endswith(" " + version) else os_name
    # Debian's OCS reads /etc/debian_version ("12.11") where os-release says VERSION_ID "12".
    full = version if facts.distro == "debian" and version and "." in version else None
    arch = (text(hw, "DESCRIPTION") or "").split("/", 1)[0] or None
    out.add("OperatingSystem", "os", {"family": family}, {
        "name": name, "id": facts.distro, "version_id": None if full else version, "version_full": full,
        "pretty_name": comments if comments and not comments.startswith("#") else None,
        "kernel_version": comments if comments and comments.startswith("#") else None,
        "kernel_name": "Linux" if family == "linux" else None,
        "arch": arch,
    })
    out.relate("os", "RUNS_ON", COMPUTER_REF)


def map_bios(request: LegacyRequest, facts: Facts) -> Contribution:
    """BIOS: DMI system, BIOS, board and chassis (empty on machines without DMI tables)."""
    bios = first(request, "BIOS")
    serial = hardware_text(bios, "SSN")
    out = Contribution()
    out.computer(identifiers={"serial": serial}, attributes={
        "manufacturer": hardware_text(bios, "SMANUFACTURER"), "model": hardware_text(bios, "SMODEL"),
        "serial": serial, "sku": hardware_text(bios, "SKUNUMBER"),
        "bios_vendor": hardware_text(bios, "BMANUFACTURER"), "bios_version": hardware_text(bios, "BVERSION"),
        "bios_date": hardware_text(bios, "BDATE"), "bios_serial": hardware_text(bios, "BIOSSERIAL"),
        "board_vendor": hardware_text(bios, "MMANUFACTURER"), "board_model": hardware_text(bios, "MMODEL"),
        "board_serial": hardware_text(bios, "MSN"), "asset_tag": hardware_text(bios, "ASSETTAG"),
        "chassis_serial": hardware_text(bios, "ENCLOSURESERIAL"), "chassis_type": hardware_text(bios, "TYPE"),
    })
    return out


def map_cpus(request: LegacyRequest, facts: Facts) -> Contribution:
    """CPUS: one entry per socket in both agents; our agent sums them on the Computer."""
    cpus = request.entries("CPUS")
    head = cpus[0]
    cores = [positive_int(c, "CORE") or positive_int(c, "CORES") for c in cpus]
    # threads of a socket: Fusion THREAD (siblings), OCS LOGICAL_CPUS (= cores x threads per core)
    threads = [positive_int(c, "THREAD") or positive_int(c, "LOGICAL_CPUS") for c in cpus]
    out = Contribution()
    out.computer(attributes={
        "cpu_model": clean(text(head, "NAME") or text(head, "TYPE")),
        "cpu_vendor": hardware_text(head, "MANUFACTURER"),
        "cpu_sockets": len(cpus),
        "cpu_cores": sum(cores) if all(cores) else None,  # type: ignore[arg-type]
        "cpu_threads": _threads(cores, threads),
        "cpu_mhz": positive_int(head, "SPEED"),
        "cpu_family": positive_int(head, "FAMILYNUMBER"),
        "cpu_model_number": _int_or_none(text(head, "MODEL")),
        "cpu_stepping": _int_or_none(text(head, "STEPPING")),
        "cpu_id": text(head, "ID"),
    })
    return out


def _threads(cores: list[int | None], threads: list[int | None]) -> int | None:
    """Total threads; None when unknown or fewer than the cores (DMI's Thread Count is wrong on
    some boards, and a wrong count is worse than none)."""
    if not all(threads):
        return None
    total = sum(t for t in threads if t)
    return None if all(cores) and total < sum(c for c in cores if c) else total


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def map_operating_system(request: LegacyRequest, facts: Facts) -> Contribution:
    """OPERATINGSYSTEM (FusionInventory): the OperatingSystem item, and the host's FQDN, host id,
    boot time and time zone on the Computer."""
    os_entry, hw = first(request, "OPERATINGSYSTEM"), first(request, "HARDWARE")
    out = Contribution()
    out.computer(attributes={
        "host_id": clean(text(os_entry, "HOSTID")),
        "boot_time": iso_utc(local_time(text(os_entry, "BOOT_TIME"), facts.utc_offset)),
        "timezone": _timezone(sub_text(os_entry, "TIMEZONE", "NAME")),
        "ssh_host_key": text(os_entry, "SSH_KEY"),
    })
    family = os_family(text(os_entry, "KERNEL_NAME"), text(os_entry, "NAME"), text(hw, "OSNAME"))
    if family is None:
        return out
    comments = text(hw, "OSCOMMENTS")
    out.add("OperatingSystem", "os", {"family": family}, {
        "name": text(os_entry, "NAME"), "id": facts.distro, "pretty_name": text(os_entry, "FULL_NAME"),
        "version_full": text(os_entry, "VERSION"), "service_pack": text(os_entry, "SERVICE_PACK"),
        "kernel_name": kernel_name(text(os_entry, "KERNEL_NAME")),
        "kernel_release": text(os_entry, "KERNEL_VERSION") or text(hw, "OSVERSION"),
        "kernel_version": comments if comments and comments.startswith("#") else None,
        "arch": text(os_entry, "ARCH"), "install_date": text(os_entry, "INSTALL_DATE"),
    })
    out.relate("os", "RUNS_ON", COMPUTER_REF)
    return out


def _timezone(name: str | None) -> str | None:
    """Our agent reads /etc/timezone or the zoneinfo link: "Etc/UTC" where Fusion says "UTC"."""
    return "Etc/UTC" if name == "UTC" else name


def map_users(request: LegacyRequest, facts: Facts) -> Contribution:
    """USERS: who is logged in (Windows: DOMAIN\\LOGIN)."""
    users = []
    for entry in request.entries("USERS"):
        login, domain = text(entry, "LOGIN"), text(entry, "DOMAIN")
        if login:
            users.append(f"{domain}\\{login}" if domain else login)
    out = Contribution()
    out.computer(attributes={"logged_in_users": sorted(set(users))})
    return out


def map_local_users(request: LegacyRequest, facts: Facts) -> Contribution:
    """LOCAL_USERS: the accounts of the machine, as a list of logins on the Computer."""
    logins = {login for entry in request.entries("LOCAL_USERS") if (login := text(entry, "LOGIN"))}
    out = Contribution()
    out.computer(attributes={"local_users": sorted(logins)[:10_000]})
    return out


# -- components -----------------------------------------------------------------------------------

def map_memories(request: LegacyRequest, facts: Facts) -> Contribution:
    """MEMORIES: populated DMI memory slots as MemoryModule items (our agent's slot names: the
    locator when it is unique, else "slot <n>")."""
    modules = [m for m in request.entries("MEMORIES") if scaled_bytes(m, "CAPACITY", MIB)]
    captions = [text(m, "CAPTION") for m in modules]
    out = Contribution()
    for ordinal, (module, caption) in enumerate(zip(modules, captions), start=1):
        number = positive_int(module, "NUMSLOTS") or ordinal
        slot = caption if caption and captions.count(caption) == 1 else f"slot {number}"
        ref = "dimm:" + _REF_UNSAFE.sub("_", slot)[:120]
        serial = hardware_text(module, "SERIALNUMBER")
        out.add("MemoryModule", ref, {"slot": slot, "serial": serial}, {
            "slot": slot, "locator": caption, "size_bytes": scaled_bytes(module, "CAPACITY", MIB),
            "type": hardware_text(module, "TYPE"), "speed_mts": positive_int(module, "SPEED"),
            "form_factor": hardware_text(module, "FORMFACTOR") or hardware_text(module, "DESCRIPTION"),
            "manufacturer": hardware_text(module, "MANUFACTURER"), "serial": serial,
            "part_number": hardware_text(module, "MODEL"),
            "error_correction": hardware_text(module, "MEMORYCORRECTION")
            or hardware_text(module, "ERRORCORRECTIONTYPE"),
        })
        out.relate(COMPUTER_REF, "HAS_COMPONENT", ref)
    return out


def map_storages(request: LegacyRequest, facts: Facts) -> Contribution:
    """STORAGES: block devices as Disk items; loop, RAM and device-mapper devices are left out,
    as our agent leaves them out."""
    out = Contribution()
    for entry in request.entries("STORAGES"):
        name = text(entry, "NAME")
        if not name or name.startswith(VIRTUAL_BLOCK_PREFIXES) or len(name) > 256:
            continue
        serial = hardware_text(entry, "SERIALNUMBER") or hardware_text(entry, "SERIAL")
        interface = text(entry, "INTERFACE")
        ref = "disk:" + _REF_UNSAFE.sub("_", name)[:120]
        out.add("Disk", ref, {"name": name, "serial": serial}, {
            "name": name, "size_bytes": scaled_bytes(entry, "DISKSIZE", MB),
            "vendor": hardware_text(entry, "MANUFACTURER"), "model": hardware_text(entry, "MODEL"),
            "serial": serial, "firmware": hardware_text(entry, "FIRMWARE"), "wwn": hardware_text(entry, "WWN"),
            "type": (text(entry, "TYPE") or "").lower() or None,
            "interface": _DISK_INTERFACES.get((interface or "").lower(), interface),
            "description": text(entry, "DESCRIPTION"),
        })
        out.relate(COMPUTER_REF, "HAS_DISK", ref)
    return out


def map_drives(request: LegacyRequest, facts: Facts) -> Contribution:
    """DRIVES: mounted file systems (on Unix TYPE is the mount point; on Windows the letter),
    filtered like our agent's (no pseudo file systems, no second view of a device)."""
    entries: dict[str, Entry] = {}
    mounts: list[Mount] = []
    for entry in request.entries("DRIVES"):
        typ, letter = text(entry, "TYPE"), text(entry, "LETTER")
        mount = typ if typ and typ.startswith("/") else letter
        if not mount or len(mount) > 1024:
            continue
        entries[mount] = entry
        device = text(entry, "VOLUMN") if mount.startswith("/") else None  # Windows: VOLUMN is the label
        mounts.append(Mount(device or "", mount, (text(entry, "FILESYSTEM") or "").lower()))
    out = Contribution()
    for m in real_mounts(mounts):
        entry = entries[m.mount]
        ref = mount_ref(m.mount)
        while ref in out.items:  # two mount points that differ only by unsafe characters
            ref += "_"
        out.add("FileSystem", ref, {"mount": m.mount}, {
            "mount": m.mount, "device": m.device or None, "fs_type": m.fs_type or None,
            "size_bytes": scaled_bytes(entry, "TOTAL", MIB),
            "label": text(entry, "LABEL") or (None if m.mount.startswith("/") else text(entry, "VOLUMN")),
            "uuid": clean(text(entry, "SERIAL")), "network": m.network or None,
            "free_bytes": scaled_bytes(entry, "FREE", MIB),  # a measurement (cmdb.model)
        })
        out.relate(COMPUTER_REF, "HAS_FILESYSTEM", ref)
    return out


def map_controllers(request: LegacyRequest, facts: Facts) -> Contribution:
    """CONTROLLERS: PCI functions as PCIDevice items, slot spelled as our agent spells it
    ("0000:00:02.0"). Entries without a PCI slot (USB controllers on some OSes) are left out."""
    out = Contribution()
    for entry in request.entries("CONTROLLERS"):
        match = _PCI_SLOT.match(text(entry, "PCISLOT") or "")
        if not match:
            continue
        slot = f"{(match[1] or '0000').lower()}:{match[2].lower()}"
        vendor_id, device_id = _pci_pair(text(entry, "PCIID"))
        sub_vendor, sub_device = _pci_pair(text(entry, "PCISUBSYSTEMID"))
        fusion = facts.kind == "fusion"
        # Fusion: TYPE is the class name, CAPTION the device; OCS: NAME "Host bridge [0600]"
        class_name, class_id = text(entry, "TYPE" if fusion else "NAME"), text(entry, "PCICLASS")
        if not fusion and (ocs_class := _OCS_CLASS.match(class_name or "")) is not None:
            class_name, class_id = ocs_class["name"], ocs_class["id"]
        revision = text(entry, "REV")
        if not fusion and (ocs_rev := _OCS_REVISION.match(text(entry, "TYPE") or "")) is not None:
            revision = ocs_rev[1]
        ref = out.add("PCIDevice", f"pci:{slot}", {"slot": slot}, {
            "slot": slot, "class_id": (class_id or "").lower() or None, "class_name": class_name,
            "vendor_id": (text(entry, "VENDORID") or vendor_id or "").lower() or None,
            "device_id": (text(entry, "PRODUCTID") or device_id or "").lower() or None,
            "subsystem_vendor_id": sub_vendor, "subsystem_device_id": sub_device, "revision": revision,
            "vendor": hardware_text(entry, "MANUFACTURER") if fusion else None,
            "device": text(entry, "CAPTION") if fusion else None,
            # OCS runs vendor and device name together in MANUFACTURER
            "description": None if fusion else text(entry, "MANUFACTURER"),
            "driver": text(entry, "DRIVER"),
        })
        out.relate(COMPUTER_REF, "HAS_COMPONENT", ref)
    return out


def _pci_pair(value: str | None) -> tuple[str | None, str | None]:
    left, sep, right = (value or "").lower().partition(":")
    ok = sep and re.fullmatch(r"[0-9a-f]{4}", left) and re.fullmatch(r"[0-9a-f]{4}", right)
    return (left, right) if ok else (None, None)


# -- network ----------------------------------------------------------------------------------

def map_networks(request: LegacyRequest, facts: Facts) -> Contribution:
    """NETWORKS: one entry per interface *and address* in both agents. Interfaces by name
    (an alias `eth0:1` is an address label of eth0, as in our agent), their addresses, and the
    Computer's identity MACs: burned-in addresses of hardware NICs only."""
    out = Contribution()
    identity: set[str] = set()
    for entry in request.entries("NETWORKS"):
        raw_name = text(entry, "DESCRIPTION")
        if not raw_name or len(raw_name) > 256:
            continue
        alias_match = _ALIAS.match(raw_name)
        name, alias = (alias_match["name"], alias_match["label"]) if alias_match else (raw_name, "")
        mac = clean_mac(text(entry, "MACADDR"))
        kind = (text(entry, "TYPE") or "").lower()
        virtual = flag(entry, "VIRTUALDEV")
        if virtual is None:  # OCS does not say: guess from the name and type, as our agent does without sysfs
            virtual = bool(VIRTUAL_NAME.match(name)) or kind in _NOT_HARDWARE_TYPES
        if mac and not virtual and not alias and is_identity_mac(mac):
            identity.add(mac)
        if_ref = "if:" + _REF_UNSAFE.sub("_", name)[:120]
        if alias:  # an address label: the addresses are eth0's, the entry says nothing else of eth0
            out.add("Interface", if_ref, {"name": name}, {"name": name})
        else:
            _add_interface(out, if_ref, name, entry, mac, kind, virtual)
        out.relate(COMPUTER_REF, "HAS_INTERFACE", if_ref)
        for addr_key, mask_key in (("IPADDRESS", "IPMASK"), ("IPADDRESS6", "IPMASK6")):
            address = ip_address(text(entry, addr_key))
            if address is None or f"ip:{address.compressed}" in out.items:
                continue  # the same address on two interfaces: the first one keeps it
            ip_ref = out.add("IPAddress", f"ip:{address.compressed}", {"address": address.compressed}, {
                "address": address.compressed, "family": address.version, "interface": name,
                "prefix_length": prefix_length(text(entry, mask_key), address.version),
                "label": f"{name}:{alias}" if alias else None,
            })
            out.relate(if_ref, "HAS_IP", ip_ref)
    out.computer(identifiers={"mac": sorted(identity)})
    return out


def _add_interface(out: Contribution, ref: str, name: str, entry: Entry, mac: str | None, kind: str,
                   virtual: bool) -> None:
    out.add("Interface", ref, {"name": name}, {
        "name": name, "mac": mac, "mtu": positive_int(entry, "MTU"),
        "operstate": (text(entry, "STATUS") or "").lower() or None,
        "type": _LINK_TYPES.get(kind, kind or None),
        "virtual": virtual, "driver": text(entry, "DRIVER"), "speed_mbps": positive_int(entry, "SPEED"),
        "parent": text(entry, "BASE"), "vendor": hardware_text(entry, "MANUFACTURER"),
        "model": hardware_text(entry, "MODEL"), "pci_slot": text(entry, "PCISLOT"),
        "dhcp_server": text(entry, "IPDHCP"),
    })


SectionMapper = Callable[[LegacyRequest, Facts], Contribution]
