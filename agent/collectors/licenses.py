"""License inventory: what installed packages declare, and what FlexLM license files grant.

- `licenses.dpkg`: the SPDX expression of each installed Debian package's machine-readable
  copyright file (/usr/share/doc/<pkg>/copyright, DEP-5), as a `license` attribute of the
  SoftwareInstall the dpkg collector reports (same class, ref and identifiers; the builder
  merges the two). A package whose copyright file is not machine-readable gets no license: absent,
  never a guess. Packages come from dpkg's status file (name, architecture, state), a plain read.
  A delta run skips it, with software.dpkg, while dpkg's files are unchanged (agent.fastpath).
- `licenses.flexlm`: each FEATURE/INCREMENT/UPGRADE of the FlexLM license files found under the
  configured paths (`[agent] license_paths`: directories, files or globs) is a LicenseEntitlement.
  A file whose SERVER is this machine (or that has no SERVER: node-locked, uncounted) is SERVED_BY
  the computer; a client's copy of a file served elsewhere says nothing about this machine
  serving it, so its entitlements carry server_host/server_hostid and no SERVED_BY relation.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import Context
from cmdb.config import DEFAULT_LICENSE_PATHS

if TYPE_CHECKING:
    from agent.parsers.flexlm import LicenseFile

# The parsers are imported by the collect() that needs them: most machines have no FlexLM file,
# and a delta run that skips licenses.dpkg (agent.fastpath) parses no copyright file.

log = logging.getLogger(__name__)

DPKG_STATUS = "/var/lib/dpkg/status"
# Debian policy: package names are lower-case letters, digits, '+', '-', '.'; anything else in the
# status file is not used to build a path.
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")


# -- licenses.dpkg -----------------------------------------------------------------------------

def installed_packages(status_text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, architecture, version) of every package whose files are on disk ("... installed"),
    from the text of /var/lib/dpkg/status. The file is ~1 MB of ~30,000 lines: it is cut into
    paragraphs (one string per package) and each field is found with str.find, rather than
    holding a string for every line."""
    out = []
    for paragraph in status_text.split("\n\n"):
        name = _status_field(paragraph, "Package")
        state = _status_field(paragraph, "Status")
        if name and state and state.endswith(" installed"):
            out.append((name, _status_field(paragraph, "Architecture") or None,
                        _status_field(paragraph, "Version") or None))
    return out


def _status_field(paragraph: str, field: str) -> str | None:
    """The value of a field that starts a line of a status paragraph (the first line only)."""
    tag = f"{field}:"
    if paragraph.startswith(tag):
        start = len(tag)
    else:
        start = paragraph.find(f"\n{tag}")
        if start == -1:
            return None
        start += len(tag) + 1
    end = paragraph.find("\n", start)
    return paragraph[start:end if end != -1 else len(paragraph)].strip()


class _SameTextMemo:
    """The license of the copyright files parsed last. Packages of one source ship byte-identical
    files (four Boost libraries, 2 MB each) and sit next to each other in dpkg's status file (it
    is sorted by name), so remembering the last RECENT distinct files catches ~90% of the
    duplicated bytes, while keeping all of them would hold ~9 MB to the end of the scan. The bytes
    are compared, not hashed (hashing 17 MB costs more than the scan it saves)."""

    RECENT = 16

    def __init__(self) -> None:
        # (size, first and last bytes) -> (the file's bytes, its license), oldest first
        self._recent: dict[tuple[int, bytes, bytes], tuple[bytes, str | None]] = {}

    def license_of_file(self, ctx: Context, path: str) -> str | None:
        """The license a copyright file declares. Its bytes are not held past the call (unless
        they are one of the recent ones): the next file, up to 2 MB, is read without this one."""
        data = ctx.read_bytes(path)
        return None if data is None else self.license_of(data)

    def license_of(self, data: bytes) -> str | None:
        from agent.parsers.spdx import declared_license

        fingerprint = (len(data), data[:200], data[-200:])
        known = self._recent.get(fingerprint)
        if known is not None and known[0] == data:
            return known[1]
        expression = declared_license(data)
        self._recent.pop(fingerprint, None)
        self._recent[fingerprint] = (data, expression)
        if len(self._recent) > self.RECENT:
            del self._recent[next(iter(self._recent))]
        return expression


def copyright_licenses(ctx: Context, names: list[str]) -> list[str | None]:
    """The license each named package's copyright file declares, in order (None: no file, or
    not machine-readable). Runs in the background (agent.background): arguments and result are
    plain data."""
    memo = _SameTextMemo()
    return [memo.license_of_file(ctx, f"/usr/share/doc/{name}/copyright") for name in names]


