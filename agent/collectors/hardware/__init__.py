"""Hardware: CPU, memory and memory modules, swap, DMI (system, BIOS, board, chassis), disks,
virtualization. File systems are their own collector (`filesystems.py`).

Facts come from /proc, /sys and `dmidecode` through the context, so a recorded tree or an SSH
host works as well as this machine; psutil is used only when the context is local and /proc did
not say. DMI is absent on many VMs, containers and ARM boards: its attributes are then simply
absent and the collector is still ok. Nothing volatile is reported (no current clock, no free
memory): a second run on an unchanged machine gives the same attributes.

Modules: `cpu` (cpuinfo), `dmidecode` (the pure dmidecode parser and mappers), `dmi` (sysfs +
dmidecode facts), `memory` (meminfo, DIMMs), `disks` (with `pci`: vendor names from pci.ids),
`virtualization`, `filesystems`.
"""

from __future__ import annotations

import re

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.hardware.cpu import CpuSummary, cpu_max_mhz, cpuinfo_records, parse_cpuinfo
from agent.collectors.hardware.disks import parse_udev_properties, read_disks
from agent.collectors.hardware.dmi import CHASSIS_TYPES, dmi_facts, merged_dmi, read_dmi, read_dmidecode
from agent.collectors.hardware.memory import memory_slots, parse_meminfo, slot_names
from agent.collectors.hardware.virtualization import detect_virtualization, virtualization_kind
from agent.context import Context

_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")

__all__ = ["CHASSIS_TYPES", "CpuSummary", "HardwareCollector", "cpuinfo_records", "dmi_facts",
           "parse_cpuinfo", "parse_meminfo", "parse_udev_properties", "read_dmi"]


def _memory_modules(out: Contribution, dmidecode: dict) -> int | None:
    """MemoryModule items for the populated slots; returns the number of slots (empty ones too)."""
    slots = memory_slots(dmidecode)
    for slot, name in zip(slots, slot_names(slots), strict=True):
        if slot.size_bytes is None:
            continue  # an empty slot is no component
        ref = "dimm:" + _REF_UNSAFE.sub("_", name)
        out.add("MemoryModule", ref, {"slot": name, "serial": slot.serial}, {
            "slot": name, "locator": slot.slot, "bank": slot.bank, "form_factor": slot.form_factor,
            "type": slot.type, "speed_mts": slot.speed_mts, "size_bytes": slot.size_bytes,
            "manufacturer": slot.manufacturer, "serial": slot.serial, "part_number": slot.part_number,
            "error_correction": slot.error_correction,
        })
        out.relate(COMPUTER_REF, "HAS_COMPONENT", ref)
    return len(slots) or None


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
        dmidecode = read_dmidecode(ctx)
        dmi = merged_dmi(read_dmi(ctx), dmidecode)
        virtualization = detect_virtualization(ctx, dmi, cpu.hypervisor)
        out = Contribution()
        slots = _memory_modules(out, dmidecode)
        out.computer(
            identifiers={"serial": dmi.get("serial"), "system_uuid": dmi.get("system_uuid")},
            attributes={
                **dmi,
                "cpu_model": cpu.model, "cpu_vendor": cpu.vendor, "cpu_sockets": cpu.sockets,
                "cpu_family": cpu.family, "cpu_model_number": cpu.model_number, "cpu_stepping": cpu.stepping,
                "cpu_cores": cores, "cpu_threads": threads,
                "cpu_mhz": cpu_max_mhz(ctx, cpu),  # rated, never the current clock
                "memory_bytes": mem_total, "swap_bytes": swap_total, "memory_slots": slots,
                "virtualization": virtualization, "virtualization_kind": virtualization_kind(virtualization),
            },
        )
        for disk in read_disks(ctx):
            ref = out.add("Disk", f"disk:{disk['name']}",
                          {"name": disk["name"], "serial": disk["serial"]}, disk)
            out.relate(COMPUTER_REF, "HAS_DISK", ref)
        return out
