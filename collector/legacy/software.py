"""SOFTWARES: one Software and one SoftwareInstall item per entry, exactly as our agent's package
collectors build them (`agent.collectors.software.purl.contribute_install`): the same refs, the
`package` identifier `<eco>:<name>:<arch>` and the same purls, so a package that our agent and an
OCS / FusionInventory agent both report on one machine is one SoftwareInstall CI, not two.

What differs between the agents, and is undone here:

- OCS names Multi-Arch packages `${binary:Package}` ("libc6:amd64"); dpkg's name is "libc6".
- OCS's deb INSTALLDATE is "YYYY/MM/DD hh:mm:ss" with a month counted from 0 (Perl's localtime,
  not incremented); its rpm dates and Fusion's ("DD/MM/YYYY") are right. All are local times.
- Windows and macOS entries (FROM registry, msi, application, ...) have no distribution
  ecosystem: they become `pkg:generic/<from>/<name>` products.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from agent.collectors.base import Contribution
from agent.collectors.software.purl import contribute_install, purl_encode, purl_namespace, purl_prefix
from collector.legacy.fields import iso_utc, positive_int, text
from collector.legacy.sections import Facts
from collector.legacy.xml import Entry, LegacyRequest

DISTRIBUTION_ECOSYSTEMS = ("deb", "rpm", "apk")  # purl types whose namespace is the distribution
MAX_IDENTIFIER = 1024  # cmdb.report: an identifier value's longest
_ECO_UNSAFE = re.compile(r"[^a-z0-9]+")
_OCS_DEB_DATE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})$")
_ISO_LOCAL = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?: (\d{1,2}):(\d{2}):(\d{2}))?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass(frozen=True, slots=True)
class Package:
    eco: str
    name: str
    arch: str | None
    version: str | None
    entry: Entry


def ecosystem(entry: Entry) -> str:
    """FROM ("deb", "rpm", "registry", "WMI", ...) as our ecosystem name; "unknown" when absent."""
    return _ECO_UNSAFE.sub("_", (text(entry, "FROM") or "").lower()).strip("_")[:32] or "unknown"


def read_package(entry: Entry) -> Package | None:
    name = text(entry, "NAME")
    if not name:
        return None
    arch = text(entry, "ARCH") or text(entry, "ARCHITECTURE")
    eco = ecosystem(entry)
    if eco == "deb" and ":" in name:
        base, _, qualifier = name.rpartition(":")
        if base and (qualifier == arch or arch is None):
            name, arch = base, arch or qualifier
    return Package(eco, name, arch, text(entry, "VERSION"), entry)


def install_date(kind: str, package: Package, offset: timedelta | None) -> str | None:
    """The agents' local install time as our agent writes it (UTC, ISO-8601). The local time is read
    with the agent's UTC offset when it sent one, else as UTC; a date alone stays a date."""
    value = text(package.entry, "INSTALLDATE")
    if not value:
        return None
    zone = timezone(offset) if offset is not None else UTC
    try:
        if kind == "ocs" and package.eco == "deb" and (m := _OCS_DEB_DATE.match(value)):
            year, month0, day, hour, minute, second = (int(g) for g in m.groups())
            return iso_utc(datetime(year, month0 + 1, day, hour, minute, second, tzinfo=zone).astimezone(UTC))
        if m := _ISO_LOCAL.match(value):
            parts = [int(g) for g in m.groups() if g is not None]
            if len(parts) == 3:
                return datetime(*parts).date().isoformat()
            return iso_utc(datetime(*parts, tzinfo=zone).astimezone(UTC))
        if m := _DAY_FIRST.match(value):
            day, month, year = (int(g) for g in m.groups())
            return datetime(year, month, day).date().isoformat()
    except ValueError:  # a day or month out of range: no date
        return None
    return None


# An inventory repeats one (type, namespace) ~1,000 times: build the purl prefix once.
_prefix = lru_cache(maxsize=256)(purl_prefix)


def _purls(package: Package, distro: str | None) -> tuple[str, str]:
    """(the product's purl, any version; the install's purl with version and arch), spelled as
    agent.collectors.software.purl.package_url spells them (tests/unit/collector/legacy checks it)."""
    if package.eco in DISTRIBUTION_ECOSYSTEMS:
        software = _prefix(package.eco, purl_namespace(distro)) + purl_encode(package.name)
    else:
        software = _prefix("generic", package.eco) + purl_encode(package.name)
    install = f"{software}@{purl_encode(package.version)}" if package.version else software
    if package.arch:
        install += f"?arch={purl_encode(package.arch)}"
    return software, install


def _software_attributes(kind: str, package: Package) -> dict[str, object]:
    publisher = text(package.entry, "PUBLISHER")
    if kind == "ocs" and package.eco == "deb":
        return {"homepage": publisher}  # OCS puts the package's Homepage field there
    if package.eco == "rpm":
        return {"vendor": publisher}
    return {"publisher": publisher}


def map_softwares(request: LegacyRequest, facts: Facts) -> Contribution:
    packages = [p for p in map(read_package, request.entries("SOFTWARES")) if p is not None]
    # The same name and arch in several versions at once (rpm kernels, Windows runtimes): each
    # version is its own install, as in our rpm collector.
    installs = Counter((p.eco, p.name, p.arch) for p in packages)
    out = Contribution()
    for package in packages:
        software_purl, install_purl = _purls(package, facts.distro)
        several = installs[(package.eco, package.name, package.arch)] > 1
        identifier = f"{package.eco}:{package.name}:{package.arch or 'unknown'}:{package.version or ''}"
        if max(len(identifier), len(install_purl)) > MAX_IDENTIFIER:
            continue  # no real package has a name this long; the report could not carry it
        entry = package.entry
        contribute_install(
            out, package.eco, package.name, package.arch, software_purl, _software_attributes(facts.kind, package),
            {"name": package.name, "version": package.version, "arch": package.arch,
             "size_bytes": positive_int(entry, "FILESIZE"), "section": text(entry, "SYSTEM_CATEGORY"),
             "installed": True,  # both agents list installed packages only
             "purl": install_purl, "install_date": install_date(facts.kind, package, facts.utc_offset),
             "description": text(entry, "COMMENTS"), "folder": text(entry, "FOLDER"),
             "guid": text(entry, "GUID"), "url": text(entry, "URL_INFO_ABOUT") or text(entry, "HELPLINK")},
            version_key=(package.version or "unknown") if several else None,
        )
    return out
