"""Disks: interface, type and vendor from a sysfs tree laid out as the kernel does (real symlinks,
so `device/..` resolves the way it does on a host), bus detection on recorded /sys/devices paths,
and pci.ids lookups on an excerpt of the real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.hardware.disks import disk_interface, disk_type, read_disks
from agent.collectors.hardware.pci import PCI_IDS_PATHS, parse_pci_id, pci_vendor_name
from agent.context import LocalContext

PCI_IDS = Path(__file__).resolve().parents[2] / "fixtures" / "host" / "handmade" / "pci" / "pci.ids"

# A KVM guest with a virtio disk, and a workstation's NVMe SSD, SATA disk, SATA DVD drive and USB
# stick; the paths are the ones the kernel uses (/sys/block/X -> ../devices/...).
VIRTIO = "devices/pci0000:00/0000:00:02.0"
NVME = "devices/pci0000:00/0000:00:1d.0/0000:3d:00.0"
AHCI = "devices/pci0000:00/0000:00:17.0"
SDA = f"{AHCI}/ata1/host0/target0:0:0/0:0:0:0"
SR0 = f"{AHCI}/ata2/host1/target1:0:0/1:0:0:0"
STICK = "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0"
TREE = {
    f"{VIRTIO}/vendor": "0x1af4\n", f"{VIRTIO}/subsystem_vendor": "0x1af4\n",
    f"{VIRTIO}/virtio1/vendor": "0x1af4\n", f"{VIRTIO}/virtio1/uevent": "DRIVER=virtio_blk\n",
    f"{VIRTIO}/virtio1/block/vda/size": "536870912\n",
    f"{NVME}/vendor": "0x144d\n", f"{NVME}/subsystem_vendor": "0x144d\n",
    f"{NVME}/nvme/nvme0/uevent": "MAJOR=240\n", f"{NVME}/nvme/nvme0/model": "Samsung SSD 970 EVO Plus 1TB\n",
    f"{NVME}/nvme/nvme0/serial": "S4EWNX0N123456\n", f"{NVME}/nvme/nvme0/nvme0n1/size": "1953525168\n",
    f"{AHCI}/vendor": "0x8086\n", f"{AHCI}/subsystem_vendor": "0x8086\n",
    f"{SDA}/uevent": "DEVTYPE=scsi_device\n", f"{SDA}/vendor": "ATA     \n", f"{SDA}/type": "0\n",
    f"{SDA}/model": "WDC WD10EZEX-08W\n", f"{SDA}/block/sda/size": "1953525168\n", f"{SDA}/block/sda/dev": "8:0\n",
    f"{SR0}/uevent": "DEVTYPE=scsi_device\n", f"{SR0}/vendor": "HL-DT-ST\n", f"{SR0}/type": "5\n",
    f"{SR0}/block/sr0/size": "0\n",
    f"{STICK}/uevent": "DEVTYPE=scsi_device\n", f"{STICK}/vendor": "Kingston\n", f"{STICK}/type": "0\n",
    f"{STICK}/block/sdb/size": "60437492\n",
    "run/udev/data/b8:0": "E:ID_BUS=ata\nE:ID_ATA_SATA=1\nE:ID_TYPE=disk\n",
}
LINKS = {
    "sys/block/vda": f"../{VIRTIO}/virtio1/block/vda",
    f"{VIRTIO}/virtio1/block/vda/device": "../../../virtio1",
    f"{VIRTIO}/virtio1/driver": "../../../../bus/virtio/drivers/virtio_blk",
    "sys/block/nvme0n1": f"../{NVME}/nvme/nvme0/nvme0n1",
    f"{NVME}/nvme/nvme0/nvme0n1/device": "../../nvme0",
    f"{NVME}/nvme/nvme0/device": "../../../0000:3d:00.0",
    "sys/block/sda": f"../{SDA}/block/sda",
    f"{SDA}/block/sda/device": "../../../0:0:0:0",
    "sys/block/sr0": f"../{SR0}/block/sr0",
    f"{SR0}/block/sr0/device": "../../../1:0:0:0",
    "sys/block/sdb": f"../{STICK}/block/sdb",
    f"{STICK}/block/sdb/device": "../../../6:0:0:0",
}


def _host(root: Path, with_pci_ids: bool = True) -> LocalContext:
    for rel, text in TREE.items():
        path = root / (rel if rel.startswith(("run/", "sys/")) else f"sys/{rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel, target in LINKS.items():
        path = root / (rel if rel.startswith("sys/block") else f"sys/{rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    if with_pci_ids:
        (root / "usr/share/misc").mkdir(parents=True)
        (root / "usr/share/misc/pci.ids").write_text(PCI_IDS.read_text())
    return LocalContext(agent_id="6f1c2d3e-0000-4000-8000-000000000001", sysroot=root)


def test_interface_type_and_vendor_of_each_kind_of_disk(tmp_path):
    disks = {d["name"]: d for d in read_disks(_host(tmp_path))}
    assert sorted(disks) == ["nvme0n1", "sda", "sdb", "sr0", "vda"]
    summary = {name: (d["interface"], d["type"], d["vendor"]) for name, d in disks.items()}
    assert summary == {
        "vda": ("virtio", "disk", "Red Hat, Inc."),  # virtio's PCI vendor, through pci.ids
        "nvme0n1": ("NVMe", "disk", "Samsung Electronics Co Ltd"),  # the PCI function's subsystem vendor
        "sda": ("SATA", "disk", None),  # "ATA" is the bus; Intel made the controller, not the disk
        "sr0": ("ATA", "cdrom", "HL-DT-ST"),  # no udev record: SATA or PATA is not known
        "sdb": ("USB", "disk", "Kingston"),
    }
    assert disks["nvme0n1"]["model"] == "Samsung SSD 970 EVO Plus 1TB"


def test_pci_vendor_is_absent_without_pci_ids(tmp_path):
    disks = {d["name"]: d for d in read_disks(_host(tmp_path, with_pci_ids=False))}
    assert disks["vda"]["vendor"] is None and disks["vda"]["interface"] == "virtio"


@pytest.mark.parametrize(("path", "driver", "udev", "expected"), [
    ("../devices/pci0000:00/0000:00:02.0/virtio1/block/vda", None, {}, "virtio"),
    ("../devices/platform/a003e00.virtio_mmio/virtio1/block/vda", None, {}, "virtio"),
    ("../devices/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0/block/sda", None, {}, "SCSI"),
    ("../devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", None, {}, "NVMe"),
    ("../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1", None, {}, "NVMe"),
    ("../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", None,
     {"ID_ATA_SATA": "1"}, "SATA"),
    ("../devices/pci0000:00/0000:00:01.1/ata1/host0/target0:0:0/0:0:0:0/block/sda", None, {}, "ATA"),
    ("../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", None, {}, "USB"),
    ("../devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sda",
     None, {}, "SAS"),
    ("../devices/platform/host3/session1/target3:0:0/3:0:0:0/block/sdc", None, {}, "iSCSI"),
    ("../devices/platform/soc/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0", None, {}, "MMC"),
    ("../devices/vbd-51712/block/xvda", None, {}, "Xen"),
    ("../devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b-1e82-4818-a1c3-63d806ec15bb/host0/"
     "target0:0:0/0:0:0:0/block/sda", None, {}, "SCSI"),
    (None, "virtio_blk", {}, "virtio"),  # no link to read (an SSH host without readlink)
    (None, None, {"ID_BUS": "usb"}, "USB"),
    (None, None, {}, None),
])
def test_interface_from_the_device_path(path, driver, udev, expected):
    assert disk_interface(path, driver, udev) == expected


def test_type_from_scsi_type_udev_or_bus():
    assert disk_type("sda", "0", {}, "SATA") == "disk"
    assert disk_type("sr0", "5", {}, "ATA") == "cdrom"
    assert disk_type("st0", "1", {}, "SAS") == "tape"
    assert disk_type("sdc", None, {"ID_TYPE": "cd"}, None) == "cdrom"
    assert disk_type("mmcblk0", "SD", {}, "MMC") == "disk"  # MMC's `type` file names the card kind
    assert disk_type("sdx", None, {}, "SCSI") is None  # a SCSI device of unknown type: unknown


def test_pci_ids_lookups():
    text = PCI_IDS.read_text()
    assert pci_vendor_name(text, "1af4") == "Red Hat, Inc."
    assert pci_vendor_name(text, "144D") == "Samsung Electronics Co Ltd"
    assert pci_vendor_name(text, "1000") is None  # only a device id (indented) of 1af4 here
    assert pci_vendor_name(text, "0001") is None and pci_vendor_name("", "1af4") is None
    assert [parse_pci_id(t) for t in ("0x1af4\n", "1AF4", "0xffff", "0x554d4551", "QEMU", None)] == \
        ["1af4", "1af4", None, None, None, None]


def test_pci_ids_of_this_machine():
    path = next((Path(p) for p in PCI_IDS_PATHS if Path(p).exists()), None)
    if path is None:
        pytest.skip("no pci.ids here (install pciutils or hwdata)")
    assert pci_vendor_name(path.read_text(encoding="utf-8", errors="replace"), "8086") == "Intel Corporation"
