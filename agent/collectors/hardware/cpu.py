"""Processors: /proc/cpuinfo of any architecture (x86, ARM, POWER, SPARC, MIPS, Alpha, IA-64).

`cpuinfo_records` has GLPI agent's getCPUsFromProc semantics (one record per processor block,
keys lower-cased, values whitespace-collapsed) so GLPI's recorded expectations test it;
`parse_cpuinfo` summarises the records for the Computer item. The clock reported is the rated
maximum (cpufreq) or the nominal one the model name states, never the current clock: that one
moves with frequency scaling and would write a history row on every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.context import Context
from cmdb.junk import clean

CPU_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon",
               "CentaurHauls": "Centaur", "Shanghai": "Zhaoxin", "GenuineTMx86": "Transmeta",
               "CyrixInstead": "Cyrix"}
ARM_IMPLEMENTERS = {"0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu",
                    "0x48": "HiSilicon", "0x4e": "NVIDIA", "0x50": "Applied Micro",
                    "0x51": "Qualcomm", "0x53": "Samsung", "0x56": "Marvell", "0x61": "Apple",
                    "0x69": "Intel", "0xc0": "Ampere"}
CPUFREQ_MAX = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
_LINE = re.compile(r"^([^:]+\S)\s*:\s(.+)")
_NOMINAL = re.compile(r"(\d+(?:\.\d+)?)\s*([GM])Hz\s*$", re.I)
_CLOCK = re.compile(r"^(\d+(?:\.\d+)?)\s*MHz", re.I)


@dataclass(frozen=True)
class CpuSummary:
    model: str | None = None
    vendor: str | None = None
    threads: int | None = None  # logical processors the kernel lists
    cores: int | None = None  # physical cores, all sockets
    sockets: int | None = None
    nominal_mhz: int | None = None  # the rated clock: from the model name or a fixed "clock" line
    mhz: float | None = None  # current clock of the first processor (x86 "cpu MHz"): volatile
    hypervisor: bool = False  # the CPUID "hypervisor" bit: running under a hypervisor
    # x86 CPUID signature ("cpu family", "model", "stepping"): which silicon, beyond the name
    family: int | None = None
    model_number: int | None = None
    stepping: int | None = None


def cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """Every blank-line separated block of /proc/cpuinfo, headers and trailers included."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            if current:
                blocks.append(current)
            current = {}
        elif match := _LINE.match(line):
            current[match[1].lower()] = " ".join(match[2].split())
    if current:
        blocks.append(current)
    return blocks


def cpuinfo_records(text: str) -> list[dict[str, str]]:
    """One record per processor (a block with a `processor` or `cpu` key), GLPI's way."""
    return [b for b in cpuinfo_blocks(text) if "processor" in b or "cpu" in b]


def nominal_mhz(record: dict[str, str], model: str | None) -> int | None:
    """The rated clock: "... @ 2.40GHz" in the model name, else a fixed clock line (POWER
    "clock : 1452.000000MHz", Alpha "cycle frequency [Hz] : 1250000000")."""
    if model and (match := _NOMINAL.search(model)):
        return round(float(match[1]) * (1000 if match[2].upper() == "G" else 1))
    if match := _CLOCK.match(record.get("clock", "")):
        return round(float(match[1])) or None
    hertz = record.get("cycle frequency [hz]", "").split()
    if hertz and hertz[0].isdigit() and int(hertz[0]) > 0:
        return round(int(hertz[0]) / 1_000_000)
    return None


def _number(record: dict[str, str], key: str) -> int | None:
    """A decimal field; None when absent or text (PowerPC's "model : IBM pSeries")."""
    value = record.get(key, "")
    return int(value) if value.isdigit() else None


def parse_cpuinfo(text: str) -> CpuSummary:
    """/proc/cpuinfo of any architecture, summarised for the Computer item."""
    blocks = cpuinfo_blocks(text)
    if not blocks:
        return CpuSummary()
    procs = [b for b in blocks if b.get("processor", "").isdigit()]
    first = procs[0] if procs else blocks[0]
    merged = {k: v for b in reversed(blocks) for k, v in b.items()}  # header lines on ARM/SPARC
    model = None
    for key in ("model name", "cpu model", "cpu"):
        if clean(first.get(key)):
            model = first[key]
            break
    if model is None and not first.get("processor", "").isdigit():
        model = clean(first.get("processor"))  # old ARM kernels: "Processor : XScale-80219 ..."
    vendor_id = first.get("vendor_id", "")
    vendor = CPU_VENDORS.get(vendor_id.strip(), clean(vendor_id))
    if vendor is None and "cpu implementer" in merged:
        vendor = ARM_IMPLEMENTERS.get(merged["cpu implementer"].lower())
    packages = {b["physical id"] for b in procs if "physical id" in b}
    cores = None
    if packages:
        per_package = {b["physical id"]: b.get("cpu cores") for b in procs if "physical id" in b}
        if all(v and v.isdigit() for v in per_package.values()):
            cores = sum(int(v) for v in per_package.values())  # counts offline cores as well
        else:
            cores = len({(b["physical id"], b.get("core id")) for b in procs if "physical id" in b})
    current = re.match(r"([\d.]+)", first.get("cpu mhz", ""))
    return CpuSummary(model=model, vendor=vendor, threads=len(procs) or None, cores=cores,
                      sockets=len(packages) or None, nominal_mhz=nominal_mhz(merged, model),
                      mhz=float(current[1]) if current else None,
                      hypervisor="hypervisor" in first.get("flags", "").split(),
                      family=_number(first, "cpu family"), model_number=_number(first, "model"),
                      stepping=_number(first, "stepping"))


def cpu_max_mhz(ctx: Context, cpu: CpuSummary) -> int | None:
    """The clock to report: cpufreq's rated maximum, else the nominal clock, else (no frequency
    scaling exposed, e.g. a VM) the x86 "cpu MHz" line rounded."""
    khz = (ctx.read_file(CPUFREQ_MAX) or "").strip()
    if khz.isdigit() and int(khz) > 0:
        return round(int(khz) / 1000)
    if cpu.nominal_mhz:
        return cpu.nominal_mhz
    return round(cpu.mhz) if cpu.mhz else None
