"""The values a walk yields, and how parsers read them.

Every transport (our BER decoder for v1/v2c, pysnmp for v3, the .snmprec reader of the tests)
hands parsers the same plain shapes, so a parser is a pure function of `{oid: value}`:

| SNMP type                                  | Python value                 |
|--------------------------------------------|------------------------------|
| INTEGER, Counter32/64, Gauge32, TimeTicks  | `int`                        |
| OCTET STRING, Opaque                       | `bytes`                      |
| OBJECT IDENTIFIER                          | `ObjectId` (a dotted `str`)  |
| IpAddress                                  | `IpAddressValue` (`bytes`)   |
| NULL, noSuchObject, noSuchInstance         | `None` (absent)              |

OIDs are dotted strings without a leading dot ("1.3.6.1.2.1.1.5.0"). Devices send junk: an
IpAddress of zero bytes, a MAC of 5 bytes, Latin-1 in a sysDescr. The readers below return None
for what they cannot read instead of raising, so one bad value never costs the rest of a table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from cmdb.junk import clean, clean_mac


class ObjectId(str):
    """An OBJECT IDENTIFIER value (kept apart from strings: sysObjectID is one)."""

    __slots__ = ()


class IpAddressValue(bytes):
    """An IpAddress value: normally 4 bytes, but devices send other lengths."""

    __slots__ = ()


class _EndOfMibView:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END_OF_MIB_VIEW"


END_OF_MIB_VIEW = _EndOfMibView()

Value = int | bytes | ObjectId | IpAddressValue | None
Walk = Mapping[str, Value]


def text(value: Value) -> str | None:
    """An OCTET STRING as text: UTF-8 when it is, Latin-1 otherwise; NULs and edge blanks cut;
    None when empty. Numbers are rendered, so a device that sends an integer still reads."""
    if value is None:
        return None
    if isinstance(value, bytes):
        raw = value.replace(b"\x00", b"")
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = raw.decode("latin-1")
        decoded = decoded.strip()
        return decoded or None
    decoded = str(value).strip()
    return decoded or None


def clean_text(value: Value) -> str | None:
    """`text` with vendor junk ("", "Unknown", "N/A", "To Be Filled By O.E.M.") dropped."""
    return clean(text(value))


def integer(value: Value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def mac_address(value: Value) -> str | None:
    """A 6-byte physical address as aa:bb:cc:dd:ee:ff; None for empty, null, broadcast, other
    lengths. Some agents send the MAC as text ("00:1A:2B:..."), which is read too."""
    if isinstance(value, bytes) and len(value) == 6:
        return clean_mac(value.hex())
    if isinstance(value, bytes) and 12 <= len(value) <= 17:
        try:
            return clean_mac(value.decode("ascii"))
        except UnicodeDecodeError:
            return None
    return None


def ip_address(value: Value) -> str | None:
    """An IpAddress (4 bytes), or an InetAddress OCTET STRING of 4 or 16 bytes, as text."""
    if isinstance(value, bytes) and len(value) in (4, 16):
        return ipaddress.ip_address(bytes(value)).compressed
    return None


def oid_value(value: Value) -> str | None:
    return str(value) if isinstance(value, ObjectId) and value else None


def index_of(oid: str, column: str) -> str | None:
    """The instance part of `oid` below `column` ("1.3.6.1.2.1.2.2.1.2.7" under
    "1.3.6.1.2.1.2.2.1.2" is "7"), None when `oid` is not below it."""
    if oid.startswith(column) and len(oid) > len(column) and oid[len(column)] == ".":
        return oid[len(column) + 1:]
    return None


def column(walk: Walk, column_oid: str) -> dict[str, Value]:
    """{instance index: value} of one table column."""
    prefix = column_oid + "."
    cut = len(prefix)
    return {oid[cut:]: value for oid, value in walk.items() if oid.startswith(prefix)}


def table(walk: Walk, entry_oid: str, columns: Mapping[int, str]) -> dict[str, dict[str, Value]]:
    """Rows of a conceptual table: {index: {column name: value}} for the named column numbers.
    A row exists when any of the named columns has an instance."""
    rows: dict[str, dict[str, Value]] = {}
    for number, name in columns.items():
        for index, value in column(walk, f"{entry_oid}.{number}").items():
            rows.setdefault(index, {})[name] = value
    return rows


def index_numbers(index: str) -> tuple[int, ...] | None:
    """The sub-identifiers of an instance index, None when it is not all numbers."""
    try:
        return tuple(int(part) for part in index.split("."))
    except ValueError:
        return None


def oid_key(oid: str) -> tuple[int, ...]:
    """Sort key of a dotted OID in SNMP (numeric) order."""
    return tuple(int(part) for part in oid.split(".") if part)
