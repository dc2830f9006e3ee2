"""The operating system and the host's names: os-release, kernel, architecture, hostname, FQDN,
host id, boot time, time zone.

Pure parsers (`parse_os_release`, `parse_debian_version`, `parse_redhat_release`,
`parse_boot_time`, `timezone_from_link`, `split_fqdn`, `parse_hostid`) are shared with the SSH
scanner.
"""

from __future__ import annotations

import os as _os
import re
import shlex
import socket
import threading
from datetime import UTC, datetime

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import CommandError, Context
from cmdb.junk import clean

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
# A name lookup that takes longer than this is a broken resolver: fall back to the hostname.
FQDN_LOOKUP_TIMEOUT = 1.5
# `hostid` reads /etc/hostid, or without one derives the id from the hostname's IPv4 address:
# a name lookup, bounded like the FQDN one.
HOSTID_TIMEOUT = 2.0
_HOSTID = re.compile(r"^[0-9a-f]{8}$")
_NOT_A_DOMAIN = {"localhost", "localdomain", "localhost.localdomain", "localhost6",
                 "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"}


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5) as a dict: shell-style quoting undone, comments and empty values dropped."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            words = shlex.split(raw, comments=False, posix=True)
            value = " ".join(words)
        except ValueError:  # unbalanced quote: keep what is there rather than drop the key
            value = raw.strip().strip("\"'")
        if value:
            result[key] = value
    return result


def parse_debian_version(text: str) -> str | None:
    """/etc/debian_version: "11.2" on a release, "bookworm/sid" on testing/unstable."""
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    return value if re.fullmatch(r"\d+(\.\d+)*", value) else None


def parse_redhat_release(text: str) -> str | None:
    """/etc/centos-release, /etc/redhat-release: "CentOS Linux release 7.9.2009 (Core)" -> "7.9.2009"."""
    match = re.search(r"release\s+(\d+(?:\.\d+)*)", text)
    return match[1] if match else None


def parse_boot_time(proc_stat: str) -> str | None:
    """The `btime` line of /proc/stat as an ISO-8601 UTC timestamp."""
    match = re.search(r"^btime\s+(\d+)\s*$", proc_stat, re.M)
    if not match:
        return None
    return datetime.fromtimestamp(int(match[1]), UTC).isoformat().replace("+00:00", "Z")


def timezone_from_link(target: str | None) -> str | None:
    """The IANA zone name from the target of /etc/localtime (…/zoneinfo/Europe/Paris)."""
    if not target or "zoneinfo/" not in target:
        return None
    zone = target.split("zoneinfo/", 1)[1].strip("/")
    for prefix in ("posix/", "right/"):
        zone = zone.removeprefix(prefix)
    return zone or None


def split_fqdn(hostname: str | None, fqdn_candidate: str | None) -> tuple[str | None, str | None, str | None]:
    """(short hostname, fqdn, domain). The FQDN is the candidate when it extends the hostname with
    a real domain; otherwise the hostname itself (domain None). Localhost names are not domains."""
    host = (hostname or "").strip().rstrip(".").lower() or None
    cand = (fqdn_candidate or "").strip().rstrip(".").lower() or None
    if host and "." in host:  # the kernel hostname is already qualified
        cand, host = host, host.split(".", 1)[0]
    if host is None:
        return None, None, None
    if cand and cand.startswith(host + ".") and cand not in _NOT_A_DOMAIN:
        domain = cand[len(host) + 1:]
        if domain and domain not in _NOT_A_DOMAIN:
            return host, cand, domain
    return host, host, None


def parse_hostid(text: str) -> str | None:
    """`hostid` output: gethostid(3) as 8 hex digits ("007f0100"). Not unique: without an
    /etc/hostid, hosts whose name resolves to the same address (127.0.1.1) share one."""
    value = text.strip().lower()
    return clean(value) if _HOSTID.match(value) else None  # 00000000, ffffffff: junk


def read_hostid(ctx: Context) -> str | None:
    """The host id as `hostid` prints it: /etc/hostid is binary in the host's byte order, so
    the command that knows that order reads it. A foreign tree runs no commands: unknown."""
    if not ctx.has_command("hostid"):
        return None
    try:
        return parse_hostid(ctx.run(["hostid"], timeout=HOSTID_TIMEOUT))
    except CommandError:
        return None


def _resolve_canonical_name(hostname: str) -> str | None:
    """The canonical name of `hostname` from the resolver (hosts file, DNS), or None."""
    infos = socket.getaddrinfo(hostname, None, flags=socket.AI_CANONNAME)
    for info in infos:
        if info[3]:
            return info[3]
    return None


