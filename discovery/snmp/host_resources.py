"""HOST-RESOURCES-MIB: memory, file systems, processors and disks of a server (net-snmp on Linux,
the Windows SNMP service), and the TCP/UDP listeners of TCP-MIB/UDP-MIB named after the process
in hrSWRunTable.

File systems follow the agent's FileSystem items: hrStorage rows of type fixedDisk, removable or
networkDisk whose description is a mount point; pseudo file systems (/dev/shm, /run, /sys/...)
are left out with the agent's own lists. `used_bytes`/`free_bytes` are measurements (cmdb.model).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from agent.collectors.hardware.filesystems import PSEUDO_PREFIXES
from agent.collectors.services import SocketEntry
from discovery.snmp import mibs
from discovery.snmp.values import Walk, column, index_numbers, integer, oid_value, table, text

HR_STORAGE_TYPES = {"1.3.6.1.2.1.25.2.1.4": "fixedDisk", "1.3.6.1.2.1.25.2.1.5": "removableDisk",
                    "1.3.6.1.2.1.25.2.1.7": "compactDisc", "1.3.6.1.2.1.25.2.1.9": "flashMemory",
                    "1.3.6.1.2.1.25.2.1.10": "networkDisk", "1.3.6.1.2.1.25.2.1.2": "ram",
                    "1.3.6.1.2.1.25.2.1.3": "virtualMemory", "1.3.6.1.2.1.25.2.1.1": "other"}
FILE_SYSTEM_STORAGE = {"fixedDisk", "removableDisk", "networkDisk"}
HR_FS_TYPES = {1: "other", 2: "unknown", 3: "berkeleyFFS", 4: "sys5FS", 5: "fat", 6: "hpfs", 7: "hfs",
               8: "mfs", 9: "ntfs", 10: "vnode", 11: "journaled", 12: "iso9660", 13: "rockRidge", 14: "nfs",
               15: "netware", 16: "afs", 17: "dfs", 18: "appleshare", 19: "rfs", 20: "dgcfs", 21: "bfs",
               22: "fat32", 23: "linuxExt2"}
HR_DEVICE_PROCESSOR = "1.3.6.1.2.1.25.3.1.3"
HR_DEVICE_DISK = "1.3.6.1.2.1.25.3.1.6"
HR_DEVICE_PRINTER = "1.3.6.1.2.1.25.3.1.5"
# Mounts that are runtime state, not storage, whatever type the agent gives them.
RUNTIME_MOUNTS = ("/dev/shm", "/run", "/sys/fs/cgroup", "/proc")
_DISK_NAME = re.compile(r"/dev/([A-Za-z0-9!_-]+)")


@dataclass(frozen=True)
class StorageArea:
    index: int
    kind: str
    descr: str
    size_bytes: int | None
    used_bytes: int | None
    fs_type: str | None = None


@dataclass(frozen=True)
class HrDevice:
    index: int
    type: str | None
    descr: str | None
    capacity_bytes: int | None = None


def parse_memory_bytes(walk: Walk) -> int | None:
    kib = integer(walk.get(mibs.HR_MEMORY_SIZE))
    return kib * 1024 if kib and kib > 0 else None


def parse_storage(walk: Walk) -> list[StorageArea]:
    fs_types = {}
    for row in table(walk, mibs.HR_FS_ENTRY, mibs.HR_FS_COLUMNS).values():
        storage = integer(row.get("storage_index"))
        kind = oid_value(row.get("type"))
        if storage and kind:
            last = kind.rsplit(".", 1)[-1]
            fs_types[storage] = HR_FS_TYPES.get(int(last)) if last.isdigit() else None
    areas = []
    for index, row in table(walk, mibs.HR_STORAGE_ENTRY, mibs.HR_STORAGE_COLUMNS).items():
        numbers = index_numbers(index)
        descr = text(row.get("descr"))
        if not numbers or len(numbers) != 1 or not descr:
            continue
        units, size, used = integer(row.get("units")), integer(row.get("size")), integer(row.get("used"))
        # Some agents send sizes as signed 32-bit values that wrapped: read them unsigned.
        size = size + (1 << 32) if size is not None and size < 0 else size
        used = used + (1 << 32) if used is not None and used < 0 else used
        areas.append(StorageArea(
            index=numbers[0], kind=HR_STORAGE_TYPES.get(oid_value(row.get("type")) or "", "other"), descr=descr,
            size_bytes=size * units if units and size is not None and units > 0 else None,
            used_bytes=used * units if units and used is not None and units > 0 else None,
            fs_type=fs_types.get(numbers[0]),
        ))
    return sorted(areas, key=lambda a: a.index)


def file_systems(areas: list[StorageArea]) -> list[StorageArea]:
    """The storage areas that are mounted file systems worth a FileSystem item."""
    out = []
    for area in areas:
        mount = area.descr
        if area.kind not in FILE_SYSTEM_STORAGE:
            continue
        if len(mount) >= 2 and mount[1] == ":":  # Windows: "C:\\ Label:System  Serial Number 5c0d..."
            mount = mount[:2] + "\\"
        elif not mount.startswith("/") or mount.startswith(PSEUDO_PREFIXES) or mount in RUNTIME_MOUNTS:
            continue
        out.append(StorageArea(area.index, area.kind, mount, area.size_bytes, area.used_bytes, area.fs_type))
    return out


def parse_devices(walk: Walk) -> list[HrDevice]:
    capacities = {index: integer(v) for index, v in column(walk, mibs.HR_DISK_STORAGE_CAPACITY).items()}
    devices = []
    for index, row in table(walk, mibs.HR_DEVICE_ENTRY, mibs.HR_DEVICE_COLUMNS).items():
        numbers = index_numbers(index)
        if not numbers or len(numbers) != 1:
            continue
        kib = capacities.get(index)
        devices.append(HrDevice(numbers[0], oid_value(row.get("type")), text(row.get("descr")),
                                kib * 1024 if kib and kib > 0 else None))
    return sorted(devices, key=lambda d: d.index)


def processors(devices: list[HrDevice]) -> list[HrDevice]:
    return [d for d in devices if d.type == HR_DEVICE_PROCESSOR]


def disk_name(device: HrDevice) -> str | None:
    """The kernel name of a disk from net-snmp's description ("SCSI disk (/dev/sda)" -> "sda")."""
    match = _DISK_NAME.search(device.descr or "")
    return match[1] if match else None


