"""What FusionInventory agent 2.6 reports about this machine, and whether our report says the same:
Fusion's local XML read, every field of its hardware sections mapped to our class and attribute
(FIELD_MAP), the package counts. Used by bench/agent_vs_fusion.py (which prints the table) and
tests/integration/test_fusion_parity.py (which asserts it)."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

FUSION = "fusioninventory-agent"
HARDWARE_SECTIONS = ("BIOS", "HARDWARE", "CPUS", "MEMORIES", "STORAGES", "DRIVES", "NETWORKS",
                     "OPERATINGSYSTEM")

# Every field of FusionInventory 2.6's hardware sections (FusionInventory::Agent::Inventory
# %fields) -> the class and attribute of our report that says the same thing ("Class.attr").
# Attributes we do not report yet are named as proposed, so the table shows what is missing.
# A Fusion field is only checked when Fusion reports it non-empty on the machine at hand.
FIELD_MAP: dict[str, str] = {
    # BIOS: DMI types 0-3
    "BIOS/SMANUFACTURER": "Computer.manufacturer",
    "BIOS/SMODEL": "Computer.model",
    "BIOS/SSN": "Computer.serial",
    "BIOS/SKUNUMBER": "Computer.sku",
    "BIOS/BMANUFACTURER": "Computer.bios_vendor",
    "BIOS/BVERSION": "Computer.bios_version",
    "BIOS/BDATE": "Computer.bios_date",
    "BIOS/BIOSSERIAL": "Computer.bios_serial",
    "BIOS/MMANUFACTURER": "Computer.board_vendor",
    "BIOS/MMODEL": "Computer.board_model",
    "BIOS/MSN": "Computer.board_serial",
    "BIOS/ASSETTAG": "Computer.asset_tag",
    "BIOS/ENCLOSURESERIAL": "Computer.chassis_serial",
    "BIOS/TYPE": "Computer.chassis_type",
    # HARDWARE: Fusion's machine summary
    "HARDWARE/NAME": "Computer.hostname",
    "HARDWARE/UUID": "Computer.system_uuid",
    "HARDWARE/CHASSIS_TYPE": "Computer.chassis_type",
    "HARDWARE/TYPE": "Computer.chassis_type",
    "HARDWARE/VMSYSTEM": "Computer.virtualization",
    "HARDWARE/VMNAME": "Computer.vm_name",
    "HARDWARE/VMHOSTSERIAL": "Computer.vm_host_serial",
    "HARDWARE/MEMORY": "Computer.memory_bytes",  # MiB
    "HARDWARE/SWAP": "Computer.swap_bytes",  # MiB
    "HARDWARE/PROCESSORT": "Computer.cpu_model",
    "HARDWARE/PROCESSORN": "Computer.cpu_sockets",
    "HARDWARE/PROCESSORS": "Computer.cpu_mhz",
    "HARDWARE/OSNAME": "OperatingSystem.pretty_name",
    "HARDWARE/OSVERSION": "OperatingSystem.kernel_release",
    "HARDWARE/OSCOMMENTS": "OperatingSystem.kernel_version",
    "HARDWARE/DESCRIPTION": "OperatingSystem.arch",  # "x86_64/<uptime>"
    "HARDWARE/WORKGROUP": "Computer.domain",
    "HARDWARE/IPADDR": "IPAddress.address",
    "HARDWARE/DNS": "Computer.dns_servers",
    "HARDWARE/DEFAULTGATEWAY": "Computer.default_gateway",
    "HARDWARE/USERID": "Computer.logged_in_users",
    "HARDWARE/LASTLOGGEDUSER": "Computer.last_logged_user",
    "HARDWARE/DATELASTLOGGEDUSER": "Computer.last_login_at",
    # OPERATINGSYSTEM
    "OPERATINGSYSTEM/NAME": "OperatingSystem.name",
    "OPERATINGSYSTEM/FULL_NAME": "OperatingSystem.pretty_name",
    "OPERATINGSYSTEM/VERSION": "OperatingSystem.version_full",
    "OPERATINGSYSTEM/KERNEL_NAME": "OperatingSystem.kernel_name",
    "OPERATINGSYSTEM/KERNEL_VERSION": "OperatingSystem.kernel_release",
    "OPERATINGSYSTEM/ARCH": "OperatingSystem.arch",
    "OPERATINGSYSTEM/INSTALL_DATE": "OperatingSystem.install_date",
    "OPERATINGSYSTEM/FQDN": "Computer.fqdn",
    "OPERATINGSYSTEM/DNS_DOMAIN": "Computer.domain",
    "OPERATINGSYSTEM/HOSTID": "Computer.host_id",
    "OPERATINGSYSTEM/SSH_KEY": "Computer.ssh_host_key",
    "OPERATINGSYSTEM/BOOT_TIME": "Computer.boot_time",
    "OPERATINGSYSTEM/TIMEZONE/NAME": "Computer.timezone",
    "OPERATINGSYSTEM/TIMEZONE/OFFSET": "Computer.timezone",  # follows from the zone name
    # CPUS: one entry per socket in Fusion; one summary on our Computer
    "CPUS/NAME": "Computer.cpu_model",
    "CPUS/DESCRIPTION": "Computer.cpu_model",
    "CPUS/MANUFACTURER": "Computer.cpu_vendor",
    "CPUS/CORE": "Computer.cpu_cores",
    "CPUS/CORECOUNT": "Computer.cpu_cores",
    "CPUS/THREAD": "Computer.cpu_threads",
    "CPUS/SPEED": "Computer.cpu_mhz",
    "CPUS/ARCH": "OperatingSystem.arch",  # Fusion's arch module name ("i386" for x86_64 too)
    "CPUS/FAMILYNUMBER": "Computer.cpu_family",
    "CPUS/FAMILYNAME": "Computer.cpu_family_name",
    "CPUS/MODEL": "Computer.cpu_model_number",
    "CPUS/STEPPING": "Computer.cpu_stepping",
    "CPUS/ID": "Computer.cpu_id",
    "CPUS/CACHE": "Computer.cpu_cache_kb",
    "CPUS/EXTERNAL_CLOCK": "Computer.cpu_bus_mhz",
    "CPUS/SERIAL": "Computer.cpu_serial",
    # MEMORIES: DMI type 17, one entry per slot
    "MEMORIES/CAPACITY": "MemoryModule.size_bytes",  # MiB
    "MEMORIES/CAPTION": "MemoryModule.slot",
    "MEMORIES/NUMSLOTS": "MemoryModule.slot",
    "MEMORIES/DESCRIPTION": "MemoryModule.form_factor",
    "MEMORIES/FORMFACTOR": "MemoryModule.form_factor",
    "MEMORIES/TYPE": "MemoryModule.type",
    "MEMORIES/SPEED": "MemoryModule.speed_mts",
    "MEMORIES/MANUFACTURER": "MemoryModule.manufacturer",
    "MEMORIES/MODEL": "MemoryModule.part_number",
    "MEMORIES/SERIALNUMBER": "MemoryModule.serial",
    "MEMORIES/MEMORYCORRECTION": "Computer.memory_ecc",
    # STORAGES: block devices (matched to our Disk by name)
    "STORAGES/NAME": "Disk.name",
    "STORAGES/DISKSIZE": "Disk.size_bytes",  # MB
    "STORAGES/MANUFACTURER": "Disk.vendor",
    "STORAGES/MODEL": "Disk.model",
    "STORAGES/SERIALNUMBER": "Disk.serial",
    "STORAGES/SERIAL": "Disk.serial",
    "STORAGES/FIRMWARE": "Disk.firmware",
    "STORAGES/WWN": "Disk.wwn",
    "STORAGES/TYPE": "Disk.type",  # disk, cdrom, ...
    "STORAGES/DESCRIPTION": "Disk.interface",  # SATA, SCSI, USB, Virtual (virtio)
    "STORAGES/INTERFACE": "Disk.interface",
    "STORAGES/SCSI_COID": "Disk.scsi_address",
    "STORAGES/SCSI_CHID": "Disk.scsi_address",
    "STORAGES/SCSI_UNID": "Disk.scsi_address",
    "STORAGES/SCSI_LUN": "Disk.scsi_address",
    "STORAGES/ENCRYPT_NAME": "Disk.encryption",
    "STORAGES/ENCRYPT_ALGO": "Disk.encryption",
    "STORAGES/ENCRYPT_STATUS": "Disk.encryption",
    "STORAGES/ENCRYPT_TYPE": "Disk.encryption",
    # DRIVES: mounted file systems (matched to our FileSystem by mount point)
    "DRIVES/TYPE": "FileSystem.mount",  # Fusion puts the mount point in TYPE on Unix
    "DRIVES/VOLUMN": "FileSystem.device",
    "DRIVES/FILESYSTEM": "FileSystem.fs_type",
    "DRIVES/TOTAL": "FileSystem.size_bytes",  # MB
    "DRIVES/FREE": "FileSystem.free_bytes",  # MB
    "DRIVES/LABEL": "FileSystem.label",
    "DRIVES/SERIAL": "FileSystem.uuid",
    "DRIVES/CREATEDATE": "FileSystem.created_at",
    "DRIVES/ENCRYPT_NAME": "FileSystem.encryption",
    "DRIVES/ENCRYPT_ALGO": "FileSystem.encryption",
    "DRIVES/ENCRYPT_STATUS": "FileSystem.encryption",
    "DRIVES/ENCRYPT_TYPE": "FileSystem.encryption",
    # NETWORKS: one entry per interface and address (matched by interface name and address)
    "NETWORKS/DESCRIPTION": "Interface.name",
    "NETWORKS/MACADDR": "Interface.mac",
    "NETWORKS/TYPE": "Interface.type",
    "NETWORKS/STATUS": "Interface.operstate",
    "NETWORKS/VIRTUALDEV": "Interface.virtual",
    "NETWORKS/MTU": "Interface.mtu",
    "NETWORKS/SPEED": "Interface.speed_mbps",
    "NETWORKS/DRIVER": "Interface.driver",
    "NETWORKS/MANUFACTURER": "Interface.vendor",
    "NETWORKS/MODEL": "Interface.model",
    "NETWORKS/PCIID": "Interface.pci_id",
    "NETWORKS/PCISLOT": "Interface.pci_slot",
    "NETWORKS/FIRMWARE": "Interface.firmware",
    "NETWORKS/WWN": "Interface.wwn",
    "NETWORKS/MANAGEMENT": "Interface.management",
    "NETWORKS/BASE": "Interface.parent",
    "NETWORKS/SLAVES": "Interface.bond_members",
    "NETWORKS/IPDHCP": "Interface.dhcp_server",
    "NETWORKS/WIFI_SSID": "Interface.wifi_ssid",
    "NETWORKS/WIFI_BSSID": "Interface.wifi_bssid",
    "NETWORKS/WIFI_MODE": "Interface.wifi_mode",
    "NETWORKS/WIFI_VERSION": "Interface.wifi_version",
    "NETWORKS/IPADDRESS": "IPAddress.address",
    "NETWORKS/IPADDRESS6": "IPAddress.address",
    "NETWORKS/IPMASK": "IPAddress.prefix_length",
    "NETWORKS/IPMASK6": "IPAddress.prefix_length",
    "NETWORKS/IPSUBNET": "IPAddress.prefix_length",  # address + prefix give the subnet
    "NETWORKS/IPSUBNET6": "IPAddress.prefix_length",
    "NETWORKS/IPGATEWAY": "Computer.default_gateway",
}

# Fields of those sections with no counterpart to expect, and why.
NOT_COMPARED: dict[str, str] = {
    "HARDWARE/CHECKSUM": "Fusion's bitmask of changed sections for its server, not a fact",
    "HARDWARE/ETIME": "seconds Fusion took; ours is collectors.*.duration_ms",
    "HARDWARE/USERDOMAIN": "Windows only",
    "HARDWARE/WINOWNER": "Windows only",
    "HARDWARE/WINPRODID": "Windows only",
    "HARDWARE/WINPRODKEY": "Windows only",
    "HARDWARE/WINCOMPANY": "Windows only",
    "HARDWARE/WINLANG": "Windows only",
    "OPERATINGSYSTEM/SERVICE_PACK": "Windows only",
    "MEMORIES/PURPOSE": "Windows only (WMI)",
    "MEMORIES/REMOVABLE": "Windows only (WMI)",
    "DRIVES/DESCRIPTION": "Windows only (WMI)",
    "DRIVES/LETTER": "Windows only",
    "DRIVES/SYSTEMDRIVE": "Windows only",
    "NETWORKS/PNPDEVICEID": "Windows only",
}

_ZERO_MAC = re.compile(r"^(00:){5}00$")


def fusion_value_is_unknown(key: str, value: str, entry: dict[str, str]) -> bool:
    """Values Fusion writes where it knows nothing; they count as empty (a field, not a fact)."""
    if key == "NETWORKS/MACADDR":
        return bool(_ZERO_MAC.match(value))  # loopback and tunnels
    if key == "NETWORKS/SPEED":
        return not value.isdigit() or int(value) == 0  # -1: unknown; 0: link down or virtual
    if key in ("HARDWARE/LASTLOGGEDUSER", "HARDWARE/DATELASTLOGGEDUSER"):
        # `last` printed no login, only its "wtmp begins <date>" trailer, which Fusion parses
        # as user "wtmp" logged in at that date.
        return entry.get("LASTLOGGEDUSER") == "wtmp"
    return False


# ---------------------------------------------------------------------------------------------
# Reading the two reports


@dataclass
class FusionInventory:
    sections: dict[str, list[dict[str, str]]]  # hardware section -> entries {FIELD: text}
    softwares: list[dict[str, str]]

    def __repr__(self) -> str:  # short: pytest prints it beside every failed assertion
        counts = ", ".join(f"{name} {len(entries)}" for name, entries in self.sections.items() if entries)
        return f"FusionInventory({counts}, SOFTWARES {len(self.softwares)})"


def _flatten(element: ET.Element, prefix: str = "") -> dict[str, str]:
    values = {}
    for child in element:
        name = f"{prefix}{child.tag}"
        if len(child):
            values.update(_flatten(child, f"{name}/"))
        else:
            values[name] = (child.text or "").strip()
    return values


def parse_fusion_xml(path: Path) -> FusionInventory:
    """Fusion's local inventory file (our own machine's output: trusted, plain xml.etree)."""
    content = ET.parse(path).getroot().find("CONTENT")
    if content is None:
        raise ValueError(f"{path}: no CONTENT element; is it a Fusion inventory?")
    sections = {name: [_flatten(e) for e in content.findall(name)] for name in HARDWARE_SECTIONS}
    return FusionInventory(sections, [_flatten(e) for e in content.findall("SOFTWARES")])


def non_empty_fusion_fields(inv: FusionInventory) -> dict[str, list[dict[str, str]]]:
    """{"SECTION/FIELD": [the entries where Fusion says something]} over the hardware sections."""
    found: dict[str, list[dict[str, str]]] = {}
    for section, entries in inv.sections.items():
        for entry in entries:
            for name, value in entry.items():
                key = f"{section}/{name}"
                if value and not fusion_value_is_unknown(key, value, entry):
                    found.setdefault(key, []).append(entry)
    return found


def dpkg_package_count() -> int:
    """`dpkg-query -W | wc -l`: every package dpkg knows, any state."""
    out = subprocess.run(["dpkg-query", "-W"], capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def our_deb_installs(report: dict) -> list[dict]:
    return [i for i in report["items"] if i["class"] == "SoftwareInstall"
            and str(i.get("identifiers", {}).get("package", "")).startswith("deb:")]


def fusion_deb_count(inv: FusionInventory) -> int:
    return sum(1 for s in inv.softwares if s.get("FROM") == "deb")


def _is_present(value: object) -> bool:
    return value is not None and value != "" and value != []


def _normal_ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).compressed
    except ValueError:
        return None


def _candidates(report: dict, section: str, entry: dict[str, str], cls: str, key: str) -> list[dict]:
    """Our items of `cls` that describe the same thing as this Fusion entry."""
    items = [i for i in report["items"] if i["class"] == cls]

    def attrs(item: dict) -> dict:
        return item.get("attributes", {})

    if cls == "Interface" and section == "NETWORKS":
        return [i for i in items if attrs(i).get("name") == entry.get("DESCRIPTION")]
    if cls == "IPAddress":
        raw = entry.get("IPADDR", "") if section == "HARDWARE" else (
            entry.get("IPADDRESS6") if key.endswith("6") else entry.get("IPADDRESS") or entry.get("IPADDRESS6"))
        wanted = {_normal_ip(a) for a in (raw or "").split("/") if a}
        return [i for i in items if attrs(i).get("address") in wanted]
    if cls == "Disk" and section == "STORAGES":
        return [i for i in items if attrs(i).get("name") == entry.get("NAME")]
    if cls == "FileSystem" and section == "DRIVES":
        return [i for i in items if attrs(i).get("mount") == entry.get("TYPE")]
    return items  # the Computer, the OperatingSystem, any MemoryModule


@dataclass
class FieldCheck:
    key: str  # SECTION/FIELD
    target: str | None  # Class.attr; None when not compared or unmapped
    fusion_value: str
    our_value: object = None
    present: bool = False
    missing_in: int = 0  # Fusion entries with the field whose counterpart lacks it
    entries: int = 0
    note: str = ""

    @property
    def status(self) -> str:
        if self.target is None:
            return "not compared" if self.key in NOT_COMPARED else "UNMAPPED"
        if self.present:
            return "yes"
        return "MISSING" if self.missing_in == self.entries else f"MISSING in {self.missing_in}/{self.entries}"


def compare_fields(inv: FusionInventory, report: dict) -> list[FieldCheck]:
    """One check per Fusion hardware field that is non-empty here, in FIELD_MAP order."""
    found = non_empty_fusion_fields(inv)
    order = {k: n for n, k in enumerate([*FIELD_MAP, *NOT_COMPARED])}
    checks = []
    for key in sorted(found, key=lambda k: (order.get(k, len(order)), k)):
        entries = found[key]
        section, name = key.split("/", 1)
        check = FieldCheck(key, FIELD_MAP.get(key), entries[0][name], entries=len(entries))
        if check.target is None:
            check.note = NOT_COMPARED.get(key, "add it to FIELD_MAP or NOT_COMPARED")
            checks.append(check)
            continue
        cls, attr = check.target.split(".", 1)
        for entry in entries:
            values = [c.get("attributes", {}).get(attr) for c in _candidates(report, section, entry, cls, name)]
            values = [v for v in values if _is_present(v)]
            if values:
                check.our_value = values[0] if check.our_value is None else check.our_value
            else:
                check.missing_in += 1
        check.present = check.missing_in == 0
        checks.append(check)
    return checks
