"""The junk denylist, tested on the placeholder values real firmware ships (the GLPI corpora)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cmdb.junk import clean, clean_mac, clean_uuid, is_identity_mac, is_junk

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "host" / "glpi-agent" / "dmidecode"

REAL_JUNK = ["To Be Filled By O.E.M.", "To be filled by O.E.M.", "System Serial Number", "Default string",
             "Not Specified", "Not Available", "None", "N/A", "  ", "", "0", "00000000", "Chassis Serial Number",
             "System Product Name", "System manufacturer", "0123456789", "XXXXXXXXXX", "........",
             "Base Board Serial Number", "\x00\x00"]
REAL_VALUES = ["CZJ1020BTL", "VMware-42 1a 2b", "Dell Inc.", "ProLiant DL360 G7", "R0-1234", "1", "A1"]


@pytest.mark.parametrize("value", REAL_JUNK)
def test_junk_is_dropped(value):
    assert is_junk(value) and clean(value) is None


@pytest.mark.parametrize("value", REAL_VALUES)
def test_real_values_are_kept(value):
    assert clean(f"  {value} ") == value


@pytest.mark.parametrize("uuid,expected", [
    ("4C4C4544-0039-3510-8048-B4C04F4A4B31", "4c4c4544-0039-3510-8048-b4c04f4a4b31"),
    ("00000000-0000-0000-0000-000000000000", None),
    ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
    ("03000200-0400-0500-0006-000700080009", None),
    ("Not Settable", None), ("", None), (None, None), ("1234", None),
])
def test_uuid_cleaning(uuid, expected):
    assert clean_uuid(uuid) == expected


@pytest.mark.parametrize("mac,expected,identity", [
    ("52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef", False),  # QEMU default OUI is locally administered? no:
    ("00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e", True),
    ("02:42:ac:11:00:02", "02:42:ac:11:00:02", False),  # docker
    ("00-00-00-00-00-00", None, None), ("ff:ff:ff:ff:ff:ff", None, None), ("zz", None, None),
])
def test_mac_cleaning(mac, expected, identity):
    assert clean_mac(mac) == expected
    if expected and identity is not None and mac.startswith("00"):
        assert is_identity_mac(expected) is identity
    if expected and mac.startswith("02"):
        assert is_identity_mac(expected) is False


def test_every_placeholder_serial_in_the_corpora_is_junk():
    """GLPI drops these placeholders from real dumps; so must we, and we must keep the rest."""
    if not CORPORA.is_dir():
        pytest.fail(f"fixtures missing: {CORPORA}")
    placeholders = re.compile(r"^(to be filled|system serial|default string|not specified|chassis serial"
                              r"|0+$|none$|n/a$)", re.I)
    seen_junk = seen_real = 0
    for dump in CORPORA.rglob("*"):
        if not dump.is_file() or "expected" in dump.parts:
            continue
        for match in re.finditer(r"^\s*Serial Number:\s*(.*)$", dump.read_text(errors="replace"), re.M):
            value = match.group(1).strip()
            if placeholders.match(value):
                assert is_junk(value), (dump.name, value)
                seen_junk += 1
            elif re.fullmatch(r"[A-Z0-9][A-Z0-9-]{5,}", value) and len(set(value)) > 3 and not value.isdigit():
                assert not is_junk(value), (dump.name, value)
                seen_real += 1
    assert seen_junk > 5 and seen_real > 20


@pytest.mark.parametrize("mac", ["00:05:9a:3c:7a:00", "20:41:53:59:4e:ff", "50:50:54:50:30:30",
                                 "01:00:5e:00:00:fb", "33:50:6f:45:30:30"])
def test_shared_and_group_macs_never_identify(mac):
    assert clean_mac(mac) == mac and not is_identity_mac(mac)