def lookup_fqdn(ctx: Context, hostname: str) -> str | None:
    """The FQDN of this host, bounded in time: a slow resolver must not stall the inventory."""
    if ctx.local:
        # A daemon thread, not an executor: a hung resolver must not hold up the agent's exit.
        answer: list[str | None] = []

        def resolve() -> None:
            try:
                answer.append(_resolve_canonical_name(hostname))
            except (OSError, UnicodeError):
                answer.append(None)

        worker = threading.Thread(target=resolve, name="fqdn-lookup", daemon=True)
        worker.start()
        worker.join(FQDN_LOOKUP_TIMEOUT)
        return answer[0] if answer else None
    try:
        return ctx.run(["hostname", "-f"], timeout=FQDN_LOOKUP_TIMEOUT + 1).strip() or None
    except CommandError:
        return None


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    return clean(text.strip().splitlines()[0]) if text.strip() else None


def _architecture(ctx: Context) -> str | None:
    arch = _first_line(ctx.read_file("/proc/sys/kernel/arch"))
    if arch:
        return arch
    if ctx.local:
        return _os.uname().machine
    try:
        return _first_line(ctx.run(["uname", "-m"]))
    except CommandError:
        return None


def os_attributes(ctx: Context) -> dict[str, object]:
    """The OperatingSystem item's attributes, read through `ctx`."""
    release: dict[str, str] = {}
    for path in OS_RELEASE_PATHS:
        text = ctx.read_file(path)
        if text is not None:
            release = parse_os_release(text)
            break
    version_full = None
    distro = release.get("ID")
    if distro == "debian" and (text := ctx.read_file("/etc/debian_version")):
        version_full = parse_debian_version(text)
    elif distro in ("centos", "rhel", "rocky", "almalinux", "ol"):
        for path in ("/etc/centos-release", "/etc/redhat-release"):
            if text := ctx.read_file(path):
                version_full = parse_redhat_release(text)
                break
    kernel_release = _first_line(ctx.read_file("/proc/sys/kernel/osrelease"))
    kernel_version = _first_line(ctx.read_file("/proc/sys/kernel/version"))
    if ctx.local and kernel_release is None:
        uname = _os.uname()
        kernel_release, kernel_version = uname.release, uname.version
    return {
        "name": release.get("NAME") or "Linux",
        "id": distro,
        "id_like": release.get("ID_LIKE"),
        "version": release.get("VERSION"),
        "version_id": release.get("VERSION_ID"),
        "version_full": version_full,
        "version_codename": release.get("VERSION_CODENAME"),
        "pretty_name": release.get("PRETTY_NAME"),
        "build_id": release.get("BUILD_ID"),
        "kernel_name": "Linux",
        "kernel_release": kernel_release,
        "kernel_version": kernel_version,
        "arch": _architecture(ctx),
    }


def host_names(ctx: Context) -> tuple[str | None, str | None, str | None]:
    """(hostname, fqdn, domain) of the inventoried host."""
    kernel_name = _first_line(ctx.read_file("/proc/sys/kernel/hostname"))
    if kernel_name is None and ctx.local:
        kernel_name = socket.gethostname()
    if not kernel_name:
        return None, None, None
    short = kernel_name.split(".", 1)[0]
    candidate = kernel_name if "." in kernel_name else lookup_fqdn(ctx, short)
    return split_fqdn(kernel_name, candidate)


def host_timezone(ctx: Context) -> str | None:
    zone = _first_line(ctx.read_file("/etc/timezone"))
    return zone or timezone_from_link(ctx.read_link("/etc/localtime"))


class OsCollector:
    name = "os"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.read_file("/proc/sys/kernel/ostype") is not None or any(
            ctx.read_file(p) is not None for p in OS_RELEASE_PATHS)

    def collect(self, ctx: Context) -> Contribution:
        out = Contribution()
        hostname, fqdn, domain = host_names(ctx)
        stat = ctx.read_file("/proc/stat")
        out.computer(
            identifiers={"hostname": hostname, "fqdn": fqdn if domain else None},
            attributes={"hostname": hostname, "fqdn": fqdn, "domain": domain,
                        "boot_time": parse_boot_time(stat) if stat else None,
                        "host_id": read_hostid(ctx),
                        "timezone": host_timezone(ctx)},
        )
        out.add("OperatingSystem", "os", {"family": "linux"}, os_attributes(ctx))
        out.relate("os", "RUNS_ON", COMPUTER_REF)
        return out