class _Scan:
    """One collection under way: the installed packages, the (name, version) whose files are
    read, and the reading (started in prepare, so that it runs while other collectors do)."""

    def __init__(self, ctx: Context, known: dict[tuple[str, str], str | None], early: bool):
        from agent.background import Background

        status = ctx.read_file(DPKG_STATUS)
        if status is None:
            raise FileNotFoundError(f"{DPKG_STATUS} is missing or unreadable")
        self.ctx = ctx
        self.packages = installed_packages(status)
        del status  # ~1 MB, not needed while ~900 files are read
        unread: dict[tuple[str, str], None] = {}
        for name, _arch, version in self.packages:
            cache_key = (name, version or "")
            if _PACKAGE_NAME.match(name) and not (version and cache_key in known):
                unread[cache_key] = None
        self.unread = list(unread)
        names = [name for name, _ in self.unread]
        # Started early (prepare) it runs in the background; otherwise now, in this process.
        self.reading = (Background.start(ctx, copyright_licenses, ctx, names) if early
                        else Background(copyright_licenses, (ctx, names)))


class DpkgLicensesCollector:
    """In a long-running agent the collector keeps the license of each (package, version) it read:
    a package's copyright file changes with its version only, so a later run reads the files of
    upgraded packages alone."""

    name = "licenses.dpkg"
    annotates = True  # the packages are software.dpkg's

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], str | None] = {}
        self._scan: _Scan | None = None

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.list_dir("/var/lib/dpkg") is not None and ctx.list_dir("/usr/share/doc") is not None

    def prepare(self, ctx: Context) -> None:
        """Start reading the copyright files (see agent.background)."""
        self._discard()
        self._scan = _Scan(ctx, self._known, early=True)

    def collect(self, ctx: Context) -> Contribution:
        scan, self._scan = self._scan, None
        if scan is None or scan.ctx is not ctx:
            if scan is not None:
                scan.reading.cancel()
            scan = _Scan(ctx, self._known, early=False)
        try:
            read = dict(zip(scan.unread, scan.reading.result(), strict=True))
        finally:
            scan.reading.cancel()
        out = Contribution()
        known: dict[tuple[str, str], str | None] = {}
        for name, arch, version in scan.packages:
            if not _PACKAGE_NAME.match(name):
                continue
            cache_key = (name, version or "")
            if cache_key in known:
                expression = known[cache_key]
            elif cache_key in read:
                expression = known[cache_key] = read[cache_key]
            else:  # known from an earlier run (version and cache_key in self._known)
                expression = known[cache_key] = self._known[cache_key]
            if expression is None:
                continue
            arch = arch or "unknown"  # as the dpkg collector spells an unknown architecture
            ref = out.add("SoftwareInstall", f"pkg:deb:{name}:{arch}", {"package": f"deb:{name}:{arch}"},
                          {"license": expression})
            out.relate(ref, "INSTALLED_ON", COMPUTER_REF)
        self._known = known if ctx.local else {}  # a context over another tree keeps nothing
        return out

    def _discard(self) -> None:
        if self._scan is not None:
            self._scan.reading.cancel()
            self._scan = None


# -- licenses.flexlm ---------------------------------------------------------------------------

MAX_LICENSE_FILES = 200
MAX_GLOB_PATHS = 1000
# Names of license files inside a configured directory (lmgrd's license.dat, vendors' *.lic).
LICENSE_FILE_PATTERNS = ("*.lic", "*.dat", "*.license", "license*", "LICENSE*", "*.LIC")
_GLOB_CHARS = re.compile(r"[*?[]")


def expand_path_pattern(ctx: Context, pattern: str) -> list[str]:
    """The paths an absolute glob matches on the inventoried machine, through `ctx.list_dir`
    (a context is the only way a collector sees files). Hidden names match only a pattern that
    starts with a dot, like the shell."""
    if not pattern.startswith("/"):
        return []
    paths = ["/"]
    for part in (p for p in pattern.split("/") if p):
        if not _GLOB_CHARS.search(part):
            paths = [f"{p.rstrip('/')}/{part}" for p in paths]
            continue
        matched = []
        for parent in paths:
            for name in ctx.list_dir(parent) or []:
                if (not name.startswith(".") or part.startswith(".")) and fnmatch.fnmatchcase(name, part):
                    matched.append(f"{parent.rstrip('/')}/{name}")
        paths = matched[:MAX_GLOB_PATHS]
    return paths