def processes(walk: Walk) -> dict[int, str]:
    """{hrSWRunIndex (the pid on Linux): process name}."""
    names = {}
    for index, row in table(walk, mibs.HR_SW_RUN_ENTRY, mibs.HR_SW_RUN_COLUMNS).items():
        name = text(row.get("name"))
        if index.isdigit() and name:
            names[int(index)] = name
    return names


def _endpoint(numbers: tuple[int, ...]) -> tuple[str, int, tuple[int, ...]] | None:
    """(address, port, rest) from an InetAddressType.InetAddress.InetPortNumber index prefix."""
    if len(numbers) < 3:
        return None
    kind, length = numbers[0], numbers[1]
    raw = numbers[2:2 + length]
    if len(raw) != length or len(numbers) < 3 + length or any(b > 255 for b in raw):
        return None
    if kind in (1, 3) and length >= 4:
        address = ipaddress.IPv4Address(bytes(raw[:4])).compressed
    elif kind in (2, 4) and length >= 16:
        address = ipaddress.IPv6Address(bytes(raw[:16])).compressed
    elif length == 0:
        address = "0.0.0.0"
    else:
        return None
    return address, numbers[2 + length], numbers[3 + length:]


def listeners(walk: Walk) -> list[SocketEntry]:
    """TCP listeners and UDP endpoints as the agent's SocketEntry (pid = hrSWRunIndex)."""
    sockets: dict[tuple[str, str, int], SocketEntry] = {}
    for index, value in column(walk, mibs.TCP_LISTENER_PROCESS).items():
        parsed = _endpoint(index_numbers(index) or ())
        if parsed:
            address, port, _ = parsed
            sockets[("tcp", address, port)] = SocketEntry("tcp", address, port, None, None, "LISTEN",
                                                          integer(value) or None)
    for index, value in column(walk, mibs.UDP_ENDPOINT_PROCESS).items():
        parsed = _endpoint(index_numbers(index) or ())
        if not parsed:
            continue
        address, port, rest = parsed
        remote = _endpoint(rest) if rest else None
        if remote and remote[1]:  # a connected UDP socket is a client, not a service
            continue
        sockets.setdefault(("udp", address, port), SocketEntry("udp", address, port, None, None, "NONE",
                                                               integer(value) or None))
    if not sockets:  # RFC 1213 tables: tcpConnState 2 = listen; udpTable lists bound sockets
        for index, value in column(walk, mibs.TCP_CONN_STATE).items():
            numbers = index_numbers(index) or ()
            if integer(value) == 2 and len(numbers) == 10 and all(n <= 255 for n in numbers[:4]):
                address = ipaddress.IPv4Address(bytes(numbers[:4])).compressed
                sockets[("tcp", address, numbers[4])] = SocketEntry("tcp", address, numbers[4], None, None,
                                                                    "LISTEN", None)
        for index in column(walk, mibs.UDP_LOCAL_ADDRESS):
            numbers = index_numbers(index) or ()
            if len(numbers) == 5 and all(n <= 255 for n in numbers[:4]):
                address = ipaddress.IPv4Address(bytes(numbers[:4])).compressed
                sockets[("udp", address, numbers[4])] = SocketEntry("udp", address, numbers[4], None, None,
                                                                    "NONE", None)
    return list(sockets.values())
