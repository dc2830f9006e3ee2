"""Scan options, validated, and the nmap command line built from them.

nmap's command line is built here and only here, from typed, checked values: numbers are
range-checked, ports and targets are re-written in a canonical form, scripts come from an
allow-list, and targets follow a `--` (nmap's end of options), so no text an operator typed can
become an nmap option (`-iL /etc/passwd`, `--script=<anything>`, `-oN /etc/cron.d/x`).
The command is an argv list for `exec`, never a shell string.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from discovery.nmap.errors import NmapOptionsError, TargetError
from discovery.nmap.targets import Target, all_loopback, parse_exclusions, parse_targets

ScanType = Literal["connect", "syn"]

# NSE scripts a profile may run: read-only information gathering whose output is stable between
# runs (no dates, no brute force, no intrusive or vulnerability scripts). Their output becomes an
# attribute of the Service (or host) they ran against; see discovery.nmap.report.
SCRIPT_ALLOW_LIST = frozenset({
    "banner", "http-title", "http-server-header", "ssh-hostkey", "ssh2-enum-algos", "ssl-cert",
    "snmp-sysdescr", "nbstat", "smb-os-discovery", "rdp-ntlm-info",
})
MAX_PORT_ITEMS = 1_024
MAX_HOST_TIMEOUT_S = 24 * 3600
_PORT_ITEM = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def canonical_ports(spec: str) -> str:
    """"22, 80,443,1000-2000" -> "22,80,443,1000-2000"; raises NmapOptionsError on anything else."""
    if not isinstance(spec, str):
        raise NmapOptionsError(f"ports must be text such as '22,80,1000-2000', not {type(spec).__name__}")
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or len(items) > MAX_PORT_ITEMS:
        raise NmapOptionsError(f"ports {spec[:80]!r}: give 1 to {MAX_PORT_ITEMS} comma-separated ports or "
                               "ranges, e.g. '22,80,443,1000-2000'")
    out = []
    for item in items:
        match = _PORT_ITEM.match(item)
        if not match:
            raise NmapOptionsError(f"ports: {item[:40]!r} is not a port (1-65535) or a range such as 1000-2000 "
                                   "(protocol prefixes and service names are not accepted)")
        low = int(match[1])
        high = int(match[2]) if match[2] else low
        if not 1 <= low <= high <= 65535:
            raise NmapOptionsError(f"ports: {item!r} is out of range: ports are 1-65535 and a range goes up")
        out.append(str(low) if low == high else f"{low}-{high}")
    return ",".join(out)


def _int(name: str, value: Any, low: int, high: int, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NmapOptionsError(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def _bool(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, bool):
        raise NmapOptionsError(f"{name} must be true or false, not {value!r}")


def _texts(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise NmapOptionsError(f"{name} must be a list of text values, not {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class NmapOptions:
    """What to scan for, validated on construction (NmapOptionsError names the option).

    ports / top_ports: which TCP ports (at most one of them; neither = nmap's top 1,000).
    scan: "connect" (any user) or "syn" (root only: refused otherwise, never silently downgraded).
    service_version: -sV, product/version/CPEs of open ports; version_intensity 0-9 (needs -sV).
    os_detection: -O (root only). timing: -T0..-T5. host_timeout_s: give up on a host after it.
    exclude: addresses, CIDRs or ranges never to touch. skip_host_discovery: -Pn; None = only when
    every target is in 127.0.0.0/8 (LAB.md: every loopback address answers a ping).
    reverse_dns: look up PTR names (nmap -n when false); dns_servers: which resolvers nmap asks.
    scripts: NSE scripts from SCRIPT_ALLOW_LIST.
    """

    ports: str | None = None
    top_ports: int | None = None
    scan: ScanType = "connect"
    service_version: bool = False
    version_intensity: int | None = None
    os_detection: bool = False
    timing: int | None = None
    host_timeout_s: float | None = None
    exclude: tuple[str, ...] = ()
    skip_host_discovery: bool | None = None
    reverse_dns: bool = True
    dns_servers: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ports is not None:
            object.__setattr__(self, "ports", canonical_ports(self.ports))
        _int("top_ports", self.top_ports, 1, 65535)
        if self.ports is not None and self.top_ports is not None:
            raise NmapOptionsError("give ports or top_ports, not both")
        if self.scan not in ("connect", "syn"):
            raise NmapOptionsError(f"scan must be 'connect' or 'syn', not {self.scan!r}")
        for name in ("service_version", "os_detection", "reverse_dns"):
            _bool(name, getattr(self, name))
        _bool("skip_host_discovery", self.skip_host_discovery, optional=True)
        _int("version_intensity", self.version_intensity, 0, 9)
        if self.version_intensity is not None and not self.service_version:
            raise NmapOptionsError("version_intensity only applies with service_version=true (-sV)")
        _int("timing", self.timing, 0, 5)
        timeout = self.host_timeout_s
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0.1 <= timeout <= MAX_HOST_TIMEOUT_S):
            raise NmapOptionsError(f"host_timeout_s must be a number of seconds from 0.1 to {MAX_HOST_TIMEOUT_S}, "
                                   f"not {timeout!r}")
        exclude = _texts("exclude", self.exclude)
        try:
            exclusions = parse_exclusions(exclude) if exclude else []
        except TargetError as exc:
            raise NmapOptionsError(f"exclude: {exc}") from None
        object.__setattr__(self, "exclude", tuple(s for t in exclusions for s in t.specs))
        servers = []
        for server in _texts("dns_servers", self.dns_servers):
            try:
                servers.append(ipaddress.ip_address(server).compressed)
            except ValueError:
                raise NmapOptionsError(f"dns_servers: {server[:60]!r} is not an IP address") from None
            if "%" in servers[-1]:
                raise NmapOptionsError(f"dns_servers: {server!r} has an IPv6 zone; give the address alone")
        object.__setattr__(self, "dns_servers", tuple(servers))
        scripts = _texts("scripts", self.scripts)
        refused = [s for s in scripts if s not in SCRIPT_ALLOW_LIST]
        if refused:
            raise NmapOptionsError(f"scripts not on the allow-list: {', '.join(repr(s[:60]) for s in refused)} "
                                   f"(allowed: {', '.join(sorted(SCRIPT_ALLOW_LIST))})")
        object.__setattr__(self, "scripts", tuple(dict.fromkeys(scripts)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> NmapOptions:
        """From a profile in a config file: unknown keys are refused, lists become tuples."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise NmapOptionsError(f"unknown nmap option(s) {', '.join(map(repr, unknown))}; "
                                   f"known: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def is_privileged() -> bool:
    """Raw-socket scans (SYN, OS detection) need root; nmap refuses them otherwise."""
    return os.geteuid() == 0


def as_targets(targets: str | Iterable[str] | Sequence[Target]) -> list[Target]:
    """Targets as validated Target objects (text is parsed; Target objects are taken as they are)."""
    if isinstance(targets, str):
        return parse_targets(targets)
    items = list(targets)
    if items and all(isinstance(t, Target) for t in items):
        return items  # type: ignore[return-value]
    return parse_targets(items)  # type: ignore[arg-type]


def build_nmap_argv(targets: str | Iterable[str] | Sequence[Target], options: NmapOptions,
                    nmap_path: str = "nmap", *, privileged: bool | None = None) -> list[str]:
    """The nmap command for `targets` with `options`, XML on stdout. Raises TargetError or
    NmapOptionsError before anything runs."""
    if not isinstance(options, NmapOptions):
        raise NmapOptionsError(f"options must be NmapOptions, not {type(options).__name__}")
    parsed = as_targets(targets)
    included = [t for t in parsed if not t.exclude]
    if not included:
        raise NmapOptionsError("no targets: name at least one address, range, CIDR or host name")
    privileged = is_privileged() if privileged is None else privileged
    if options.scan == "syn" and not privileged:
        raise NmapOptionsError("a SYN scan needs root (raw sockets): run the scanner as root, or use "
                               "scan='connect', which any user may run")
    if options.os_detection and not privileged:
        raise NmapOptionsError("OS detection (-O) needs root (raw sockets): run the scanner as root, "
                               "or turn os_detection off")

    argv = [nmap_path, "-sS" if options.scan == "syn" else "-sT"]
    skip_discovery = options.skip_host_discovery
    if skip_discovery is None:
        skip_discovery = all_loopback(parsed)
    if skip_discovery:
        argv.append("-Pn")
    if not options.reverse_dns:
        argv.append("-n")
    if options.dns_servers:
        argv += ["--dns-servers", ",".join(options.dns_servers)]
    if options.ports is not None:
        argv += ["-p", options.ports]
    elif options.top_ports is not None:
        argv += ["--top-ports", str(options.top_ports)]
    if options.service_version:
        argv.append("-sV")
        if options.version_intensity is not None:
            argv += ["--version-intensity", str(options.version_intensity)]
    if options.os_detection:
        argv.append("-O")
    if options.timing is not None:
        argv.append(f"-T{options.timing}")
    if options.host_timeout_s is not None:
        argv += ["--host-timeout", f"{max(1, round(options.host_timeout_s * 1000))}ms"]
    if options.scripts:
        argv += ["--script", ",".join(options.scripts)]
    excluded = list(dict.fromkeys([*options.exclude, *(s for t in parsed if t.exclude for s in t.specs)]))
    if excluded:
        argv += ["--exclude", ",".join(excluded)]
    if any(t.version == 6 for t in included):
        argv.append("-6")
    argv += ["-oX", "-", "--"]
    argv += list(dict.fromkeys(s for t in included for s in t.specs))
    return argv
