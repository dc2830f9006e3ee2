"""Hardware: CPU, memory, swap, DMI (system, BIOS, board, chassis) and disks.

Facts come from /proc, /sys/class/dmi/id and /sys/block through the context, so a recorded tree
or an SSH host works as well as this machine; psutil is used only when the context is local and
/proc did not say. DMI is absent on many VMs, containers and ARM boards: its attributes are then
simply absent. Every DMI string goes through cmdb.junk, so "To Be Filled By O.E.M." or an
all-zero UUID never reaches the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import CommandError, Context
from cmdb.junk import clean, clean_uuid

DMI_DIR = "/sys/class/dmi/id"
DMI_FILES = ("sys_vendor", "product_name", "product_version", "product_serial", "product_uuid",
             "product_sku", "bios_vendor", "bios_version", "bios_date", "chassis_type",
             "chassis_vendor", "chassis_serial", "chassis_asset_tag", "board_vendor",
             "board_name", "board_serial")
# SMBIOS 3.x, table 17 (System Enclosure or Chassis Types); 1 Other and 2 Unknown say nothing.
CHASSIS_TYPES = {
    3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box", 6: "Mini Tower", 7: "Tower",
    8: "Portable", 9: "Laptop", 10: "Notebook", 11: "Hand Held", 12: "Docking Station",
    13: "All in One", 14: "Sub Notebook", 15: "Space-saving", 16: "Lunch Box",
    17: "Main Server Chassis", 18: "Expansion Chassis", 19: "SubChassis",
    20: "Bus Expansion Chassis", 21: "Peripheral Chassis", 22: "RAID Chassis",
    23: "Rack Mount Chassis", 24: "Sealed-case PC", 25: "Multi-system chassis",
    26: "Compact PCI", 27: "Advanced TCA", 28: "Blade", 29: "Blade Enclosure", 30: "Tablet",
    31: "Convertible", 32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC", 35: "Mini PC",
    36: "Stick PC",
}
CPU_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon",
               "CentaurHauls": "Centaur", "  Shanghai  ": "Zhaoxin", "GenuineTMx86": "Transmeta",
               "CyrixInstead": "Cyrix"}
ARM_IMPLEMENTERS = {"0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu",
                    "0x48": "HiSilicon", "0x4e": "NVIDIA", "0x50": "Applied Micro",
                    "0x51": "Qualcomm", "0x53": "Samsung", "0x56": "Marvell", "0x61": "Apple",
                    "0x69": "Intel", "0xc0": "Ampere"}
# Block devices that are not disks: loop files, RAM disks, compressed swap, device-mapper and md.
VIRTUAL_BLOCK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "nbd", "fd")


@dataclass(frozen=True)
class CpuSummary:
    model: str | None = None
    vendor: str | None = None
    threads: int | None = None  # logical processors the kernel lists
    cores: int | None = None  # physical cores, all sockets
    sockets: int | None = None
    mhz: float | None = None  # current clock of the first processor, when /proc shows one
    hypervisor: bool = False  # the CPUID "hypervisor" bit: running under a hypervisor


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip().lower(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def parse_cpuinfo(text: str) -> CpuSummary:
    """/proc/cpuinfo of any architecture, summarised for the Computer item."""
    blocks = _cpuinfo_blocks(text)
    procs = [b for b in blocks if "processor" in b and b["processor"].isdigit()]
    if not blocks:
        return CpuSummary()
    first = procs[0] if procs else blocks[0]
    merged = {k: v for b in reversed(blocks) for k, v in b.items()}  # header lines on ARM/SPARC
    model = None
    for key in ("model name", "cpu model", "cpu"):
        if clean(first.get(key)):
            model = " ".join(first[key].split())  # Intel pads names: "CPU           E5504  @"
            break
    if model is None and not first.get("processor", "").isdigit():
        model = clean(first.get("processor"))  # old ARM kernels: "Processor : XScale-80219 ..."
    vendor = CPU_VENDORS.get(first.get("vendor_id", ""), clean(first.get("vendor_id")))
    if vendor is None and "cpu implementer" in merged:
        vendor = ARM_IMPLEMENTERS.get(merged["cpu implementer"].lower())
    packages = {b["physical id"] for b in procs if "physical id" in b}
    sockets = len(packages) or None
    cores = None
    if packages:
        per_package = {b["physical id"]: b.get("cpu cores") for b in procs if "physical id" in b}
        if all(v and v.isdigit() for v in per_package.values()):
            cores = sum(int(v) for v in per_package.values())  # counts offline cores as well
        else:
            cores = len({(b["physical id"], b.get("core id")) for b in procs if "physical id" in b})
    mhz = None
    for key in ("cpu mhz", "clock"):
        match = re.match(r"([\d.]+)", first.get(key, ""))
        if match:
            mhz = float(match[1])
            break
    flags = set(first.get("flags", "").split())
    return CpuSummary(model=model, vendor=vendor, threads=len(procs) or None, cores=cores,
                      sockets=sockets, mhz=mhz, hypervisor="hypervisor" in flags)


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes: {"MemTotal": ..., "SwapTotal": ...}."""
    values = {}
    for match in re.finditer(r"^(\w+):\s+(\d+)(?:\s+(kB))?\s*$", text, re.M):
        values[match[1]] = int(match[2]) * (1024 if match[3] else 1)
    return values