def find_license_files(ctx: Context, patterns: Iterable[str]) -> list[str]:
    """Candidate files: every path a pattern names that is a file, and the license-named files
    inside the directories it names (one level, no recursion)."""
    found: dict[str, None] = {}
    for pattern in patterns:
        for path in expand_path_pattern(ctx, pattern):
            entries = ctx.list_dir(path)
            if entries is None:
                parent, _, name = path.rpartition("/")
                if name in (ctx.list_dir(parent or "/") or []):  # a file (a glob matched it, or it exists)
                    found[path] = None
                continue
            for name in entries:
                if any(fnmatch.fnmatchcase(name, p) for p in LICENSE_FILE_PATTERNS):
                    found[f"{path.rstrip('/')}/{name}"] = None
    return list(found)[:MAX_LICENSE_FILES]


def _short_name(host: str | None) -> str | None:
    return host.split(".", 1)[0].lower() if host else None


def local_identity(ctx: Context) -> tuple[str | None, set[str]]:
    """This machine's short hostname and its MACs as FlexLM writes hostids (12 hex digits)."""
    hostname = ctx.read_file("/proc/sys/kernel/hostname") or ctx.read_file("/etc/hostname")
    macs = set()
    for iface in ctx.list_dir("/sys/class/net") or []:
        mac = (ctx.read_file(f"/sys/class/net/{iface}/address") or "").strip().replace(":", "").lower()
        if len(mac) == 12 and mac != "000000000000":
            macs.add(mac)
    return _short_name(hostname.strip() if hostname else None), macs


def served_here(parsed: LicenseFile, hostname: str | None, macs: set[str]) -> bool:
    """True when this machine serves the file's entitlements: no SERVER (node-locked), or a
    SERVER that names this host by hostid (a MAC), by name, or as this_host/localhost."""
    if not parsed.servers:
        return True
    for server in parsed.servers:
        host = _short_name(server.host)
        if server.hostid.lower().replace(":", "").replace("-", "") in macs:
            return True
        if host in ("this_host", "localhost") or (hostname is not None and host == hostname):
            return True
    return False


def contribute_license_file(out: Contribution, path: str, parsed: LicenseFile, served: bool) -> None:
    from agent.parsers.flexlm import keyed_entitlements

    server = parsed.server
    vendor_ports = {v.name: v.port for v in parsed.vendors}
    for key, ent in keyed_entitlements(parsed):
        ref = f"lic:{key}"
        if ref in out.items:
            continue  # the same file under two configured paths: the first path keeps it
        out.add("LicenseEntitlement", ref, {"license_key": key}, {
            "feature": ent.feature, "vendor_daemon": ent.vendor, "version": ent.version,
            "kind": ent.kind.lower(), "expiry": ent.expiry.isoformat() if ent.expiry else None,
            "count": ent.count, "uncounted": ent.uncounted, "host_id": ent.host_id,
            "vendor_string": ent.vendor_string, "issued": ent.issued.isoformat() if ent.issued else None,
            "start": ent.start.isoformat() if ent.start else None, "upgrade_from": ent.upgrade_from,
            "server_host": server.host if server else None,
            "server_hostid": server.hostid if server else None,
            "server_port": server.port if server else None,
            "vendor_daemon_port": vendor_ports.get(ent.vendor),
            "source_file": path,
        })
        if served:
            out.relate(ref, "SERVED_BY", COMPUTER_REF)


class FlexlmCollector:
    name = "licenses.flexlm"

    def __init__(self, paths: Sequence[str] = DEFAULT_LICENSE_PATHS):
        self.paths = tuple(paths)

    def is_enabled(self, ctx: Context) -> bool:
        return bool(find_license_files(ctx, self.paths))

    def collect(self, ctx: Context) -> Contribution:
        from agent.parsers.flexlm import (
            LicenseFileRefused,
            check_license_text,
            looks_like_flexlm,
            parse_license_file,
        )

        out = Contribution()
        hostname, macs = local_identity(ctx)
        for path in find_license_files(ctx, self.paths):
            text = ctx.read_file(path)
            if text is None:
                continue
            try:
                check_license_text(text)
            except LicenseFileRefused as exc:
                log.warning("license file %s refused: %s", path, exc)
                continue
            if not looks_like_flexlm(text):
                continue
            parsed = parse_license_file(text)
            for note in parsed.notes:
                log.warning("license file %s, %s", path, note)
            contribute_license_file(out, path, parsed, served_here(parsed, hostname, macs))
        return out
