"""A small reader of snmpsim's .snmprec recordings (`OID|tag|value`, optionally bz2), giving the
`{oid: value}` shape the parsers take (discovery.snmp.values), so parser tests run on the exact
files snmpsim serves in the lab.

A value snmpsim could not serve either (bad hex, an IpAddress that is not 4 numbers) becomes
None, as a live walk would not return it. Variation records (`4:writecache|...`) keep their
plain value.
"""

from __future__ import annotations

import bz2
from pathlib import Path

from discovery.snmp.values import IpAddressValue, ObjectId, Value

INTEGER_TAGS = {"2", "65", "66", "67", "70", "71"}


def _value(tag: str, raw: str) -> Value:
    hexed = tag.endswith("x")
    base = tag[:-1] if hexed else tag
    base = base.split(":", 1)[0]
    try:
        data = bytes.fromhex(raw) if hexed else None
    except ValueError:
        return None
    if base == "4" or base == "68":
        return data if hexed else raw.encode("utf-8", "surrogateescape")
    if base in INTEGER_TAGS:
        try:
            return int(raw)
        except ValueError:
            return None
    if base == "6":
        return ObjectId(raw)
    if base == "64":
        if hexed:
            return IpAddressValue(data or b"")
        parts = raw.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            return None
        return IpAddressValue(bytes(int(p) for p in parts))
    return None


def read_snmprec(path: Path | str, prefixes: tuple[str, ...] | None = None) -> dict[str, Value]:
    """The recording as {oid: value}; with `prefixes`, only the OIDs starting with one of them
    (large recordings hold a million rows; identification needs a few hundred)."""
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    walk: dict[str, Value] = {}
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            if prefixes is not None and not line.startswith(prefixes):
                continue
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("|", 2)
            if len(parts) != 3:
                continue
            oid, tag, raw = parts
            value = _value(tag, raw)
            if value is not None:
                walk[oid.lstrip(".")] = value
    return walk


# What identification reads: the system group, ENTITY-MIB and the Force10 stack table, and the
# first rows of the groups whose presence is a trait (one row is enough to be present).
IDENTIFICATION_PREFIXES = ("1.3.6.1.2.1.1.", "1.3.6.1.2.1.47.1.1.1.1.", "1.3.6.1.4.1.6027.3.10.1.2.2.1.",
                           "1.3.6.1.2.1.25.2.", "1.3.6.1.2.1.25.3.2.1.", "1.3.6.1.2.1.25.4.2.1.2.",
                           "1.3.6.1.2.1.25.6.3.1.2.", "1.3.6.1.2.1.17.1.", "1.3.6.1.2.1.17.4.3.1.2.",
                           "1.3.6.1.2.1.17.7.1.2.2.1.2.", "1.3.6.1.2.1.43.", "1.3.6.1.2.1.25.3.5.1.1.",
                           "1.3.6.1.2.1.2.2.1.1.")
