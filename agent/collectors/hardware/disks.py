"""Disks from /sys/block (and the udev database for serials and WWNs): hardware-backed block
devices only. Pure helpers take text; `read_disks` does the reading through the context.

The interface (bus) comes from where the kernel put the device (its /sys/devices path), the
type from the SCSI peripheral type, the vendor from the device's inquiry data or, for a disk
that is a PCI function of its own (virtio-blk, NVMe), from that function's vendor in pci.ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.collectors.hardware.pci import parse_pci_id, pci_vendor_lookup
from agent.context import Context
from cmdb.junk import clean

# Block devices that are not disks: loop files, RAM disks, compressed swap, device-mapper and md.
VIRTUAL_BLOCK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "nbd", "fd")
# SCSI peripheral device types (SPC-4 table 49), as /sys/block/X/device/type prints them.
SCSI_DEVICE_TYPES = {"0": "disk", "1": "tape", "4": "worm", "5": "cdrom", "7": "optical",
                     "14": "disk"}  # 14: reduced block commands, a simplified disk
UDEV_TYPES = {"disk": "disk", "cd": "cdrom", "tape": "tape", "optical": "optical", "floppy": "floppy"}
# Path components of /sys/devices that name the bus a disk hangs on, first match wins: a USB
# stick is also a SCSI host, a virtio-scsi disk also sits under a virtio device.
_BUS_IN_PATH: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), bus) for p, bus in (
    (r"/usb\d+/", "USB"),
    (r"/fw\d+/|/firewire", "IEEE1394"),
    (r"/session\d+/", "iSCSI"),
    (r"/end_device-|/sas_|/port-\d+:\d+/", "SAS"),
    (r"/ata\d+/", "ATA"),
    (r"/nvme/|/nvme-subsys", "NVMe"),
    (r"/mmc_host/|/mmc\d+/", "MMC"),
    (r"/vbd-\d+/", "Xen"),
    (r"/host\d+/target\d+", "SCSI"),
    (r"/virtio\d+/block/", "virtio"),
))
_BUS_OF_DRIVER = {"virtio_blk": "virtio", "nvme": "NVMe", "mmcblk": "MMC", "vbd": "Xen",
                  "usb-storage": "USB", "uas": "USB"}


def parse_udev_properties(text: str) -> dict[str, str]:
    """A udev database record (/run/udev/data/b8:0): its E:KEY=value properties."""
    return dict(line[2:].split("=", 1) for line in text.splitlines()
                if line.startswith("E:") and "=" in line)


def normalize_wwn(value: str | None) -> str | None:
    """One spelling for a World Wide Name whatever the source: udev's "0x5000c500a1b2c3d4" and
    sysfs's "naa.5000c500a1b2c3d4" both give "0x5000c500a1b2c3d4"; EUI/T10 ids stay as they are."""
    value = clean(value)
    if value is None:
        return None
    value = value.strip().lower()
    if value.startswith("naa."):
        return "0x" + value[4:]
    return value


def _sys_text(ctx: Context, path: str) -> str | None:
    """A vendor string from sysfs (model, serial), junk removed."""
    text = ctx.read_file(path)
    return clean(text) if text is not None else None


def _sys_value(ctx: Context, path: str) -> str | None:
    """A kernel-made value from sysfs (a number, a flag): trimmed, never junk-filtered."""
    text = ctx.read_file(path)
    return text.strip() or None if text is not None else None


def _flag(value: str | None) -> bool | None:
    return value == "1" if value in ("0", "1") else None


def disk_interface(device_path: str | None, driver: str | None, udev: dict[str, str]) -> str | None:
    """The bus of a disk: from its /sys/devices path (the /sys/block/X link target), else from
    the driver of its device. libata disks are "SATA" when udev says so, else plain "ATA"."""
    path = (device_path or "") + "/"
    bus = next((bus for pattern, bus in _BUS_IN_PATH if pattern.search(path)), None)
    bus = bus or _BUS_OF_DRIVER.get(driver or "")
    if bus is None and udev.get("ID_BUS") in ("ata", "scsi", "usb"):
        bus = udev["ID_BUS"].upper()
    if bus == "ATA" and udev.get("ID_ATA_SATA") == "1":
        return "SATA"
    return bus


