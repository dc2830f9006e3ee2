"""Alpine packages from apk's database, /lib/apk/db/installed: a file read, no process.

Each package is a block of `K:value` lines (P name, V version, A arch, I installed size, L
license, o origin, m maintainer, t build time, ...), blocks separated by a blank line; the
file lists (F/R/a/Z/M lines) are skipped. apk records no install time: `build_date` (t:) is when
the package was built, and `install_date` stays absent rather than wrong.
`parse_apk_installed` is shared with the SSH scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.collectors.base import Contribution
from agent.collectors.software.purl import contribute_install, distro_id, iso_utc, package_url, purl_namespace
from agent.context import Context

APK_INSTALLED = "/lib/apk/db/installed"
_FIELDS = {"P": "name", "V": "version", "A": "arch", "I": "installed_size", "L": "license",
           "o": "origin", "m": "maintainer", "t": "build_time", "U": "url"}


@dataclass(frozen=True)
class ApkPackage:
    name: str
    version: str
    arch: str | None = None
    size_bytes: int | None = None  # installed size (I:), not the archive size (S:)
    license: str | None = None
    origin: str | None = None  # the source package (aport) it was built from
    maintainer: str | None = None
    build_time: int | None = None
    url: str | None = None


def _package(fields: dict[str, str]) -> ApkPackage | None:
    if not fields.get("name") or not fields.get("version"):
        return None
    size, built = fields.get("installed_size", ""), fields.get("build_time", "")
    return ApkPackage(
        name=fields["name"], version=fields["version"], arch=fields.get("arch"),
        size_bytes=int(size) if size.isdigit() else None, license=fields.get("license"),
        origin=fields.get("origin"), maintainer=fields.get("maintainer"),
        build_time=int(built) if built.isdigit() else None, url=fields.get("url"),
    )


def parse_apk_installed(text: str) -> list[ApkPackage]:
    """/lib/apk/db/installed: one ApkPackage per block with a name and a version."""
    packages, fields = [], {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if pkg := _package(fields):
                packages.append(pkg)
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if sep and key in _FIELDS and value.strip():
            fields[_FIELDS[key]] = value.strip()
    return packages


def apk_software_purl(distro: str | None, name: str) -> str:
    return package_url("apk", purl_namespace(distro or "alpine"), name)


def apk_install_purl(distro: str | None, pkg: ApkPackage) -> str:
    """pkg:apk/alpine/curl@8.5.0-r0?arch=x86_64"""
    return package_url("apk", purl_namespace(distro or "alpine"), pkg.name, pkg.version, {"arch": pkg.arch})


def contribute_packages(out: Contribution, distro: str | None, packages: list[ApkPackage]) -> None:
    for pkg in packages:
        contribute_install(
            out, "apk", pkg.name, pkg.arch, apk_software_purl(distro, pkg.name),
            {"maintainer": pkg.maintainer, "origin": pkg.origin, "url": pkg.url},
            {"name": pkg.name, "version": pkg.version, "arch": pkg.arch, "size_bytes": pkg.size_bytes,
             "license": pkg.license, "origin": pkg.origin, "maintainer": pkg.maintainer,
             "build_date": iso_utc(pkg.build_time), "installed": True,
             "purl": apk_install_purl(distro, pkg)},
        )


class ApkCollector:
    name = "software.apk"

    def is_enabled(self, ctx: Context) -> bool:
        return "installed" in (ctx.list_dir(APK_INSTALLED.rsplit("/", 1)[0]) or [])

    def collect(self, ctx: Context) -> Contribution:
        out = Contribution()
        contribute_packages(out, distro_id(ctx), parse_apk_installed(ctx.read_file(APK_INSTALLED) or ""))
        return out
