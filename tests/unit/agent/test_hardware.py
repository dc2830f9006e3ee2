"""Hardware: /proc/cpuinfo against GLPI's recorded CPUs, DMI and disks from a recorded sysfs tree
(junk values included: this machine has no DMI, so nothing here depends on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.hardware import HardwareCollector, dmi_facts, parse_cpuinfo, parse_meminfo, read_dmi
from agent.context import LocalContext
from tests.unit.agent.conftest import GLPI, RecordedContext, glpi_expected

# x86 cases where GLPI read /proc/cpuinfo alone (no dmidecode merged into its answer).
X86_CPUINFO_ONLY = ["linux-2.6.35-1-core-2-thread", "linux-686-1", "linux-686-samsung-nc10-1",
                    "linux-hp-dl180", "toshiba-r630-2-core"]
ALL_CPUINFO = sorted(p.name for p in (GLPI / "cpuinfo").iterdir() if p.is_file())


@pytest.mark.parametrize("case", X86_CPUINFO_ONLY)
def test_cpuinfo_matches_glpi_x86(case):
    cpus = glpi_expected("cpuinfo", case, "cpus")["value"]
    cpu = parse_cpuinfo((GLPI / "cpuinfo" / case).read_text())
    assert cpu.model == cpus[0]["NAME"]
    assert cpu.vendor == cpus[0]["MANUFACTURER"]
    if cpu.sockets is not None:  # old kernels print no "physical id": sockets are not derivable
        assert cpu.sockets == len(cpus)
        assert cpu.cores == sum(int(c["CORE"]) for c in cpus)
    assert (cpu.family, cpu.model_number, cpu.stepping) == \
        (int(cpus[0]["FAMILYNUMBER"]), int(cpus[0]["MODEL"]), int(cpus[0]["STEPPING"]))


def test_cpu_signature_is_x86_only_and_numeric():
    for case in ("linux-armel-1", "linux-ppc-1", "linux-sparc-1", "linux-mips-1", "linux-alpha-1"):
        cpu = parse_cpuinfo((GLPI / "cpuinfo" / case).read_text())
        assert (cpu.family, cpu.model_number, cpu.stepping) == (None, None, None), case
    cpu = parse_cpuinfo("processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 0\n"
                        "stepping : unknown\n")
    assert (cpu.family, cpu.model_number, cpu.stepping) == (6, 0, None)  # 0 is a model, not junk


@pytest.mark.parametrize("case", ALL_CPUINFO)
def test_cpuinfo_parses_every_architecture(case):
    cpu = parse_cpuinfo((GLPI / "cpuinfo" / case).read_text())
    assert cpu.threads is None or cpu.threads >= 1
    if case == "cpuinfo-vmware-esx":  # an empty file, on purpose
        assert cpu == type(cpu)()


# Other architectures: the model name GLPI reports (its Raspberry Pi "0".."3" names are a quirk).
@pytest.mark.parametrize("case", ["linux-armel-1", "linux-armel-2", "linux-armel-3", "linux-mips-1",
                                  "linux-ppc-1", "linux-ppc-2", "linux-ppc-3", "linux-sparc-1",
                                  "linux-raspberry-pi-3-model-b"])
def test_cpuinfo_model_matches_glpi_other_arches(case):
    cpus = glpi_expected("cpuinfo", case, "cpus")["value"]
    assert parse_cpuinfo((GLPI / "cpuinfo" / case).read_text()).model == cpus[0]["NAME"]


def test_cpuinfo_counts_and_models():
    dl180 = parse_cpuinfo((GLPI / "cpuinfo" / "linux-hp-dl180").read_text())
    assert (dl180.sockets, dl180.cores, dl180.threads) == (1, 4, 3)  # 4 cores, 3 of them online
    armel = parse_cpuinfo((GLPI / "cpuinfo" / "linux-armel-1").read_text())
    assert armel.model == "XScale-80219 rev 0 (v5l)"
    sparc = parse_cpuinfo((GLPI / "cpuinfo" / "linux-sparc-1").read_text())
    assert sparc.model == "TI UltraSparc IIIi (Jalapeno)"
    rhel = parse_cpuinfo((GLPI / "cpuinfo" / "rhel-5.6").read_text())
    assert (rhel.sockets, rhel.cores, rhel.threads) == (2, 8, 16)
    vm = parse_cpuinfo((GLPI / "cpuinfo" / "rhel-6.2-vmware-2vcpus").read_text())
    assert vm.mhz == pytest.approx(2694.293) and vm.threads == 2


def test_meminfo():
    assert parse_meminfo("MemTotal:       16318412 kB\nSwapTotal:             0 kB\nHugePages_Total:       0\n") == \
        {"MemTotal": 16318412 * 1024, "SwapTotal": 0, "HugePages_Total": 0}


# A recorded /sys/class/dmi/id of a white-box board: OEM placeholders everywhere.
JUNK_DMI = {
    "sys_vendor": "To Be Filled By O.E.M.\n", "product_name": "To Be Filled By O.E.M.\n",
    "product_version": "To Be Filled By O.E.M.\n", "product_serial": "To Be Filled By O.E.M.\n",
    "product_uuid": "00000000-0000-0000-0000-000000000000\n", "product_sku": "Default string\n",
    "bios_vendor": "American Megatrends Inc.\n", "bios_version": "P1.40\n", "bios_date": "07/17/2018\n",
    "chassis_type": "3\n", "chassis_vendor": "Default string\n", "chassis_serial": "Default string\n",
    "chassis_asset_tag": "Default string\n", "board_vendor": "ASRock\n", "board_name": "H310M-HDV\n",
    "board_serial": "M80-B9012345678\n",
}
DELL_DMI = {
    "sys_vendor": "Dell Inc.\n", "product_name": "PowerEdge R640\n", "product_serial": "7XJ4PQ2\n",
    "product_uuid": "4C4C4544-0058-4A10-8034-B7C04F505132\n", "bios_vendor": "Dell Inc.\n",
    "bios_version": "2.12.2\n", "bios_date": "07/09/2021\n", "chassis_type": "23\n",
    "chassis_serial": "7XJ4PQ2\n", "board_vendor": "Dell Inc.\n", "board_name": "0H28RR\n",
    "board_serial": ".7XJ4PQ2.CNFCP0019A00DR.\n",
}


def _sysroot(tmp_path: Path, dmi: dict[str, str]) -> LocalContext:
    base = tmp_path / "sys" / "class" / "dmi" / "id"
    base.mkdir(parents=True)
    for name, text in dmi.items():
        (base / name).write_text(text)
    return LocalContext(agent_id="6f1c2d3e-0000-4000-8000-000000000001", sysroot=tmp_path)


def test_dmi_junk_is_absent_not_empty(tmp_path):
    facts = {k: v for k, v in read_dmi(_sysroot(tmp_path, JUNK_DMI)).items() if v is not None}
    assert facts == {"chassis_type": "Desktop", "bios_vendor": "American Megatrends Inc.",
                     "bios_version": "P1.40", "bios_date": "07/17/2018", "board_vendor": "ASRock",
                     "board_model": "H310M-HDV", "board_serial": "M80-B9012345678"}


def test_dmi_real_server(tmp_path):
    facts = read_dmi(_sysroot(tmp_path, DELL_DMI))
    assert facts["manufacturer"] == "Dell Inc." and facts["model"] == "PowerEdge R640"
    assert facts["serial"] == "7XJ4PQ2"
    assert facts["system_uuid"] == "4c4c4544-0058-4a10-8034-b7c04f505132"
    assert facts["chassis_type"] == "Rack Mount Chassis"


def test_dmi_serial_falls_back_to_chassis_and_missing_dmi_is_empty(tmp_path):
    assert dmi_facts({"product_serial": "System Serial Number", "chassis_serial": "CZC1234XYZ",
                      "chassis_type": "131"})["serial"] == "CZC1234XYZ"
    assert dmi_facts({"chassis_type": "131"})["chassis_type"] == "Desktop"  # 0x80 = lock bit
    assert read_dmi(LocalContext(agent_id="x", sysroot=tmp_path)) == {}


def test_collector_on_recorded_host_with_junk_dmi(tmp_path):
    ctx = _sysroot(tmp_path, JUNK_DMI)
    files = {
        "proc/cpuinfo": (GLPI / "cpuinfo" / "rhel-5.6").read_text(),
        "proc/meminfo": "MemTotal:       8000000 kB\nSwapTotal:      2000000 kB\n",
        "sys/block/sda/size": "1953525168\n", "sys/block/sda/dev": "8:0\n",
        "sys/block/sda/removable": "0\n", "sys/block/sda/queue/rotational": "1\n",
        "sys/block/sda/device/uevent": "DEVTYPE=scsi_device\n", "sys/block/sda/device/vendor": "ATA     \n",
        "sys/block/sda/device/model": "WDC WD10EZEX-08W\n",
        "run/udev/data/b8:0": "S:disk/by-id/ata-x\nE:ID_SERIAL_SHORT=WD-WCC6Y3KJ1234\nE:ID_WWN=0x50014ee2b5a1b2c3\n",
        "sys/block/nvme0n1/size": "1000215216\n", "sys/block/nvme0n1/queue/rotational": "0\n",
        "sys/block/nvme0n1/device/uevent": "MAJOR=259\n", "sys/block/nvme0n1/device/model": "Samsung SSD 970\n",
        "sys/block/nvme0n1/device/serial": "S4EWNX0N123456\n",
        "sys/block/loop0/size": "100\n", "sys/block/zram0/size": "100\n",
        "sys/block/sr9/size": "0\n",  # no device/uevent: not backed by hardware
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    out = HardwareCollector().collect(ctx)
    computer = out.items["computer"]
    assert computer.identifiers == {}  # junk serial and zero UUID identify nothing
    attrs = computer.attributes
    assert "manufacturer" not in attrs and "serial" not in attrs and "system_uuid" not in attrs
    assert (attrs["cpu_sockets"], attrs["cpu_cores"], attrs["cpu_threads"]) == (2, 8, 16)
    assert attrs["memory_bytes"] == 8000000 * 1024 and attrs["swap_bytes"] == 2000000 * 1024
    assert (attrs["cpu_family"], attrs["cpu_model_number"], attrs["cpu_stepping"]) == (6, 44, 2)
    assert "virtualization" not in attrs  # no systemd-detect-virt for a foreign tree, no CPUID hint
    assert sorted(r for r in out.items if r.startswith("disk:")) == ["disk:nvme0n1", "disk:sda"]
    sda = out.items["disk:sda"]
    assert sda.identifiers == {"name": "sda", "serial": "WD-WCC6Y3KJ1234"}
    assert sda.attributes["size_bytes"] == 1953525168 * 512 and sda.attributes["rotational"] is True
    assert "vendor" not in sda.attributes  # "ATA" is the bus
    assert out.items["disk:nvme0n1"].attributes["rotational"] is False
    assert ("computer", "HAS_DISK", "disk:sda") in out.relations


def test_collector_without_dmi_or_proc_beyond_cpuinfo():
    ctx = RecordedContext(files={"/proc/cpuinfo": (GLPI / "cpuinfo" / "linux-armel-2").read_text()})
    out = HardwareCollector().collect(ctx)
    attrs = out.items["computer"].attributes
    assert attrs["cpu_model"] == "Feroceon 88FR131 rev 1 (v5l)"
    assert all(v not in ("", None) for v in attrs.values())
    assert [r for r in out.items if r != "computer"] == []


# Virtualization and this machine (no DMI: /sys/class/dmi absent, dmidecode fails).
from agent.collectors.hardware.virtualization import (  # noqa: E402
    container_from_files,
    guess_virtualization,
    virtualization_kind,
    vm_from_dmi,
)


def test_virtualization_guesses_use_systemd_detect_virt_names():
    assert container_from_files({"/.dockerenv": ""}) == "docker"
    assert container_from_files({"/run/.containerenv": "engine=podman"}) == "podman"
    assert container_from_files({"/run/systemd/container": "systemd-nspawn\n"}) == "systemd-nspawn"
    assert container_from_files({"/proc/1/environ": "PATH=/bin\0container=lxc\0"}) == "lxc"
    assert container_from_files({"/proc/1/cgroup": "0::/kubepods/besteffort/pod1/abc\n"}) == "container-other"
    assert container_from_files({"/proc/sys/kernel/osrelease": "5.15.90.1-microsoft-standard-WSL2\n"}) == "wsl"
    assert container_from_files({"/proc/1/cgroup": "0::/init.scope\n"}) is None
    assert vm_from_dmi({"manufacturer": "VMware, Inc.", "model": "VMware Virtual Platform"}, True) == "vmware"
    assert vm_from_dmi({"manufacturer": "Microsoft Corporation", "model": "Virtual Machine"}, True) == "microsoft"
    assert vm_from_dmi({"manufacturer": "QEMU", "model": "Standard PC (Q35 + ICH9, 2009)"}, True) == "qemu"
    assert vm_from_dmi({"manufacturer": "innotek GmbH", "model": "VirtualBox"}, True) == "oracle"
    assert vm_from_dmi({}, False, "xen\n") == "xen"
    assert vm_from_dmi({"manufacturer": "Dell Inc."}, True) == "vm" and vm_from_dmi({"manufacturer": "Dell Inc."}, False) is None
    assert [virtualization_kind(v) for v in ("docker", "kvm", "none", None)] == ["container", "vm", "none", None]
    assert guess_virtualization(RecordedContext(files={"/.dockerenv": ""}), {}, True) == "docker"


def test_this_machine_has_no_dmi_and_the_collector_is_ok():
    import os
    import subprocess

    from agent.builder import build_report
    from agent.collectors.hardware.dmi import DMI_ATTRIBUTES

    ctx = LocalContext(agent_id="6f1c2d3e-0000-4000-8000-000000000001")
    if os.path.exists("/sys/class/dmi/id"):
        pytest.skip("this machine has DMI")
    report = build_report(ctx, [HardwareCollector()])
    assert report.collectors["hardware"].status == "ok"
    computer = report.items[0]
    assert not set(DMI_ATTRIBUTES) & set(computer.attributes)
    assert "serial" not in computer.identifiers and "system_uuid" not in computer.identifiers
    assert not [i for i in report.items if i.class_ == "MemoryModule"]
    assert computer.attributes["cpu_threads"] >= 1 and computer.attributes["cpu_mhz"] > 0
    detect = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip()
    assert computer.attributes.get("virtualization") == (detect or None)
    again = build_report(ctx, [HardwareCollector()]).items[0]
    assert again.attributes == computer.attributes  # nothing volatile: a second run is identical
