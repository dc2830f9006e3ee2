"""PCI vendor names from the pci.ids database (the file `lspci` reads), looked up id by id.

pci.ids is 1.3 MB: it is read once per collector run, and only when an id needs a name; a
lookup is one substring search for the vendor's line, never a parse of the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent.context import Context
from cmdb.junk import clean

PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")
_PCI_ID = re.compile(r"^(?:0x)?([0-9a-f]{4})$")


def parse_pci_id(text: str | None) -> str | None:
    """A 16-bit PCI id as sysfs writes it ("0x1af4\\n") in pci.ids spelling ("1af4"); None for
    anything else (a vendor name, virtio-mmio's 32-bit "0x554d4551", the "no vendor" 0xffff)."""
    match = _PCI_ID.match((text or "").strip().lower())
    return match[1] if match and match[1] not in ("0000", "ffff") else None


def pci_vendor_name(pci_ids: str, vendor_id: str) -> str | None:
    """The name pci.ids gives a vendor id ("1af4" -> "Red Hat, Inc."). Vendor lines are the
    only ones that start with four hex digits in column 0 (devices are indented, classes "C ")."""
    start = pci_ids.find(f"\n{vendor_id.lower()}  ")
    if start < 0:
        return None
    start += len(vendor_id) + 3
    end = pci_ids.find("\n", start)
    return clean(pci_ids[start:end if end >= 0 else None])


def pci_vendor_lookup(ctx: Context) -> Callable[[str], str | None]:
    """A vendor-name lookup over the host's pci.ids, read on first use; names nothing without one."""
    database: list[str] = []

    def lookup(vendor_id: str) -> str | None:
        if not database:
            database.append(next((text for path in PCI_IDS_PATHS
                                  if (text := ctx.read_file(path)) is not None), ""))
        return pci_vendor_name(database[0], vendor_id)

    return lookup
