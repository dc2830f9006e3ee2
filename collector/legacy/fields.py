"""Reading typed values out of OCS / FusionInventory entries, in our agent's vocabulary.

Pure functions of the parsed entries (`collector.legacy.xml.Entry`). Unknown is None: empty
fields, vendor junk (`cmdb.junk`), the agents' own "don't know" values (MAC 00:00:..., speed -1,
"WORKGROUP") never become values.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone

from cmdb.junk import clean
from collector.legacy.xml import Entry

MIB = 1024 * 1024
MB = 1000 * 1000
_LEADING_INT = re.compile(r"^\s*(-?\d+)")
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_LOCAL_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")


def text(entry: Entry, key: str) -> str | None:
    """The field's text, None when absent or empty (a field with sub-fields has no text)."""
    value = entry.get(key)
    return value if isinstance(value, str) and value else None


def hardware_text(entry: Entry, key: str) -> str | None:
    """A hardware fact (vendor, model, serial): junk placeholders read as unknown."""
    return clean(text(entry, key))


def sub_text(entry: Entry, key: str, sub: str) -> str | None:
    value = entry.get(key)
    return (value.get(sub) or None) if isinstance(value, dict) else None


def positive_int(entry: Entry, key: str) -> int | None:
    """The leading integer of the field ("1000 Mbps" -> 1000); None when absent, zero or negative
    (the agents write 0 and -1 for unknown speeds and sizes)."""
    match = _LEADING_INT.match(text(entry, key) or "")
    if not match:
        return None
    value = int(match[1])
    return value if value > 0 else None


def scaled_bytes(entry: Entry, key: str, unit: int) -> int | None:
    """A size in `unit`s (MIB or MB, possibly with decimals: OCS's DISKSIZE) as bytes."""
    match = _NUMBER.match(text(entry, key) or "")
    if not match:
        return None
    value = round(float(match[1]) * unit)
    return value if value > 0 else None


def flag(entry: Entry, key: str) -> bool | None:
    value = (text(entry, key) or "").lower()
    return True if value in ("1", "true", "yes") else False if value in ("0", "false", "no") else None


def split_list(value: str | None, separators: str = "/,") -> list[str]:
    """"a/b, c" -> ["a", "b", "c"]: the agents join lists with '/' (DNS servers, users)."""
    if not value:
        return []
    parts = re.split(f"[{re.escape(separators)}]", value)
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def utc_offset(value: str | None) -> timedelta | None:
    """"+0100" / "-05:30" as a timedelta; None when absent or malformed."""
    match = _OFFSET.match((value or "").strip())
    if not match:
        return None
    hours, minutes = int(match[2]), int(match[3])
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return -delta if match[1] == "-" else delta


def local_time(value: str | None, offset: timedelta | None) -> datetime | None:
    """"2026-11-21 20:01:42" (the agent's local time) as an aware UTC datetime, only when the
    agent also said its UTC offset: without it the hour is a guess, and a guess is not a value."""
    if offset is None:
        return None
    match = _LOCAL_TIME.match((value or "").strip())
    if not match:
        return None
    try:
        local = datetime(*(int(g) for g in match.groups()), tzinfo=timezone(offset))
    except ValueError:
        return None
    return local.astimezone(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    """As our agent writes times: "2026-11-21T20:01:42Z"."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def ip_address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((value or "").split("%", 1)[0].strip())
    except ValueError:
        return None


def prefix_length(mask: str | None, version: int) -> int | None:
    """The prefix length of a netmask ("255.255.255.0" -> 24, "ffff:ffff::" -> 32); a plain
    number is taken as it is; None for a mask that is not contiguous."""
    mask = (mask or "").strip()
    if mask.isdigit():
        length = int(mask)
        return length if length <= (32 if version == 4 else 128) else None
    address = ip_address(mask)
    if address is None or address.version != version:
        return None
    bits = int(address)
    width = 32 if version == 4 else 128
    length = bin(bits).count("1")
    return length if bits == ((1 << width) - 1) ^ ((1 << (width - length)) - 1) else None


# -- operating systems --------------------------------------------------------------------------

# Distribution names, as the agents print them (os-release NAME, lsb_release), to the os-release
# ID our agent reads: the purl namespace of a package (pkg:deb/debian/...). First match wins.
_DISTROS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I), d) for p, d in (
    (r"^debian\b", "debian"), (r"^ubuntu\b", "ubuntu"), (r"^linux ?mint\b", "linuxmint"),
    (r"^raspbian\b", "raspbian"), (r"^kali\b", "kali"), (r"^devuan\b", "devuan"),
    (r"^pop!?_?os\b", "pop"), (r"^centos\b", "centos"), (r"^(red ?hat|rhel)\b", "rhel"),
    (r"^fedora\b", "fedora"), (r"^rocky\b", "rocky"), (r"^alma ?linux\b", "almalinux"),
    (r"^oracle linux\b", "ol"), (r"^amazon linux\b", "amzn"),
    (r"^opensuse leap\b", "opensuse-leap"), (r"^opensuse tumbleweed\b", "opensuse-tumbleweed"),
    (r"^opensuse\b", "opensuse"), (r"^suse linux enterprise server\b|^sles\b", "sles"),
    (r"^suse linux enterprise desktop\b|^sled\b", "sled"), (r"^alpine\b", "alpine"),
    (r"^arch ?linux\b", "arch"), (r"^gentoo\b", "gentoo"), (r"^slackware\b", "slackware"),
))
# Kernel or OS names to the `family` identifier of OperatingSystem (our agent: "linux").
_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I), f) for p, f in (
    (r"windows|mswin", "windows"), (r"darwin|mac ?os", "macos"), (r"freebsd", "freebsd"),
    (r"openbsd", "openbsd"), (r"netbsd", "netbsd"), (r"\baix\b", "aix"), (r"solaris|sunos", "solaris"),
    (r"hp-?ux", "hpux"), (r"linux", "linux"),
))


def distro_id(os_name: str | None) -> str | None:
    """The os-release ID of a distribution name ("Debian GNU/Linux 12" -> "debian")."""
    name = (os_name or "").strip()
    return next((d for pattern, d in _DISTROS if pattern.search(name)), None)


def os_family(*names: str | None) -> str | None:
    """The OS family from the kernel name, else the OS name; a known distribution is "linux"."""
    for name in names:
        for pattern, family in _FAMILIES:
            if name and pattern.search(name):
                return family
        if distro_id(name):
            return "linux"
    return None


def kernel_name(value: str | None) -> str | None:
    """Our agent says "Linux" (uname -s); Fusion says "linux"."""
    if not value:
        return None
    return "Linux" if value.lower() == "linux" else value


# FusionInventory's VMSYSTEM names to systemd-detect-virt's (what our agent reports).
_VIRTUALIZATION = {
    "physical": "none", "docker": "docker", "lxc": "lxc", "kvm": "kvm", "qemu": "qemu", "xen": "xen",
    "vmware": "vmware", "virtualbox": "oracle", "hyper-v": "microsoft", "virtual machine": "microsoft",
    "virtuozzo": "openvz", "openvz": "openvz", "parallels": "parallels", "bhyve": "bhyve",
    "systemd-nspawn": "systemd-nspawn", "wsl": "wsl", "podman": "podman", "bochs": "bochs",
    "solariszone": "zone", "solaris zone": "zone", "aix_lpar": "powervm", "lpar": "powervm",
}


def virtualization(value: str | None) -> str | None:
    name = (value or "").strip().lower()
    if not name:
        return None
    return _VIRTUALIZATION.get(name, re.sub(r"[^a-z0-9_.-]+", "-", name).strip("-") or None)
