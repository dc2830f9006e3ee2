"""PCI devices (controllers, bridges, GPUs, NICs, sound cards): one PCIDevice item per PCI
function, identified by its slot ("0000:00:02.0") and related computer HAS_COMPONENT device.

Two sources give the same records (`PCI_ATTRIBUTES`):
* the agent reads sysfs (/sys/bus/pci/devices/<slot>/{class,vendor,device,...} and the `driver`
  link): no subprocess, a handful of small reads per device; names come from pci.ids (`PciIds`,
  substring searches, never a parse of the 1.3 MB file);
* the SSH scanner runs `lspci -v -nn` and hands the text to the pure `parse_lspci_verbose`.

Nothing volatile is reported (no IRQ, no BAR addresses, no link speed, no power state).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.hardware.pci import PCI_IDS_PATHS, parse_pci_id
from agent.context import Context
from cmdb.junk import clean

PCI_DEVICES_DIR = "/sys/bus/pci/devices"
# The item attributes, in this order, whichever source found the device.
PCI_ATTRIBUTES = ("slot", "class_id", "class_name", "vendor_id", "vendor", "device_id", "device",
                  "subsystem_vendor_id", "subsystem_vendor", "subsystem_device_id", "subsystem",
                  "revision", "driver")
# Base class names (PCI Code and ID Assignment Specification; pci.ids spelling) for a host
# without pci.ids: "Display controller" is less than "VGA compatible controller", but not nothing.
PCI_BASE_CLASSES = {
    "00": "Unclassified device", "01": "Mass storage controller", "02": "Network controller",
    "03": "Display controller", "04": "Multimedia controller", "05": "Memory controller",
    "06": "Bridge", "07": "Communication controller", "08": "Generic system peripheral",
    "09": "Input device controller", "0a": "Docking station", "0b": "Processor",
    "0c": "Serial bus controller", "0d": "Wireless controller", "0e": "Intelligent controller",
    "0f": "Satellite communications controller", "10": "Encryption controller",
    "11": "Signal processing controller", "12": "Processing accelerators",
    "13": "Non-Essential Instrumentation", "40": "Coprocessor", "ff": "Unassigned class",
}

_SLOT = re.compile(r"^(?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_CLASS = re.compile(r"^(?:0x)?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$")
_BYTE = re.compile(r"^(?:0x)?([0-9a-f]{2})$")
_WORD = re.compile(r"^(?:0x)?([0-9a-f]{4})$")
# A line that ends a pci.ids vendor block: the next vendor, or the class section ("C 00").
_TOP_LEVEL_LINE = re.compile(r"\n[^\t#\n]")
_VENDOR_LINE = re.compile(r"\n([0-9a-f]{4})  ")


# --- pci.ids -----------------------------------------------------------------------------------

@dataclass
class PciIds:
    """Names from the text of pci.ids, without parsing it. Vendor lines are sorted by id, so a
    vendor is found by bisection (a few short searches, not a 1.3 MB scan: ~0.3 ms instead of
    ~1 ms); its device and subsystem lines are searched inside its block, class names inside
    the short class section at the end. Every answer is kept: a host repeats its vendors."""

    text: str
    _blocks: dict[str, tuple[int, int] | None] = field(default_factory=dict, repr=False)
    _classes: dict[str, str | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        at = self.text.rfind("\nC 00  ")
        self._class_section = at if at >= 0 else len(self.text)

    def vendor(self, vendor_id: str) -> str | None:
        """"1af4" -> "Red Hat, Inc." (the same answer as `pci.pci_vendor_name`, found faster)."""
        block = self._vendor_block(vendor_id.lower())
        return self._name(block[0] + len(vendor_id) + 3) if block else None

    def device(self, vendor_id: str, device_id: str) -> str | None:
        span = self._device_line(vendor_id, device_id)
        return self._name(span[0] + len(device_id) + 4) if span else None

    def subsystem(self, vendor_id: str, device_id: str, sub_vendor_id: str, sub_device_id: str) -> str | None:
        """The name pci.ids gives this board (`\\t\\t1028 06dc  Latitude E7470` under the device)."""
        span = self._device_line(vendor_id, device_id)
        if span is None:
            return None
        start, block_end = span
        end = self.text.find("\n\t", start + 1)
        while 0 <= end < block_end and self.text.startswith("\n\t\t", end):
            end = self.text.find("\n\t", end + 1)  # subsystem lines, until the next device line
        needle = f"\n\t\t{sub_vendor_id} {sub_device_id}  "
        at = self.text.find(needle, start, block_end if end < 0 else min(end, block_end))
        return self._name(at + len(needle)) if at >= 0 else None

    def class_name(self, class_id: str) -> str | None:
        """The subclass name of "0300" ("VGA compatible controller"), else its base class name;
        the built-in table names base classes when pci.ids is absent or silent."""
        if class_id not in self._classes:
            self._classes[class_id] = self._find_class(class_id[:2], class_id[2:4])
        return self._classes[class_id]

    def _find_class(self, base: str, sub: str) -> str | None:
        at = self.text.find(f"\nC {base}  ", self._class_section)
        if at < 0:
            return PCI_BASE_CLASSES.get(base)
        end = self.text.find("\nC ", at + 1)
        needle = f"\n\t{sub}  "  # one tab: a subclass (programming interfaces have two)
        sub_at = self.text.find(needle, at, end if end >= 0 else len(self.text))
        if sub_at >= 0:
            return self._name(sub_at + len(needle))
        return self._name(at + 6) or PCI_BASE_CLASSES.get(base)

    def _find_vendor_line(self, vendor_id: str) -> int:
        lo, hi = 0, self._class_section
        while hi - lo > 4096:
            mid = (lo + hi) // 2
            line = _VENDOR_LINE.search(self.text, mid, hi)
            if line is None:
                hi = mid
            elif line[1] == vendor_id:
                return line.start()
            elif line[1] < vendor_id:
                lo = line.end() - 1
            else:
                hi = mid + len(vendor_id) + 3
        at = self.text.find(f"\n{vendor_id}  ", lo, hi)
        # Not where the order says: a hand-edited, unsorted file; look everywhere (rare: ~1 ms).
        return at if at >= 0 else self.text.find(f"\n{vendor_id}  ", 0, self._class_section)

    def _vendor_block(self, vendor_id: str) -> tuple[int, int] | None:
        if vendor_id not in self._blocks:
            start = self._find_vendor_line(vendor_id) if self.text else -1
            if start < 0:
                self._blocks[vendor_id] = None
            else:
                nxt = _TOP_LEVEL_LINE.search(self.text, start + 1)
                self._blocks[vendor_id] = (start, nxt.start() if nxt else len(self.text))
        return self._blocks[vendor_id]

    def _device_line(self, vendor_id: str, device_id: str) -> tuple[int, int] | None:
        """(where the device's line starts, where its vendor's block ends)."""
        block = self._vendor_block(vendor_id)
        if block is None:
            return None
        at = self.text.find(f"\n\t{device_id}  ", *block)
        return (at, block[1]) if at >= 0 else None

    def _name(self, start: int) -> str | None:
        end = self.text.find("\n", start)
        return clean(self.text[start:end if end >= 0 else None])


def read_pci_ids(ctx: Context) -> PciIds:
    """The host's pci.ids (the first of the usual places); an empty one names nothing."""
    return PciIds(next((text for path in PCI_IDS_PATHS if (text := ctx.read_file(path)) is not None), ""))


