"""Debian packages from dpkg-query: one SoftwareInstall per package dpkg knows (any state, the
`status` attribute says which), one Software per package name.

The format's first six columns are GLPI agent's, so its recorded outputs parse here unchanged;
the maintainer is a seventh. `parse_dpkg_query` is shared with the SSH scanner.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.os import OS_RELEASE_PATHS, parse_os_release
from agent.context import Context

DPKG_FORMAT = ("${Package}\\t${Architecture}\\t${Version}\\t${Installed-Size}\\t${Section}"
               "\\t${Status}\\t${Maintainer}\\n")
DPKG_QUERY = ["dpkg-query", "--show", f"--showformat={DPKG_FORMAT}"]
DPKG_TIMEOUT = 120.0


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


def _purl_part(value: str) -> str:
    # The purl spec: percent-encode all but unreserved characters; ':' may stay as is.
    return quote(value, safe=":")


def deb_software_purl(distro: str | None, name: str) -> str:
    """The Package URL of a package name, any version: pkg:deb/debian/libstdc%2B%2B6."""
    namespace = f"{_purl_part(distro.lower())}/" if distro else ""
    return f"pkg:deb/{namespace}{_purl_part(name)}"


def deb_install_purl(distro: str | None, pkg: DebPackage) -> str:
    """The Package URL of one installed package: ...@<version>?arch=<arch>."""
    purl = f"{deb_software_purl(distro, pkg.name)}@{_purl_part(pkg.version)}"
    return f"{purl}?arch={_purl_part(pkg.arch)}" if pkg.arch else purl


def distro_id(ctx: Context) -> str | None:
    for path in OS_RELEASE_PATHS:
        text = ctx.read_file(path)
        if text is not None:
            return parse_os_release(text).get("ID")
    return None


def contribute_packages(out: Contribution, distro: str | None, packages: list[DebPackage]) -> None:
    for pkg in packages:
        arch = pkg.arch or "unknown"
        sw_ref = out.add("Software", f"sw:deb:{pkg.name}", {"purl": deb_software_purl(distro, pkg.name)},
                         {"name": pkg.name, "ecosystem": "deb", "maintainer": pkg.maintainer})
        pkg_ref = out.add("SoftwareInstall", f"pkg:deb:{pkg.name}:{arch}", {"package": f"deb:{pkg.name}:{arch}"}, {
            "name": pkg.name, "version": pkg.version, "arch": pkg.arch, "size_bytes": pkg.size_bytes,
            "section": pkg.section, "status": pkg.status, "installed": pkg.installed,
            "maintainer": pkg.maintainer, "purl": deb_install_purl(distro, pkg),
        })
        out.relate(pkg_ref, "INSTALLED_ON", COMPUTER_REF)
        out.relate(pkg_ref, "INSTANCE_OF", sw_ref)


class DpkgCollector:
    name = "software.dpkg"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.has_command("dpkg-query")

    def collect(self, ctx: Context) -> Contribution:
        packages = parse_dpkg_query(ctx.run(DPKG_QUERY, timeout=DPKG_TIMEOUT))
        out = Contribution()
        contribute_packages(out, distro_id(ctx), packages)
        return out
