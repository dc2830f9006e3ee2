"""Debian packages from dpkg-query: one SoftwareInstall per package dpkg knows (any state, the
`status` attribute says which), one Software per package name.

The format's first six columns are GLPI agent's, so its recorded outputs parse here unchanged;
the maintainer is a seventh. The install date is the modification time of the package's file
list (/var/lib/dpkg/info/<name>[:<arch>].list), which dpkg rewrites on every install or upgrade:
read with one directory scan on this machine, with one `find` elsewhere, never one process per
package. `parse_dpkg_query` and `parse_list_mtimes` are shared with the SSH scanner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agent.collectors.base import Contribution
from agent.collectors.software.purl import (
    contribute_install,
    distro_id,
    iso_utc,
    package_url,
    purl_encode,
    purl_namespace,
    purl_prefix,
)
from agent.context import CommandError, Context, StartedCommand

DPKG_FORMAT = ("${Package}\\t${Architecture}\\t${Version}\\t${Installed-Size}\\t${Section}"
               "\\t${Status}\\t${Maintainer}\\n")
DPKG_QUERY = ["dpkg-query", "--show", f"--showformat={DPKG_FORMAT}"]
DPKG_TIMEOUT = 120.0
DPKG_INFO = "/var/lib/dpkg/info"
LIST_MTIMES = ["find", DPKG_INFO, "-maxdepth", "1", "-name", "*.list", "-printf", "%T@ %f\\n"]

__all__ = ["DPKG_QUERY", "DebPackage", "DpkgCollector", "deb_install_purl", "deb_software_purl",
           "distro_id", "parse_dpkg_query", "parse_list_mtimes"]


@dataclass(frozen=True)
class DebPackage:
    name: str
    arch: str | None
    version: str
    size_bytes: int | None  # Installed-Size is in KiB; absent for some packages
    section: str | None
    status: str | None  # "install ok installed", "deinstall ok config-files", ...
    maintainer: str | None

    @property
    def installed(self) -> bool | None:
        """Files on disk ("installed" state); False for removed-but-configured and half states."""
        return self.status.split()[-1] == "installed" if self.status else None


def _field(columns: list[str], index: int) -> str | None:
    value = columns[index].strip() if index < len(columns) else ""
    return value or None


def parse_dpkg_query(text: str) -> list[DebPackage]:
    """Lines of `dpkg-query --show --showformat=<DPKG_FORMAT>` (columns 6 and 7 optional)."""
    packages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        columns = line.split("\t")
        name, arch, version = _field(columns, 0), _field(columns, 1), _field(columns, 2)
        if not name or not version:
            continue
        size = _field(columns, 3)
        packages.append(DebPackage(
            name=name, arch=arch, version=version,
            size_bytes=int(size) * 1024 if size and size.isdigit() else None,
            section=_field(columns, 4), status=_field(columns, 5), maintainer=_field(columns, 6),
        ))
    return packages


def parse_list_mtimes(text: str) -> dict[str, float]:
    """`find ... -printf '%T@ %f\\n'` output: {"curl.list": 1700000000.25, ...}."""
    mtimes = {}
    for line in text.splitlines():
        stamp, _, name = line.partition(" ")
        try:
            mtimes[name] = float(stamp)
        except ValueError:
            continue
    return mtimes


def read_list_mtimes(ctx: Context) -> dict[str, float]:
    """Modification times of the dpkg file lists; {} when they cannot be read."""
    if ctx.local:
        mtimes = {}
        try:
            with os.scandir(DPKG_INFO) as entries:
                for entry in entries:
                    if entry.name.endswith(".list"):
                        try:
                            mtimes[entry.name] = entry.stat().st_mtime
                        except OSError:
                            continue
        except OSError:
            return {}
        return mtimes
    try:
        return parse_list_mtimes(ctx.run(LIST_MTIMES))
    except CommandError:
        return {}


def install_date(pkg: DebPackage, mtimes: dict[str, float]) -> str | None:
    """The ISO-8601 UTC time dpkg last wrote the package's file list ("Multi-Arch: same"
    packages name theirs <name>:<arch>.list)."""
    stamp = mtimes.get(f"{pkg.name}:{pkg.arch}.list") or mtimes.get(f"{pkg.name}.list")
    return iso_utc(stamp)


def deb_software_purl(distro: str | None, name: str) -> str:
    """The Package URL of a package name, any version: pkg:deb/debian/libstdc%2B%2B6."""
    return package_url("deb", purl_namespace(distro), name)


def deb_install_purl(distro: str | None, pkg: DebPackage) -> str:
    """The Package URL of one installed package: ...@<version>?arch=<arch>."""
    return package_url("deb", purl_namespace(distro), pkg.name, pkg.version, {"arch": pkg.arch})


def contribute_packages(out: Contribution, distro: str | None, packages: list[DebPackage],
                        mtimes: dict[str, float] | None = None) -> None:
    # The purls as deb_software_purl/deb_install_purl spell them, the shared prefix built once.
    prefix = purl_prefix("deb", purl_namespace(distro))
    mtimes = mtimes or {}
    for pkg in packages:
        software_purl = prefix + purl_encode(pkg.name)
        install_purl = f"{software_purl}@{purl_encode(pkg.version)}" if pkg.version else software_purl
        if pkg.arch:
            install_purl += f"?arch={purl_encode(pkg.arch)}"
        contribute_install(
            out, "deb", pkg.name, pkg.arch, software_purl, {"maintainer": pkg.maintainer},
            {"name": pkg.name, "version": pkg.version, "arch": pkg.arch, "size_bytes": pkg.size_bytes,
             "section": pkg.section, "status": pkg.status, "installed": pkg.installed,
             "maintainer": pkg.maintainer, "purl": install_purl, "install_date": install_date(pkg, mtimes)},
        )


class DpkgCollector:
    name = "software.dpkg"

    def __init__(self) -> None:
        self._query: tuple[Context, StartedCommand] | None = None

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.has_command("dpkg-query")

    def prepare(self, ctx: Context) -> None:
        """Start dpkg-query, so that it runs while the collectors before this one do."""
        self._discard()
        self._query = (ctx, ctx.start(DPKG_QUERY, timeout=DPKG_TIMEOUT))

    def collect(self, ctx: Context) -> Contribution:
        query, self._query = self._query, None
        if query is not None and query[0] is ctx:
            listing = query[1].output()
        else:
            if query is not None:
                query[1].cancel()
            listing = ctx.run(DPKG_QUERY, timeout=DPKG_TIMEOUT)
        packages = parse_dpkg_query(listing)
        del listing
        out = Contribution()
        contribute_packages(out, distro_id(ctx), packages, read_list_mtimes(ctx))
        return out

    def _discard(self) -> None:
        if self._query is not None:
            self._query[1].cancel()
            self._query = None
