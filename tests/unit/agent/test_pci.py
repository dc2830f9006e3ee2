"""PCI devices: the `lspci -v -nn` parser against GLPI's recorded expectations, the pci.ids
lookups, and the sysfs collector on a fake tree and on this machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.collectors import COLLECTORS
from agent.collectors.hardware.pci import pci_vendor_name
from agent.collectors.hardware.pci_devices import (
    PCI_ATTRIBUTES,
    PciCollector,
    PciIds,
    full_slot,
    parse_lspci_verbose,
    read_pci_ids,
    read_sysfs_devices,
)
from agent.context import LocalContext

from .conftest import GLPI, RecordedContext, glpi_expected

PCI_IDS = Path(__file__).resolve().parents[2] / "fixtures" / "host" / "handmade" / "pci-sysfs" / "pci.ids"
CASES = sorted(p.stem for p in (GLPI / "lspci" / "expected").glob("*.json"))
AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def ids() -> PciIds:
    return PciIds(PCI_IDS.read_text())


def _parsed(case: str, ids: PciIds) -> list[dict]:
    return parse_lspci_verbose((GLPI / "lspci" / case).read_text(), ids.vendor)


def _glpi_slot(slot: str) -> str:
    """GLPI keeps the slot as lspci printed it: without domain 0000 (unless run with -D). Ours
    always has it, as sysfs names the device, so agent and SSH scanner find the same slot."""
    return full_slot(slot)


# --- lspci -v -nn against GLPI's pci_devices --------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_lspci_devices_match_glpi_field_by_field(case, ids):
    expected = glpi_expected("lspci", case, "pci_devices")["value"]
    ours = _parsed(case, ids)
    assert len(ours) == len(expected)
    for dev, glpi in zip(ours, expected, strict=True):
        assert dev["slot"] == _glpi_slot(glpi["PCISLOT"])
        assert dev["class_name"] == glpi["NAME"]
        assert dev["class_id"] == glpi["PCICLASS"]
        assert dev["description"] == glpi["MANUFACTURER"]  # vendor and device, as lspci printed them
        assert f"{dev['vendor_id']}:{dev['device_id']}" == glpi["PCIID"]
        subsystem = f"{dev['subsystem_vendor_id']}:{dev['subsystem_device_id']}" if dev["subsystem_vendor_id"] else None
        assert subsystem == glpi.get("PCISUBSYSTEMID")
        # GLPI reads the revision with \d+: a hex revision ("rev a1") is lost, a missing one
        # (lspci prints no "(rev 00)") is undef. Ours is the byte, like sysfs's 0x00.
        if glpi.get("REV") is not None:
            assert dev["revision"] == glpi["REV"]
        else:
            assert dev["revision"] == "00" or not dev["revision"].isdigit()
        # GLPI reads the driver with \w+: "intel-lpss" becomes "intel", "ehci-pci" "ehci". Ours
        # is the whole name, the one sysfs's driver link gives.
        if dev["driver"] and re.fullmatch(r"\w+", dev["driver"]):
            assert dev["driver"] == glpi.get("DRIVER")
        else:
            assert glpi.get("DRIVER") == (re.match(r"\w+", dev["driver"])[0] if dev["driver"] else None)
        # GLPI's MEMORY (prefetchable BAR sizes) is not reported: a window size, not the card's
        # memory (256 MB for every Intel iGPU; resizable BAR changes it with a firmware setting).


def test_lspci_every_field_of_one_device(ids):
    gpu = next(d for d in _parsed("linux-xps", ids) if d["slot"] == "0000:00:02.0")
    assert gpu == {
        "slot": "0000:00:02.0", "class_id": "0300", "class_name": "VGA compatible controller",
        "prog_if": "00", "prog_if_name": "VGA controller",
        "vendor_id": "8086", "vendor": "Intel Corporation",
        "device_id": "1916", "device": "Skylake GT2 [HD Graphics 520]",
        "description": "Intel Corporation Skylake GT2 [HD Graphics 520]",
        "subsystem_vendor_id": "1028", "subsystem_vendor": "Dell", "subsystem_device_id": "0704",
        "subsystem": None,  # lspci printed the device's name: pci.ids lists no board 1028:0704
        "revision": "07", "driver": "i915", "kernel_modules": ["i915"],
    }


def test_lspci_vendor_split_and_boards(ids):
    by_slot = {d["slot"]: d for case in CASES for d in _parsed(case, ids) if case == "linux-2"}
    nic = by_slot["0000:04:00.0"]
    # This lspci's pci.ids said "Broadcom Corporation", ours says "Broadcom Inc. and
    # subsidiaries": the text cannot be split, so vendor and device stay unknown, never guessed.
    assert (nic["vendor"], nic["device"], nic["description"]) == (
        None, None, "Broadcom Corporation NetXtreme BCM5754 Gigabit Ethernet PCI Express")
    assert (nic["subsystem_vendor"], nic["subsystem"]) == ("Dell", "Precision 390")
    # "Dell Device [1028:01de]": the board is not named.
    assert (by_slot["0000:00:00.0"]["subsystem_vendor"], by_slot["0000:00:00.0"]["subsystem"]) == ("Dell", None)
    # "Intel Corporation Sunrise Point-LP CSME HECI #1", subsystem "Dell Sunrise Point-LP CSME
    # HECI": lspci's fallback drops the " #1"; still no board name.
    heci = next(d for d in _parsed("linux-xps", ids) if d["slot"] == "0000:00:16.0")
    assert (heci["subsystem_vendor"], heci["subsystem"]) == ("Dell", None)
    # Without a pci.ids, only vendors printed as "<vendor> Device" somewhere are known.
    bare = {d["slot"]: d for d in parse_lspci_verbose((GLPI / "lspci" / "linux-2").read_text())}
    assert (bare["0000:00:00.0"]["vendor"], bare["0000:00:00.0"]["subsystem_vendor"]) == (None, "Dell")
    assert bare["0000:01:00.0"]["subsystem_vendor"] == "NVIDIA Corporation"


def test_lspci_domains_and_odd_subsystems(ids):
    devices = {d["slot"]: d for d in _parsed("linux-asus-portable", ids)}
    assert "10000:e0:1d.0" in devices  # a VMD domain keeps its five digits, as in sysfs
    thunderbolt = devices["0000:00:0d.2"]
    assert (thunderbolt["subsystem_vendor_id"], thunderbolt["subsystem_vendor"]) == ("2222", None)  # "Device [2222:1111]"


def test_lspci_capability_subsystem_lines_are_not_the_subsystem(ids):
    # linux-2's bridges have only "Capabilities: [88] Subsystem: Dell Device [1028:01de]".
    bridge = next(d for d in _parsed("linux-2", ids) if d["slot"] == "0000:00:01.0")
    assert bridge["subsystem_vendor_id"] is None


# --- GLPI's groupings: controllers, sounds, modems, videos -------------------------------------

def test_controllers_map_onto_our_devices(ids):
    """GLPI's CONTROLLERS take names from GLPI's own (newer) pci.ids: vendor and device names
    are compared where both pci.ids agree; the Broadcom NIC is the one they do not."""
    ours = {d["slot"]: d for d in _parsed("linux-2", ids)}
    for glpi in glpi_expected("lspci", "linux-2", "controllers")["value"]:
        dev = ours[_glpi_slot(glpi["PCISLOT"])]
        assert (dev["vendor_id"], dev["device_id"], dev["class_id"]) == (glpi["VENDORID"], glpi["PRODUCTID"], glpi["PCICLASS"])
        assert dev["class_name"] == glpi["TYPE"]
        if glpi["VENDORID"] == "14e4":
            assert dev["vendor"] is None and glpi["MANUFACTURER"] == "Broadcom Inc. and subsidiaries"
            assert dev["subsystem"] == glpi["NAME"] == "Precision 390"
            continue
        assert dev["vendor"] == glpi["MANUFACTURER"]
        assert dev["device"] == glpi["CAPTION"]
        assert (dev["subsystem"] or dev["device"]) == glpi["NAME"]


@pytest.mark.parametrize("case", [c for c in CASES if "sounds" in (GLPI / "lspci" / "expected" / f"{c}.json").read_text()])
def test_sounds_and_modems(case, ids):
    ours = _parsed(case, ids)
    sounds = [{"NAME": d["class_name"], "MANUFACTURER": d["description"], "DESCRIPTION": f"rev {d['revision']}"}
              for d in ours if d["class_id"][:2] == "04" and "audio" in d["class_name"].lower()]
    assert sounds == glpi_expected("lspci", case, "sounds")["value"]
    assert [d for d in ours if d["class_id"] == "0703"] == glpi_expected("lspci", case, "modems")["value"] == []


@pytest.mark.parametrize("case", CASES)
def test_videos_name_and_chipset(case, ids):
    """GLPI's VIDEOS are our display-class (03xx) devices. GLPI cuts "Skylake GT2 [HD Graphics
    520]" into CHIPSET (vendor + outside the brackets) and NAME (board vendor + inside); our
    device keeps the pci.ids name whole. RESOLUTION (xrandr/xdpyinfo side files) is a property
    of a display session, not of the card: not inventoried, not tested. MEMORY: see above."""
    ours = {d["slot"]: d for d in _parsed(case, ids)}
    videos = glpi_expected("lspci", case, "videos")["value"]
    assert {_glpi_slot(v["PCISLOT"]) for v in videos} == {slot for slot, d in ours.items() if d["class_id"][:2] == "03"}
    for video in videos:
        dev = ours[_glpi_slot(video["PCISLOT"])]
        assert f"{dev['vendor_id']}:{dev['device_id']}" == video["PCIID"]
        split = re.fullmatch(r"(.*)\s+\[(.*)\]", dev["description"])
        if split:
            assert video["CHIPSET"] == split[1] == f"{dev['vendor']} {dev['device'].rsplit(' [', 1)[0]}"
            assert video["NAME"] == f"{dev['subsystem_vendor']} {split[2]}"
        else:  # no marketing name in brackets: GLPI falls back to class name and description
            assert (video["CHIPSET"], video["NAME"]) == (dev["class_name"], dev["description"])


# --- pci.ids --------------------------------------------------------------------------------

def test_pci_ids_lookups(ids):
    assert ids.vendor("8086") == "Intel Corporation" == pci_vendor_name(ids.text, "8086")
    assert ids.device("8086", "1916") == "Skylake GT2 [HD Graphics 520]"
    assert ids.device("8086", "2263") is None  # Micron's device, in the block after Intel's
    assert ids.device("c0a9", "2263") == "P1 NVMe PCIe SSD"
    assert ids.subsystem("8086", "1916", "1028", "06dc") == "Latitude E7470"
    assert ids.subsystem("8086", "1916", "1028", "0704") is None
    assert ids.subsystem("8086", "a0b0", "1028", "06dc") is None  # not a board of the next device
    assert ids.class_name("0300") == "VGA compatible controller"
    assert ids.class_name("0180") == "Mass storage controller"  # no subclass 80 listed: the class
    assert ids.class_name("ffff") == "Unassigned class"
    assert ids.vendor("abcd") is None and ids.class_name("4f00") is None
    bare = PciIds("")
    assert (bare.vendor("8086"), bare.class_name("0300"), bare.class_name("0c03")) == (
        None, "Display controller", "Serial bus controller")


def test_vendor_bisection_agrees_with_a_plain_search_on_the_real_database():
    real = next((Path(p) for p in ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids") if Path(p).exists()), None)
    if real is None:
        pytest.skip("no pci.ids on this machine")
    text = real.read_text(errors="replace")
    lookup = PciIds(text)
    vendor_ids = re.findall(r"^([0-9a-f]{4})  ", text, re.M)
    assert [lookup.vendor(v) for v in vendor_ids] == [pci_vendor_name(text, v) for v in vendor_ids]


# --- the sysfs collector ---------------------------------------------------------------------

SYSFS = {  # slot: (class, vendor, device, subsystem_vendor, subsystem_device, revision, driver)
    "0000:00:00.0": ("0x060000", "0x8086", "0x0d57", "0x0000", "0x0000", "0x00", None),
    "0000:00:02.0": ("0x030000", "0x8086", "0x1916", "0x1028", "0x06dc", "0x07", "i915"),
    "0000:00:03.0": ("0x020000", "0x1af4", "0x1041", "0x1af4", "0x1100", "0x01", "virtio-pci"),
    "0000:3b:00.0": ("0xff0000", "0x10ec", "0x525a", "0x1028", "0x0704", "0x01", "rtsx_pci"),
    "10000:e0:1d.0": ("0x060400", "0x8086", "0xa0b0", "0x0000", "0x0000", "0x20", "pcieport"),
    "0000:05:00.0": ("0x0b4000", "0xabcd", "0x0001", "0xabcd", "0x0000", "0x00", None),
}


def _sysfs_host(root: Path, with_pci_ids: bool = True) -> LocalContext:
    for slot, (klass, vendor, device, sub_vendor, sub_device, revision, driver) in SYSFS.items():
        real = root / "sys/devices/pci" / slot  # the devices/ entries are links, as in sysfs
        real.mkdir(parents=True)
        for name, value in (("class", klass), ("vendor", vendor), ("device", device), ("revision", revision),
                            ("subsystem_vendor", sub_vendor), ("subsystem_device", sub_device)):
            (real / name).write_text(value + "\n")
        if driver:
            (root / "sys/bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
            (real / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")
        (root / "sys/bus/pci/devices").mkdir(parents=True, exist_ok=True)
        (root / "sys/bus/pci/devices" / slot).symlink_to(f"../../../devices/pci/{slot}")
    if with_pci_ids:
        (root / "usr/share/misc").mkdir(parents=True)
        shutil.copy(PCI_IDS, root / "usr/share/misc/pci.ids")
    return LocalContext(agent_id=AGENT_ID, sysroot=root)


def test_collector_on_a_fake_sysfs(tmp_path):
    ctx = _sysfs_host(tmp_path)
    collector = PciCollector()
    assert any(isinstance(c, PciCollector) for c in COLLECTORS) and collector.name == "pci"
    assert collector.is_enabled(ctx)
    out = collector.collect(ctx)
    assert sorted(out.items) == sorted(f"pci:{slot}" for slot in SYSFS)
    assert sorted(out.relations) == sorted(("computer", "HAS_COMPONENT", f"pci:{slot}") for slot in SYSFS)
    gpu = out.items["pci:0000:00:02.0"]
    assert (gpu.class_, gpu.identifiers) == ("PCIDevice", {"slot": "0000:00:02.0"})
    assert gpu.attributes == {
        "slot": "0000:00:02.0", "class_id": "0300", "class_name": "VGA compatible controller",
        "vendor_id": "8086", "vendor": "Intel Corporation", "device_id": "1916",
        "device": "Skylake GT2 [HD Graphics 520]", "subsystem_vendor_id": "1028", "subsystem_vendor": "Dell",
        "subsystem_device_id": "06dc", "subsystem": "Latitude E7470", "revision": "07", "driver": "i915",
    }
    assert set(gpu.attributes) == set(PCI_ATTRIBUTES)
    host_bridge = out.items["pci:0000:00:00.0"].attributes  # no subsystem, no driver, unknown device id
    assert host_bridge == {"slot": "0000:00:00.0", "class_id": "0600", "class_name": "Host bridge",
                           "vendor_id": "8086", "vendor": "Intel Corporation", "device_id": "0d57", "revision": "00"}
    unknown = out.items["pci:0000:05:00.0"].attributes  # a vendor pci.ids does not know; a board id 0000
    assert (unknown["vendor_id"], unknown.get("vendor"), unknown["class_name"], unknown["subsystem_device_id"]) == (
        "abcd", None, "Co-processor", "0000")
    assert out.items["pci:10000:e0:1d.0"].attributes["device"] == "Tiger Lake-LP PCI Express Root Port #9"
    assert out.items["pci:0000:3b:00.0"].attributes["class_name"] == "Unassigned class"
    assert "subsystem" not in out.items["pci:0000:00:03.0"].attributes  # 1af4:1100 is no board pci.ids names


def test_collector_without_pci_ids_names_base_classes(tmp_path):
    devices = {d["slot"]: d for d in read_sysfs_devices(_sysfs_host(tmp_path, with_pci_ids=False))}
    gpu = devices["0000:00:02.0"]
    assert (gpu["class_name"], gpu["vendor"], gpu["device"], gpu["vendor_id"]) == ("Display controller", None, None, "8086")


def test_not_applicable_without_sys_bus_pci(tmp_path):
    assert not PciCollector().is_enabled(LocalContext(agent_id=AGENT_ID, sysroot=tmp_path))
    assert not PciCollector().is_enabled(RecordedContext())


def test_collector_over_a_recorded_context():
    base = "/sys/bus/pci/devices/0000:00:1f.3"
    ctx = RecordedContext(files={f"{base}/class": "0x040300\n", f"{base}/vendor": "0x8086\n",
                                 f"{base}/device": "0x9d71\n", f"{base}/revision": "0x21\n"},
                          links={f"{base}/driver": "../../../bus/pci/drivers/snd_hda_intel"})
    out = PciCollector().collect(ctx)
    assert out.items["pci:0000:00:1f.3"].attributes == {
        "slot": "0000:00:1f.3", "class_id": "0403", "class_name": "Multimedia controller", "vendor_id": "8086",
        "device_id": "9d71", "revision": "21", "driver": "snd_hda_intel"}


def test_full_slot():
    assert full_slot("00:02.0") == "0000:00:02.0"
    assert full_slot("0001:00:02.0") == "0001:00:02.0"


# --- this machine ----------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/sys/bus/pci/devices").is_dir(), reason="no PCI bus in sysfs here")
def test_collector_on_this_machine_agrees_with_sysfs_and_lspci():
    ctx = LocalContext(agent_id=AGENT_ID)
    start = time.perf_counter()
    out = PciCollector().collect(ctx)
    elapsed_ms = (time.perf_counter() - start) * 1000
    slots = sorted(p.name for p in Path("/sys/bus/pci/devices").iterdir())
    assert sorted(item.identifiers["slot"] for item in out.items.values()) == slots
    assert elapsed_ms < 50  # ~3 ms measured; generous for a loaded CI machine
    if shutil.which("lspci") is None:
        return
    lspci_n = subprocess.run(["lspci", "-D", "-n"], capture_output=True, text=True, check=True).stdout
    ids_by_slot = {m[1]: (m[2], m[3]) for m in re.finditer(r"^(\S+) [0-9a-f]{4}: ([0-9a-f]{4}):([0-9a-f]{4})", lspci_n, re.M)}
    assert ids_by_slot == {item.identifiers["slot"]: (item.attributes["vendor_id"], item.attributes["device_id"])
                           for item in out.items.values()}
    # The SSH scanner's parser, on this machine's lspci, gives the collector's attributes.
    verbose = subprocess.run(["lspci", "-v", "-nn"], capture_output=True, text=True, check=True).stdout
    parsed = {d["slot"]: {k: d[k] for k in PCI_ATTRIBUTES if d[k] is not None}
              for d in parse_lspci_verbose(verbose, read_pci_ids(ctx).vendor)}
    assert parsed == {item.identifiers["slot"]: item.attributes for item in out.items.values()}
