"""Disks from /sys/block (and the udev database for serials and WWNs): hardware-backed block
devices only. Pure helpers take text; `read_disks` does the reading through the context."""

from __future__ import annotations

from agent.context import Context
from cmdb.junk import clean

# Block devices that are not disks: loop files, RAM disks, compressed swap, device-mapper and md.
VIRTUAL_BLOCK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "nbd", "fd")


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


def read_disks(ctx: Context) -> list[dict[str, object]]:
    """Disks from /sys/block: hardware-backed block devices only (a `device` link exists)."""
    disks = []
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
        vendor = _sys_text(ctx, f"{base}/device/vendor")
        if vendor and (vendor.upper() == "ATA" or vendor.lower().startswith("0x")):
            vendor = None  # a bus name or a PCI vendor id, not the drive's maker
        serial = (_sys_text(ctx, f"{base}/device/serial") or _sys_text(ctx, f"{base}/serial")
                  or clean(udev.get("ID_SERIAL_SHORT")))
        wwn = normalize_wwn(udev.get("ID_WWN") or _sys_value(ctx, f"{base}/wwid")
                            or _sys_value(ctx, f"{base}/device/wwid"))
        size = int(sectors) * 512 if sectors and sectors.isdigit() else 0
        disks.append({
            "name": name,
            "size_bytes": size or None,  # 0: no medium in the drive, size unknown
            "model": _sys_text(ctx, f"{base}/device/model") or clean(udev.get("ID_MODEL")),
            "vendor": vendor,
            "serial": serial,
            "firmware": _sys_text(ctx, f"{base}/device/firmware_rev") or _sys_text(ctx, f"{base}/device/rev"),
            "wwn": wwn,
            "rotational": _flag(_sys_value(ctx, f"{base}/queue/rotational")),
            "removable": _flag(_sys_value(ctx, f"{base}/removable")),
        })
    return disks
