"""hrSWInstalledTable: installed packages, named the way the agent's package collectors name them.

net-snmp builds the names from the package database: `name_version_arch` from dpkg (cut to 63
characters), `name-version-release` from rpm (no architecture), and the Windows SNMP service
sends display names. Per host the dominant form decides the ecosystem:

- deb: the same Software purl and SoftwareInstall `package` identifier as agent/collectors/
  software/dpkg.py, so an SNMP scan and the agent on one Debian host meet on the same CIs. A name
  that the 63-character cut left without its architecture is completed when the cut-off prefix
  names exactly one architecture the host uses ("…_am" -> amd64); otherwise it is left out
  rather than reported under a wrong identifier (`truncated_dropped` counts them).
- rpm: name and version-release; the architecture is unknown ("rpm:<name>:unknown").
- generic: the display name as is (Windows), purl type "generic".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from discovery.snmp import mibs
from discovery.snmp.values import Walk, index_numbers, integer, table, text

NET_SNMP_NAME_LIMIT = 63
_DEB = re.compile(r"^(?P<name>[a-z0-9][a-z0-9+.-]+)_(?P<version>[A-Za-z0-9.+~:-]+)_(?P<arch>[a-z0-9-]+)$")
_DEB_CUT = re.compile(r"^(?P<name>[a-z0-9][a-z0-9+.-]+)_(?P<version>[A-Za-z0-9.+~:-]+)(?:_(?P<arch>[a-z0-9-]*))?$")
_RPM = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)$")
SW_TYPES = {1: "unknown", 2: "operatingSystem", 3: "deviceDriver", 4: "application"}


@dataclass(frozen=True)
class InstalledPackage:
    ecosystem: str  # deb, rpm, generic
    name: str
    version: str | None = None
    arch: str | None = None
    kind: str | None = None
    install_date: str | None = None


@dataclass
class InstalledSoftware:
    ecosystem: str | None = None
    distro: str | None = None
    packages: list[InstalledPackage] = field(default_factory=list)
    truncated_dropped: int = 0


def date_and_time(value: object) -> str | None:
    """SNMPv2-TC DateAndTime (8 or 11 octets) as ISO-8601 UTC; None without a time zone or
    when malformed (an all-zero date is "unknown")."""
    if not isinstance(value, bytes) or len(value) not in (8, 11):
        return None
    year = int.from_bytes(value[0:2], "big")
    month, day, hour, minute, second = value[2], value[3], value[4], value[5], value[6]
    try:
        stamp = datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return None
    if len(value) == 8 or value[8] not in (ord("+"), ord("-")):
        return None
    offset = timedelta(hours=value[9], minutes=value[10])
    zone = timezone(offset if value[8] == ord("+") else -offset)
    return stamp.replace(tzinfo=zone).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _deb_distro(packages: list[InstalledPackage]) -> str | None:
    """The os-release ID of a dpkg host from base-files' version (12.4+deb12u5 / 13ubuntu10)."""
    base = next((p for p in packages if p.name == "base-files"), None)
    if base is None or not base.version:
        return None
    return "ubuntu" if "ubuntu" in base.version else "debian"


def parse_installed(walk: Walk) -> InstalledSoftware:
    rows = []
    for index, row in table(walk, mibs.HR_SW_INSTALLED_ENTRY, mibs.HR_SW_INSTALLED_COLUMNS).items():
        name = text(row.get("name"))
        if name and index_numbers(index):
            rows.append((index_numbers(index), name, row))
    rows.sort(key=lambda r: r[0])
    out = InstalledSoftware()
    if not rows:
        return out
    names = [name for _, name, _ in rows]
    deb = sum(1 for n in names if _DEB.match(n))
    rpm = sum(1 for n in names if _RPM.match(n) and " " not in n)
    out.ecosystem = "deb" if deb * 2 >= len(names) else "rpm" if rpm * 2 >= len(names) else "generic"
    # Architectures the host uses, from names the cut cannot have touched.
    arches = Counter(m["arch"] for n in names if len(n) < NET_SNMP_NAME_LIMIT and (m := _DEB.match(n))) \
        if out.ecosystem == "deb" else Counter()
    for _, name, row in rows:
        kind = SW_TYPES.get(integer(row.get("type")) or 0)
        when = date_and_time(row.get("date"))
        if out.ecosystem == "deb":
            match = _DEB.match(name)
            if match is not None and len(name) >= NET_SNMP_NAME_LIMIT and match["arch"] not in arches:
                match = None  # "..._am": the cut fell inside the architecture
            if match is None and len(name) >= NET_SNMP_NAME_LIMIT and (cut := _DEB_CUT.match(name)):
                prefix = cut["arch"] or ""
                candidates = [a for a in arches if a.startswith(prefix)] if cut["arch"] is not None else []
                if len(candidates) == 1:
                    out.packages.append(InstalledPackage("deb", cut["name"], cut["version"], candidates[0], kind, when))
                else:
                    out.truncated_dropped += 1
                continue
            if match is None:
                out.packages.append(InstalledPackage("generic", name, None, None, kind, when))
                continue
            out.packages.append(InstalledPackage("deb", match["name"], match["version"], match["arch"], kind, when))
        elif out.ecosystem == "rpm" and (match := _RPM.match(name)) and " " not in name:
            out.packages.append(InstalledPackage("rpm", match["name"], f"{match['version']}-{match['release']}",
                                                 None, kind, when))
        else:
            out.packages.append(InstalledPackage("generic", name, None, None, kind, when))
    out.distro = _deb_distro(out.packages) if out.ecosystem == "deb" else None
    return out
