"""Values vendors put where they have no value. Dropped at the edge: unknown is None, never junk.

The list is GLPI agent's `isInvalidBiosValue` placeholder set plus what the field shows up with
in real dumps (see tests/unit/test_junk.py, run on the values found in the corpora).
"""

from __future__ import annotations

import re

_JUNK_TEXT = {
    "", "n/a", "na", "none", "null", "unknown", "not specified", "not present", "not available",
    "not installed", "not applicable", "default string", "default", "to be filled by o.e.m.",
    "to be filled by oem", "o.e.m.", "oem", "system product name", "system manufacturer",
    "system serial number", "system version", "chassis serial number", "chassis manufacture",
    "chassis manufacturer", "chassis version", "base board serial number", "no asset tag",
    "no asset information", "asset tag", "<bad index>", "<out of spec>", "serial number",
    "0123456789", "1234567890", "123456789", "x.x", "xxxxxxxxxx", "invalid", "empty", "-", "--",
}
# Serials made of one repeated character (0000000, FFFFFFFF, ........) or spaces.
_REPEATED = re.compile(r"^(.)\1*$")
_FILLER = re.compile(r"^[0fx.*#?]+$", re.I)
_UUID_HEX = re.compile(r"[^0-9a-f]")


def is_junk(value: object) -> bool:
    """True when `value` carries no information (placeholder text, filler, empty)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip().strip("\x00").strip()
    if text.lower() in _JUNK_TEXT:
        return True
    compact = text.replace(" ", "").replace("-", "")
    if _FILLER.match(compact) and _REPEATED.match(compact):
        return True
    return bool(_REPEATED.match(compact)) and len(compact) > 2


def clean(value: str | None) -> str | None:
    """The trimmed value, or None when it is junk."""
    if value is None or is_junk(value):
        return None
    return value.strip().strip("\x00").strip()


def clean_uuid(value: str | None) -> str | None:
    """A system UUID in canonical lower-case form, or None when absent, malformed or filler
    (all zeros, all F, one repeated digit, the 03000200-0400-0500-0006-000700080009 board default)."""
    if value is None:
        return None
    hexdigits = _UUID_HEX.sub("", value.strip().lower())
    if len(hexdigits) != 32 or _REPEATED.match(hexdigits):
        return None
    if hexdigits == "03000200040005000006000700080009":
        return None
    return f"{hexdigits[:8]}-{hexdigits[8:12]}-{hexdigits[12:16]}-{hexdigits[16:20]}-{hexdigits[20:]}"


_MAC_HEX = re.compile(r"[^0-9a-f]")
# Addresses that are not a machine's identity: null, broadcast, and locally administered ones
# handed out by software (docker0, veth, VPN taps) — bit 1 of the first octet set.
_NULL_MACS = {"000000000000", "ffffffffffff"}


def clean_mac(value: str | None) -> str | None:
    """A MAC address as aa:bb:cc:dd:ee:ff, or None when malformed or null/broadcast."""
    if value is None:
        return None
    hexdigits = _MAC_HEX.sub("", value.strip().lower())
    if len(hexdigits) != 12 or hexdigits in _NULL_MACS:
        return None
    return ":".join(hexdigits[i:i + 2] for i in range(0, 12, 2))


# Addresses that drivers give every machine alike: the same MAC on thousands of hosts.
_SHARED_MACS = frozenset({
    "00:05:9a:3c:7a:00",  # Cisco AnyConnect virtual adapter
    "00:05:9a:3c:78:00",  # Cisco AnyConnect (older clients)
    "20:41:53:59:4e:ff",  # Windows RAS async adapter ("ASYN" in its bytes)
    "50:50:54:50:30:30",  # Windows WAN miniport ("PPTP00")
    "33:50:6f:45:30:30",  # Windows WAN miniport IPv6 ("3PoE00")
    "00:53:45:00:00:00",  # Windows WAN miniport (IP)
    "02:00:4c:4f:4f:50",  # Microsoft loopback adapter ("LOOP")
})


def is_identity_mac(mac: str) -> bool:
    """A MAC fit to identify a machine: universally administered (not a software-made address),
    not a group address, and not one of the fixed addresses virtual adapters share."""
    first = int(mac[:2], 16)
    return not (first & 0x03) and mac not in _SHARED_MACS