def dmi_facts(raw: dict[str, str | None]) -> dict[str, object]:
    """Computer attributes from /sys/class/dmi/id file contents ({file name: text or None}),
    junk removed. The system serial falls back to the chassis serial, as dmidecode users expect."""
    v = {name: clean(text) for name, text in raw.items() if text is not None}
    chassis, chassis_code = None, (raw.get("chassis_type") or "").strip()
    if chassis_code.isdigit():
        chassis = CHASSIS_TYPES.get(int(chassis_code) & 0x7F)  # bit 7 is the lock flag
    return {
        "manufacturer": v.get("sys_vendor"),
        "model": v.get("product_name"),
        "model_version": v.get("product_version"),
        "sku": v.get("product_sku"),
        "serial": v.get("product_serial") or v.get("chassis_serial"),
        "system_uuid": clean_uuid(v.get("product_uuid")),
        "chassis_type": chassis,
        "chassis_vendor": v.get("chassis_vendor"),
        "asset_tag": v.get("chassis_asset_tag"),
        "bios_vendor": v.get("bios_vendor"),
        "bios_version": v.get("bios_version"),
        "bios_date": v.get("bios_date"),
        "board_vendor": v.get("board_vendor"),
        "board_model": v.get("board_name"),
        "board_serial": v.get("board_serial"),
    }


def read_dmi(ctx: Context) -> dict[str, object]:
    """DMI facts, or {} when the machine has no readable DMI (serials need root)."""
    if ctx.list_dir(DMI_DIR) is None:
        return {}
    return dmi_facts({name: ctx.read_file(f"{DMI_DIR}/{name}") for name in DMI_FILES})


def parse_udev_properties(text: str) -> dict[str, str]:
    """A udev database record (/run/udev/data/b8:0): its E:KEY=value properties."""
    return dict(line[2:].split("=", 1) for line in text.splitlines()
                if line.startswith("E:") and "=" in line)


def _sys_text(ctx: Context, path: str) -> str | None:
    """A vendor string from sysfs (model, serial), junk removed."""
    text = ctx.read_file(path)
    return clean(text) if text is not None else None


def _sys_value(ctx: Context, path: str) -> str | None:
    """A kernel-made value from sysfs (a number, a flag): trimmed, never junk-filtered."""
    text = ctx.read_file(path)
    return text.strip() or None if text is not None else None


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
        rotational = _sys_value(ctx, f"{base}/queue/rotational")
        removable = _sys_value(ctx, f"{base}/removable")
        serial = (_sys_text(ctx, f"{base}/device/serial") or _sys_text(ctx, f"{base}/serial")
                  or clean(udev.get("ID_SERIAL_SHORT")))
        disks.append({
            "name": name,
            "size_bytes": int(sectors) * 512 if sectors and sectors.isdigit() else None,
            "model": _sys_text(ctx, f"{base}/device/model") or clean(udev.get("ID_MODEL")),
            "vendor": vendor,
            "serial": serial,
            "firmware": _sys_text(ctx, f"{base}/device/firmware_rev") or _sys_text(ctx, f"{base}/device/rev"),
            "wwn": clean(udev.get("ID_WWN")),
            "rotational": rotational == "1" if rotational in ("0", "1") else None,
            "removable": removable == "1" if removable in ("0", "1") else None,
        })
    return disks


def _cpu_max_mhz(ctx: Context) -> float | None:
    khz = _sys_value(ctx, "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz and khz.isdigit() and int(khz) > 0:
        return int(khz) / 1000
    if ctx.local:
        import psutil
        try:
            freq = psutil.cpu_freq()
        except (OSError, NotImplementedError):
            freq = None
        if freq and freq.max > 0:
            return freq.max
    return None


def detect_virtualization(ctx: Context, cpu: CpuSummary) -> str | None:
    """systemd-detect-virt's answer ("kvm", "docker", "none" = bare metal), else a CPUID hint."""
    if ctx.has_command("systemd-detect-virt"):
        try:
            return ctx.run(["systemd-detect-virt"], timeout=5).strip() or None
        except CommandError as exc:
            # It exits 1 after printing "none" on bare metal.
            if getattr(exc, "returncode", None) == 1:
                return "none"
    return "vm" if cpu.hypervisor else None


def _rounded(value: float | None) -> int | None:
    return round(value) if value else None


class HardwareCollector:
    name = "hardware"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.read_file("/proc/cpuinfo") is not None or ctx.local

    def collect(self, ctx: Context) -> Contribution:
        cpu = parse_cpuinfo(ctx.read_file("/proc/cpuinfo") or "")
        memory = parse_meminfo(ctx.read_file("/proc/meminfo") or "")
        threads, cores = cpu.threads, cpu.cores
        mem_total, swap_total = memory.get("MemTotal"), memory.get("SwapTotal")
        if ctx.local:
            import psutil
            threads = threads or psutil.cpu_count(logical=True)
            cores = cores or psutil.cpu_count(logical=False)
            mem_total = mem_total or psutil.virtual_memory().total
            swap_total = swap_total if swap_total is not None else psutil.swap_memory().total
        dmi = read_dmi(ctx)
        max_mhz = _cpu_max_mhz(ctx)
        out = Contribution()
        out.computer(
            identifiers={"serial": dmi.get("serial"), "system_uuid": dmi.get("system_uuid")},
            attributes={
                **dmi,
                "cpu_model": cpu.model, "cpu_vendor": cpu.vendor, "cpu_sockets": cpu.sockets,
                "cpu_cores": cores, "cpu_threads": threads,
                "cpu_mhz": _rounded(max_mhz or cpu.mhz),  # not the current clock: it moves every run
                "memory_bytes": mem_total, "swap_bytes": swap_total,
                "virtualization": detect_virtualization(ctx, cpu),
            },
        )
        for disk in read_disks(ctx):
            ref = out.add("Disk", f"disk:{disk['name']}",
                          {"name": disk["name"], "serial": disk["serial"]}, disk)
            out.relate(COMPUTER_REF, "HAS_DISK", ref)
        return out