# --- sysfs (the agent) -------------------------------------------------------------------------

def _sys_value(ctx: Context, path: str) -> str | None:
    text = ctx.read_file(path)
    return text.strip().lower() or None if text is not None else None


def full_slot(slot: str) -> str:
    """A slot with its PCI domain, as sysfs names it: lspci leaves out domain 0000."""
    return slot if slot.count(":") == 2 else f"0000:{slot}"


def read_sysfs_device(ctx: Context, slot: str, ids: PciIds) -> dict[str, Any]:
    """One PCI function from /sys/bus/pci/devices/<slot>, named through pci.ids."""
    base = f"{PCI_DEVICES_DIR}/{slot}"
    klass = _CLASS.match(_sys_value(ctx, f"{base}/class") or "")
    vendor_id = parse_pci_id(ctx.read_file(f"{base}/vendor"))
    device_id = parse_pci_id(ctx.read_file(f"{base}/device"))
    sub_vendor_id = parse_pci_id(ctx.read_file(f"{base}/subsystem_vendor"))
    sub_device = _WORD.match(_sys_value(ctx, f"{base}/subsystem_device") or "")
    sub_device_id = sub_device[1] if sub_device and sub_vendor_id else None  # 0000 is a board id too
    revision = _BYTE.match(_sys_value(ctx, f"{base}/revision") or "")
    driver = ctx.read_link(f"{base}/driver")
    class_id = klass[1] + klass[2] if klass else None
    return {
        "slot": slot,
        "class_id": class_id,
        "class_name": ids.class_name(class_id) if class_id else None,
        "prog_if": klass[3] if klass else None,
        "vendor_id": vendor_id,
        "vendor": ids.vendor(vendor_id) if vendor_id else None,
        "device_id": device_id,
        "device": ids.device(vendor_id, device_id) if vendor_id and device_id else None,
        "subsystem_vendor_id": sub_vendor_id,
        "subsystem_vendor": ids.vendor(sub_vendor_id) if sub_vendor_id else None,
        "subsystem_device_id": sub_device_id,
        "subsystem": (ids.subsystem(vendor_id, device_id, sub_vendor_id, sub_device_id)
                      if vendor_id and device_id and sub_vendor_id and sub_device_id else None),
        "revision": revision[1] if revision else None,
        "driver": driver.rstrip("/").rsplit("/", 1)[-1] if driver else None,
    }


