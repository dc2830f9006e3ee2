"""RPM packages from one `rpm -qa --queryformat` call: one SoftwareInstall per installed
package, one Software per package name.

The query format's first eight columns are GLPI agent's (so its recorded outputs parse here
unchanged); EPOCH and LICENSE follow. Missing tags print "(none)": unknown, so absent.
`parse_rpm_qa` and `parse_install_time` are shared with the SSH scanner.

Several versions of one name and arch can be installed at once (kernel, kernel-core,
gpg-pubkey): those installs carry the version in their ref and `package` identifier
(`rpm:kernel-core:x86_64:5.14.0-362.el9`), every other install has the plain
`rpm:<name>:<arch>` form, like dpkg's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from agent.collectors.base import Contribution
from agent.collectors.software.purl import contribute_install, distro_id, iso_utc, package_url, purl_namespace
from agent.context import Context

RPM_FORMAT = ("%{NAME}\\t%{ARCH}\\t%{VERSION}-%{RELEASE}\\t%{INSTALLTIME}\\t%{SIZE}\\t%{VENDOR}"
              "\\t%{SUMMARY}\\t%{GROUP}\\t%{EPOCH}\\t%{LICENSE}\\n")
RPM_QUERY = ["rpm", "-qa", "--queryformat", RPM_FORMAT]
RPM_TIMEOUT = 180.0
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
_NONE = {"", "(none)"}
_NO_GROUP = {"unspecified"}  # Fedora and EL9 set this group on every package: it says nothing


@dataclass(frozen=True)
class RpmPackage:
    name: str
    arch: str | None
    version: str  # upstream version
    release: str | None
    epoch: int | None
    install_time: int | None  # Unix time
    size_bytes: int | None  # installed size
    vendor: str | None
    summary: str | None
    group: str | None
    license: str | None

    @property
    def evr(self) -> str:
        """version-release, as rpm and dnf print them (the epoch stays a separate qualifier)."""
        return f"{self.version}-{self.release}" if self.release else self.version


def _column(columns: list[str], index: int) -> str | None:
    value = columns[index].strip() if index < len(columns) else ""
    return None if value in _NONE else value


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse_rpm_qa(text: str) -> list[RpmPackage]:
    """Lines of `rpm -qa --queryformat <RPM_FORMAT>` (GLPI's 8-column form parses too)."""
    packages = []
    for line in text.splitlines():
        columns = line.split("\t")
        name, evr = _column(columns, 0), _column(columns, 2)
        if not name or not evr:
            continue
        version, _, release = evr.rpartition("-") if "-" in evr else (evr, "", "")
        group = _column(columns, 7)
        packages.append(RpmPackage(
            name=name, arch=_column(columns, 1), version=version, release=release or None,
            epoch=_int(_column(columns, 8)), install_time=_int(_column(columns, 3)),
            size_bytes=_int(_column(columns, 4)), vendor=_column(columns, 5), summary=_column(columns, 6),
            group=None if group is None or group.lower() in _NO_GROUP else group,
            license=_column(columns, 9),
        ))
    return packages


def parse_install_time(text: str) -> str | None:
    """`rpm -q --queryformat '%{INSTALLTIME}\\n' <package>` as ISO-8601 UTC (first line)."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    return iso_utc(first) if first.isdigit() else None


def rpm_software_purl(distro: str | None, name: str) -> str:
    return package_url("rpm", purl_namespace(distro), name)


def rpm_install_purl(distro: str | None, pkg: RpmPackage) -> str:
    """pkg:rpm/fedora/curl@7.79.1-1.fc35?arch=x86_64&epoch=1"""
    return package_url("rpm", purl_namespace(distro), pkg.name, pkg.evr,
                       {"arch": pkg.arch, "epoch": str(pkg.epoch) if pkg.epoch else None})


def contribute_packages(out: Contribution, distro: str | None, packages: list[RpmPackage]) -> None:
    installs = Counter((p.name, p.arch) for p in packages)
    for pkg in packages:
        several = installs[(pkg.name, pkg.arch)] > 1
        contribute_install(
            out, "rpm", pkg.name, pkg.arch, rpm_software_purl(distro, pkg.name),
            {"vendor": pkg.vendor},
            {"name": pkg.name, "version": pkg.evr, "epoch": pkg.epoch, "arch": pkg.arch,
             "size_bytes": pkg.size_bytes, "section": pkg.group, "vendor": pkg.vendor,
             "license": pkg.license, "install_date": iso_utc(pkg.install_time),
             "installed": True, "purl": rpm_install_purl(distro, pkg)},
            version_key=(f"{pkg.epoch}:{pkg.evr}" if pkg.epoch else pkg.evr) if several else None,
        )


class RpmCollector:
    name = "software.rpm"

    def is_enabled(self, ctx: Context) -> bool:
        # rpm is installable on Debian too (alien, mock): only a populated database counts.
        return ctx.has_command("rpm") and any(ctx.list_dir(path) for path in RPM_DB_DIRS)

    def collect(self, ctx: Context) -> Contribution:
        packages = parse_rpm_qa(ctx.run(RPM_QUERY, timeout=RPM_TIMEOUT))
        out = Contribution()
        contribute_packages(out, distro_id(ctx), packages)
        return out