def disk_type(name: str, scsi_type: str | None, udev: dict[str, str], interface: str | None) -> str | None:
    """disk, cdrom, tape...: the SCSI peripheral type, else udev's ID_TYPE; block devices of
    buses that carry nothing but disks (virtio-blk, NVMe, MMC, Xen) are disks."""
    if scsi_type in SCSI_DEVICE_TYPES:
        return SCSI_DEVICE_TYPES[scsi_type]
    if kind := UDEV_TYPES.get(udev.get("ID_TYPE", "")):
        return kind
    if name.startswith("sr"):
        return "cdrom"
    return "disk" if interface in ("virtio", "NVMe", "MMC", "Xen") else None


def _pci_function(base: str, interface: str | None) -> str | None:
    """The sysfs directory of the PCI function that is the disk itself, when there is one: the
    maker of a SATA or SCSI controller is not the maker of the disks behind it."""
    if interface == "virtio":
        return f"{base}/device/.."  # vdX -> virtioN, a child of the PCI function
    if interface == "NVMe":
        return f"{base}/device/device"  # nvmeXnY -> nvmeX, whose `device` is the PCI function
    return None


def _disk_vendor(ctx: Context, base: str, interface: str | None,
                 pci_vendor: Callable[[str], str | None]) -> str | None:
    """The maker: the device's inquiry vendor ("SEAGATE", "QEMU"; "ATA" is the bus), else the
    name of a PCI vendor id: virtio writes one as its vendor, an NVMe disk is a PCI function."""
    raw = (ctx.read_file(f"{base}/device/vendor") or "").strip()
    vendor = clean(raw)
    if vendor and vendor.upper() != "ATA" and not vendor.lower().startswith("0x"):
        return vendor
    ids = [parse_pci_id(raw)]
    if function := _pci_function(base, interface):  # subsystem vendor: the brand on the board
        ids += [parse_pci_id(ctx.read_file(f"{function}/{f}")) for f in ("subsystem_vendor", "vendor")]
    return next((name for vid in ids if vid and (name := pci_vendor(vid))), None)


def read_disks(ctx: Context) -> list[dict[str, object]]:
    """Disks from /sys/block: hardware-backed block devices only (a `device` link exists)."""
    disks = []
    pci_vendor = pci_vendor_lookup(ctx)
    for name in ctx.list_dir("/sys/block") or []:
        if name.startswith(VIRTUAL_BLOCK_PREFIXES):
            continue
        base = f"/sys/block/{name}"
        if ctx.read_file(f"{base}/device/uevent") is None:
            continue  # no backing device: a virtual block device
        sectors = _sys_value(ctx, f"{base}/size")
        udev: dict[str, str] = {}
        if dev := _sys_value(ctx, f"{base}/dev"):
            udev = parse_udev_properties(ctx.read_file(f"/run/udev/data/b{dev}") or "")
        driver = ctx.read_link(f"{base}/device/driver")
        interface = disk_interface(ctx.read_link(base), driver.rsplit("/", 1)[-1] if driver else None, udev)
        serial = (_sys_text(ctx, f"{base}/device/serial") or _sys_text(ctx, f"{base}/serial")
                  or clean(udev.get("ID_SERIAL_SHORT")))
        wwn = normalize_wwn(udev.get("ID_WWN") or _sys_value(ctx, f"{base}/wwid")
                            or _sys_value(ctx, f"{base}/device/wwid"))
        size = int(sectors) * 512 if sectors and sectors.isdigit() else 0
        disks.append({
            "name": name,
            "size_bytes": size or None,  # 0: no medium in the drive, size unknown
            "model": _sys_text(ctx, f"{base}/device/model") or clean(udev.get("ID_MODEL")),
            "vendor": _disk_vendor(ctx, base, interface, pci_vendor),
            "serial": serial,
            "firmware": _sys_text(ctx, f"{base}/device/firmware_rev") or _sys_text(ctx, f"{base}/device/rev"),
            "wwn": wwn,
            "rotational": _flag(_sys_value(ctx, f"{base}/queue/rotational")),
            "removable": _flag(_sys_value(ctx, f"{base}/removable")),
            "type": disk_type(name, _sys_value(ctx, f"{base}/device/type"), udev, interface),
            "interface": interface,
        })
    return disks