def read_sysfs_devices(ctx: Context) -> list[dict[str, Any]]:
    """Every PCI function the kernel lists (bridges and functions without a driver too)."""
    slots = [s for s in ctx.list_dir(PCI_DEVICES_DIR) or [] if _SLOT.match(s)]
    if not slots:
        return []
    ids = read_pci_ids(ctx)
    return [read_sysfs_device(ctx, slot, ids) for slot in slots]


# --- lspci -v -nn (the SSH scanner) ------------------------------------------------------------

_LSPCI_HEADER = re.compile(
    r"^(?P<slot>(?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+"
    r"(?P<class_name>.*?)\s*\[(?P<class_id>[0-9a-f]{4})\]:\s+"
    r"(?P<text>.*?)\s*\[(?P<vendor_id>[0-9a-f]{4}):(?P<device_id>[0-9a-f]{4})\]"
    r"(?:\s+\(rev\s+(?P<revision>[0-9a-f]{2})\))?"
    r"(?:\s+\(prog-if\s+(?P<prog_if>[0-9a-f]{2})(?:\s+\[(?P<prog_if_name>[^]]*)\])?\))?\s*$")
_LSPCI_SUBSYSTEM = re.compile(r"^\tSubsystem:\s*(?P<text>.*?)\s*\[(?P<vendor_id>[0-9a-f]{4}):(?P<device_id>[0-9a-f]{4})\]\s*$")
_UNKNOWN_DEVICE = " Device"
_ORDINAL = re.compile(r" #\d+")  # lspci's word for a device id pci.ids does not list


def _split_name(text: str, vendor: str | None) -> tuple[str | None, str | None]:
    """("Intel Corporation Skylake GT2", "Intel Corporation") -> ("Intel Corporation", "Skylake GT2")."""
    if vendor is None or not (text == vendor or text.startswith(vendor + " ")):
        return None, None
    rest = text[len(vendor):].strip()
    return vendor, (None if rest in ("", "Device") else rest)


def _is_device_name(board: str | None, device: str | None) -> bool:
    """lspci prints the device's own name (without a trailing " #1") for a board pci.ids does
    not list: that names no board. "Dell Sunrise Point-LP CSME HECI" for "... HECI #1"."""
    if board is None or device is None:
        return board is None
    return board == device or (device.startswith(board) and _ORDINAL.fullmatch(device[len(board):]) is not None)


def _vendor_names(devices: list[dict[str, Any]], vendor_name: Callable[[str], str | None] | None) -> dict[str, str]:
    """The vendor name lspci printed for each vendor id of this output: the name pci.ids gives
    (when it is what lspci printed), else what "<vendor> Device" lines spell out. lspci joins
    vendor and device names with a space, so a name is never guessed from the text alone."""
    texts: dict[str, set[str]] = {}
    for dev in devices:
        texts.setdefault(dev["vendor_id"], set()).add(dev["description"] or "")
        if dev["subsystem_vendor_id"]:
            texts.setdefault(dev["subsystem_vendor_id"], set()).add(dev["_subsystem_text"] or "")
    names = {}
    for vendor_id, seen in texts.items():
        known = vendor_name(vendor_id) if vendor_name else None
        if known and any(t == known or t.startswith(known + " ") for t in seen):
            names[vendor_id] = known
            continue
        spelled = {t[:-len(_UNKNOWN_DEVICE)] for t in seen if t.endswith(_UNKNOWN_DEVICE)}
        if len(spelled) == 1:
            names[vendor_id] = spelled.pop()
    return names


