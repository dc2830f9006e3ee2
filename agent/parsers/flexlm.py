"""FlexLM / FlexNet Publisher license files: the entitlements they grant.

    parse_license_file(text) -> LicenseFile(servers, vendors, use_server, entitlements, notes)

The format, as the FlexNet licensing guide gives it (one statement per line, `\\` continues a line,
`#` starts a comment, values with blanks are quoted):

    SERVER host hostid [port] [...]
    VENDOR daemon [path] [options=path] [port=N]        (DAEMON is the old spelling)
    USE_SERVER
    FEATURE|INCREMENT name vendor version expiry count [key] [NAME=value ...]
    UPGRADE name vendor from_version to_version expiry count [key] [NAME=value ...]

Expiry "permanent", "0" or a year 0 ("1-jan-0", "1-jan-00", "1-jan-0000") never expires (None);
count "uncounted" or 0 is uncounted (node-locked, no server counts it). Signatures (SIGN=, the
old 12-20 hex digit key) are never kept: they are secrets of a sort, and they change on a
reissue that changes nothing the asset manager cares about.

A statement this parser cannot read is skipped with a note naming its line; nothing raises.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date

MAX_LICENSE_FILE_CHARS = 1 * 2**20  # real files with thousands of INCREMENTs stay well under this

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{1,4})$")
# NAME=value, NAME="quoted value", "quoted", or a bare word.
_TOKEN = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|([^\s"]*))|"([^"]*)"|(\S+)')
_ENTITLEMENT_KEYWORDS = {"FEATURE", "INCREMENT", "UPGRADE"}
_IGNORED_KEYWORDS = {"PACKAGE", "FEATURESET"}  # bundle and checksum statements: no entitlement
_FLEXLM_LINE = re.compile(r"^[ \t]*(SERVER|VENDOR|DAEMON|FEATURE|INCREMENT|USE_SERVER)\b", re.M)


class LicenseFileRefused(ValueError):
    """The whole file is not read (too large, binary); the message says why."""


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    hostid: str
    port: int | None = None


@dataclass(frozen=True, slots=True)
class VendorDaemon:
    name: str
    path: str | None = None
    port: int | None = None


@dataclass(slots=True)
class Entitlement:
    kind: str  # FEATURE, INCREMENT or UPGRADE
    feature: str
    vendor: str
    version: str
    expiry: date | None  # None: never expires
    count: int | None  # None when uncounted
    uncounted: bool
    line: int
    host_id: str | None = None
    vendor_string: str | None = None
    issued: date | None = None
    start: date | None = None
    upgrade_from: str | None = None

    def expired(self, today: date) -> bool:
        return self.expiry is not None and self.expiry < today


@dataclass(slots=True)
class LicenseFile:
    servers: list[Server] = field(default_factory=list)
    vendors: list[VendorDaemon] = field(default_factory=list)
    use_server: bool = False
    entitlements: list[Entitlement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "line N: what was skipped and why"

    @property
    def server(self) -> Server | None:
        """The first SERVER line: the only one, or the primary of a redundant triad."""
        return self.servers[0] if self.servers else None


class _Malformed(ValueError):
    pass


def looks_like_flexlm(text: str) -> bool:
    """True when the text has at least one FlexLM statement (license.dat next to a README is not)."""
    return _FLEXLM_LINE.search(text) is not None


def parse_date(value: str) -> date | None:
    """A FlexLM date ("31-dec-2025"); None for the never-expiring spellings; raises on junk."""
    text = value.strip().lower()
    if text in ("permanent", "0"):
        return None
    m = _DATE.match(text)
    if not m or m[2] not in _MONTHS:
        raise _Malformed(f"{value!r} is not a date like 31-dec-2025 or 'permanent'")
    year = int(m[3])
    if year == 0:
        return None
    if year < 100:  # two-digit years of old files
        year += 2000 if year < 70 else 1900
    try:
        return date(year, _MONTHS[m[2]], int(m[1]))
    except ValueError:
        raise _Malformed(f"{value!r} is not a calendar date") from None


def _parse_count(value: str) -> int | None:
    if value.lower() == "uncounted":
        return None
    if not value.isdigit():
        raise _Malformed(f"count {value!r} is neither a number nor 'uncounted'")
    count = int(value)
    return count or None  # 0 means uncounted


def _port(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and 0 < int(value) < 65536 else None


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, statement) with `\\` continuations joined, comments and blank
    lines dropped."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        out.append((start, " ".join(part.strip() for part in pending)))
    return out


def tokenize(statement: str) -> tuple[list[str], dict[str, str]]:
    """Positional words and NAME=value attributes (names upper-cased; quotes removed)."""
    if statement.count('"') % 2:
        raise _Malformed("unbalanced quotes")
    words: list[str] = []
    attrs: dict[str, str] = {}
    for m in _TOKEN.finditer(statement):
        if m[1] is not None:
            attrs[m[1].upper()] = m[2] if m[2] is not None else m[3]
        else:
            words.append(m[4] if m[4] is not None else m[5])
    return words, attrs


def _entitlement(keyword: str, words: list[str], attrs: dict[str, str], line: int) -> Entitlement:
    fixed = 6 if keyword == "UPGRADE" else 5
    if len(words) < fixed:
        wanted = ("name, vendor, from_version, to_version, expiry and count" if keyword == "UPGRADE"
                  else "name, vendor, version, expiry and count")
        raise _Malformed(f"{keyword} needs {wanted}; found {len(words)} values")
    if keyword == "UPGRADE":
        name, vendor, upgrade_from, version, expiry, count = words[:6]
    else:
        (name, vendor, version, expiry, count), upgrade_from = words[:5], None
    parsed_count = _parse_count(count)
    return Entitlement(
        kind=keyword, feature=name, vendor=vendor, version=version, expiry=parse_date(expiry),
        count=parsed_count, uncounted=parsed_count is None, line=line,
        host_id=attrs.get("HOSTID") or None, vendor_string=attrs.get("VENDOR_STRING") or None,
        issued=parse_date(attrs["ISSUED"]) if attrs.get("ISSUED") else None,
        start=parse_date(attrs["START"]) if attrs.get("START") else None,
        upgrade_from=upgrade_from,
    )


def check_license_text(text: str) -> None:
    """Refuse what is not a license file worth reading: too large, or binary."""
    if len(text) > MAX_LICENSE_FILE_CHARS:
        raise LicenseFileRefused(f"larger than {MAX_LICENSE_FILE_CHARS} characters; not a license file")
    if "\x00" in text or text.count("\ufffd") > 16:
        raise LicenseFileRefused("binary content; not a license file")


def parse_license_file(text: str) -> LicenseFile:
    """Every statement of a license file; raises LicenseFileRefused for a huge or binary file."""
    check_license_text(text)
    out = LicenseFile()
    for line, statement in logical_lines(text):
        keyword = statement.split(None, 1)[0].upper()
        try:
            words, attrs = tokenize(statement)
            words = words[1:]
            if keyword == "SERVER":
                if len(words) < 2:
                    raise _Malformed("SERVER needs a host and a hostid")
                out.servers.append(Server(words[0], words[1], _port(words[2] if len(words) > 2 else None)))
            elif keyword in ("VENDOR", "DAEMON"):
                if not words:
                    raise _Malformed(f"{keyword} needs a daemon name")
                path = words[1] if len(words) > 1 else None
                out.vendors.append(VendorDaemon(words[0], path, _port(attrs.get("PORT"))))
            elif keyword == "USE_SERVER":
                out.use_server = True
            elif keyword in _ENTITLEMENT_KEYWORDS:
                out.entitlements.append(_entitlement(keyword, words, attrs, line))
            elif keyword not in _IGNORED_KEYWORDS:
                raise _Malformed(f"unknown statement {keyword[:40]!r}")
        except _Malformed as exc:
            out.notes.append(f"line {line}: {exc}; skipped")
    return out


def license_key(ent: Entitlement, server_hostid: str | None) -> str:
    """A stable identifier of an entitlement: vendor, feature, version, host id, expiry and the
    license server's hostid. Not the signature: a reissued file with a new SIGN is the same right."""
    parts = (ent.vendor, ent.feature, ent.version, (ent.host_id or "").lower(),
             ent.expiry.isoformat() if ent.expiry else "permanent", (server_hostid or "").lower())
    return "flexlm:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def keyed_entitlements(parsed: LicenseFile) -> list[tuple[str, Entitlement]]:
    """(license_key, entitlement) for each entitlement; two lines of one file that share every
    keyed field (two purchases of one feature) get the key plus "#2", "#3" in file order."""
    server_hostid = parsed.server.hostid if parsed.server else None
    seen: dict[str, int] = {}
    out = []
    for ent in parsed.entitlements:
        key = license_key(ent, server_hostid)
        seen[key] = seen.get(key, 0) + 1
        out.append((key if seen[key] == 1 else f"{key}.{seen[key]}", ent))
    return out
