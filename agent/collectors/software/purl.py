"""Package URLs (https://github.com/package-url/purl-spec) and the refs every packaging
collector shares.

One package manager's collector builds, per package: a Software item (ref `sw:<eco>:<name>`,
identified by the purl without version: the product, any version) and a SoftwareInstall item
(ref `pkg:<eco>:<name>:<arch>`, identifier `package` = `<eco>:<name>:<arch>`, attribute `purl`
with version and qualifiers). Other collectors add attributes to the same refs (dpkg licenses),
so these formats are a contract: change them and history breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.os import OS_RELEASE_PATHS, parse_os_release
from agent.context import Context

# os-release IDs whose purl namespace is spelled otherwise in the purl spec's examples.
NAMESPACE_ALIASES = {"rhel": "redhat", "sles": "suse", "sled": "suse", "opensuse-leap": "opensuse",
                     "opensuse-tumbleweed": "opensuse"}
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")


# What urllib's quote(value, safe=":") does to each ASCII character, as a str.translate table: a
# package manager lists ~1,000 packages, and quote() costs ~3 us a call.
_PURL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~:")
_PURL_ASCII = {c: f"%{c:02X}" for c in range(128) if chr(c) not in _PURL_SAFE}


def purl_encode(value: str) -> str:
    """Percent-encoding as the purl spec (and packageurl-python) does it: everything but RFC 3986
    unreserved characters, with ':' left as is (non-ASCII as its UTF-8 bytes)."""
    if value.isascii():
        return value.translate(_PURL_ASCII)
    return quote(value, safe=":")


def purl_prefix(type_: str, namespace: str | None) -> str:
    """The part of a package URL before the name: pkg:<type>/<namespace>/ ."""
    purl = f"pkg:{type_.lower()}/"
    if namespace:
        purl += "/".join(purl_encode(seg) for seg in namespace.lower().split("/") if seg) + "/"
    return purl


def package_url(type_: str, namespace: str | None, name: str, version: str | None = None,
                qualifiers: Mapping[str, str | None] | None = None) -> str:
    """pkg:<type>/<namespace>/<name>@<version>?<qualifiers sorted by key, empty ones dropped>."""
    purl = purl_prefix(type_, namespace) + purl_encode(name)
    if version:
        purl += "@" + purl_encode(version)
    pairs = sorted((k.lower(), v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        purl += "?" + "&".join(f"{k}={purl_encode(v)}" for k, v in pairs)
    return purl


def purl_namespace(distro: str | None) -> str | None:
    """The purl namespace of a distribution, from its os-release ID ("debian", "fedora", "alpine")."""
    if not distro:
        return None
    distro = distro.lower()
    return NAMESPACE_ALIASES.get(distro, distro)


def distro_id(ctx: Context) -> str | None:
    """The os-release ID of the inventoried host."""
    for path in OS_RELEASE_PATHS:
        text = ctx.read_file(path)
        if text is not None:
            return parse_os_release(text).get("ID")
    return None


def ref_token(*parts: str) -> str:
    """A report ref from parts, characters the ref pattern forbids (rpm's '~', '^') made '_'."""
    return _REF_UNSAFE.sub("_", ":".join(parts))[:128]


def iso_utc(epoch: float | int | str | None) -> str | None:
    """A Unix time as ISO-8601 UTC ("2021-11-02T14:05:06Z"); None for absent, zero or garbage."""
    try:
        seconds = int(float(epoch)) if epoch is not None else 0
    except ValueError:
        return None
    if seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def contribute_install(out: Contribution, eco: str, name: str, arch: str | None, software_purl: str,
                       software_attrs: Mapping[str, object], install_attrs: Mapping[str, object],
                       version_key: str | None = None) -> str:
    """Add the Software and SoftwareInstall items of one package and their relations; returns the
    install's ref. `version_key` is set only when the same name and arch is installed in several
    versions at once (rpm kernels, gpg-pubkey): each version is then its own install."""
    arch_part = arch or "unknown"
    package = f"{eco}:{name}:{arch_part}" + (f":{version_key}" if version_key else "")
    sw_ref = out.add("Software", ref_token("sw", eco, name), {"purl": software_purl},
                     {"name": name, "ecosystem": eco, **software_attrs})
    pkg_ref = out.add("SoftwareInstall", ref_token("pkg", package), {"package": package}, install_attrs)
    out.relate(pkg_ref, "INSTALLED_ON", COMPUTER_REF)
    out.relate(pkg_ref, "INSTANCE_OF", sw_ref)
    return pkg_ref