def parse_lspci_verbose(text: str, vendor_name: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """`lspci -v -nn` (or -vv) as one record per PCI function, in output order: the
    `PCI_ATTRIBUTES` plus `description` (vendor and device as printed), `prog_if`,
    `prog_if_name` and `kernel_modules`. `vendor_name` (a pci.ids lookup of the same host,
    `pci.pci_vendor_lookup`) separates vendor from device name; without it, or when it names a
    vendor differently, only vendors printed as "<vendor> Device" somewhere are separated.
    Slots carry their domain ("0000:00:02.0") like sysfs."""
    devices: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if header := _LSPCI_HEADER.match(line):
            class_name = clean(header["class_name"])
            current = {
                "slot": full_slot(header["slot"]), "class_id": header["class_id"],
                "class_name": None if class_name in (None, "Class") else class_name,
                "vendor_id": header["vendor_id"], "vendor": None,
                "device_id": header["device_id"], "device": None,
                "subsystem_vendor_id": None, "subsystem_vendor": None, "subsystem_device_id": None,
                "subsystem": None, "revision": header["revision"] or "00",  # lspci prints no "(rev 00)"
                "driver": None,
                "description": clean(header["text"]), "prog_if": header["prog_if"],
                "prog_if_name": clean(header["prog_if_name"]), "kernel_modules": [],
                "_subsystem_text": None,
            }
            devices.append(current)
        elif not line.strip():
            current = None  # a blank line ends a device's block
        elif current is None or not line.startswith("\t"):
            continue
        elif sub := _LSPCI_SUBSYSTEM.match(line):
            if sub_vendor_id := parse_pci_id(sub["vendor_id"]):
                current["subsystem_vendor_id"], current["subsystem_device_id"] = sub_vendor_id, sub["device_id"]
                current["_subsystem_text"] = clean(sub["text"])
        elif line.startswith("\tKernel driver in use:"):
            current["driver"] = clean(line.split(":", 1)[1])
        elif line.startswith("\tKernel modules:"):
            current["kernel_modules"] = [m.strip() for m in line.split(":", 1)[1].split(",") if m.strip()]
    names = _vendor_names(devices, vendor_name)
    for dev in devices:
        dev["vendor"], dev["device"] = _split_name(dev["description"] or "", names.get(dev["vendor_id"]))
        sub_text = dev.pop("_subsystem_text") or ""
        sub_vendor = names.get(dev["subsystem_vendor_id"] or "")
        if sub_vendor is None and dev["device"] and sub_text.endswith(" " + dev["device"]):
            sub_vendor = sub_text[:-len(dev["device"]) - 1]  # "Dell Skylake GT2 [HD Graphics 520]"
        sub_vendor, board = _split_name(sub_text, sub_vendor)
        dev["subsystem_vendor"] = sub_vendor
        dev["subsystem"] = None if _is_device_name(board, dev["device"]) else board
    return devices


# --- the items and the collector ---------------------------------------------------------------

def pci_contribution(devices: Iterable[dict[str, Any]]) -> Contribution:
    """PCIDevice items (ref pci:<slot>) related computer HAS_COMPONENT device."""
    out = Contribution()
    for dev in devices:
        ref = out.add("PCIDevice", f"pci:{dev['slot']}", {"slot": dev["slot"]},
                      {key: dev.get(key) for key in PCI_ATTRIBUTES})
        out.relate(COMPUTER_REF, "HAS_COMPONENT", ref)
    return out


class PciCollector:
    """PCI functions from sysfs. Not applicable without /sys/bus/pci (containers without
    sysfs, ARM boards whose devices hang on platform buses)."""

    name = "pci"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.list_dir(PCI_DEVICES_DIR) is not None

    def collect(self, ctx: Context) -> Contribution:
        return pci_contribution(read_sysfs_devices(ctx))


__all__ = ["PCI_ATTRIBUTES", "PCI_BASE_CLASSES", "PciCollector", "PciIds", "full_slot", "parse_lspci_verbose",
           "pci_contribution", "read_pci_ids", "read_sysfs_devices"]
