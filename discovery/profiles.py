"""Scan profiles: the `[scan]` options, optionally overridden by a named profile, validated into
one `ScanPlan` before anything is scanned.

A profile is a string in `scan.profiles`, "NAME: key=value; key=value", whose keys are `[scan]`
options (not `profiles` itself):

    [scan]
    profiles = [
      "lab: targets=127.0.0.11-30; protocols=snmp,ssh; snmp_port=16161; ssh_port=2222",
      "dc: targets=10.1.0.0/22; exclude=10.1.0.1; interval=3600",
    ]

List values (targets, exclude, allowed, protocols) are comma-separated. Command-line flags given
with --profile override the profile, which overrides the rest of `[scan]`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from cmdb.config import ConfigError, ScanConfig, _coerce
from discovery.base import PROTOCOLS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_HOSTS = 65_536


@dataclass(frozen=True)
class ScanPlan:
    """What one scan does (validated): the targets expanded, the protocols, the knobs."""

    name: str
    addresses: tuple[str, ...]
    protocols: tuple[str, ...]
    ports: str
    service_version: bool
    snmp_port: int
    ssh_port: int
    trust_on_first_use: bool
    concurrency: int
    timeout: float
    retries: int
    interval: float | None


def parse_profiles(entries: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """{name: {key: raw value}}; ConfigError naming the entry otherwise."""
    options = {f.name for f in dataclasses.fields(ScanConfig)} - {"profiles"}
    profiles: dict[str, dict[str, str]] = {}
    for raw in entries:
        name, sep, body = raw.partition(":")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise ConfigError(f"scan.profiles entry {raw[:80]!r}: expected \"NAME: key=value; key=value\" with a "
                              "name of letters, digits, '.', '_' or '-'")
        if name in profiles:
            raise ConfigError(f"scan.profiles: profile {name!r} is defined twice")
        values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in body.split(";"))):
            key, eq, value = (x.strip() for x in part.partition("="))
            if not eq:
                raise ConfigError(f"scan profile {name!r}: {part[:60]!r} is not key=value")
            if key not in options:
                raise ConfigError(f"scan profile {name!r}: unknown option {key!r} (known: {', '.join(sorted(options))})")
            values[key] = value
        profiles[name] = values
    return profiles


def resolve_profile(config: ScanConfig, profile: str | None, flags: dict[str, Any]) -> ScanConfig:
    """`[scan]` < the named profile < flags (None values skipped), as one ScanConfig."""
    merged = dataclasses.replace(config)
    if profile is not None:
        profiles = parse_profiles(config.profiles)
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined (scan.profiles)"
            raise ConfigError(f"no scan profile {profile!r}; profiles: {known}")
        fields = {f.name: f for f in dataclasses.fields(ScanConfig)}
        for key, value in profiles[profile].items():
            setattr(merged, key, _coerce(value, fields[key], f"scan profile {profile!r}: {key}"))
    for key, value in flags.items():
        if value is not None:
            setattr(merged, key, value)
    return merged


def _addresses(target: Any) -> list[str]:
    """Every address a validated target covers (a host name stays a name)."""
    if target.first is None or target.last is None:
        return [target.text]
    first, last = int(target.first), int(target.last)
    return [str(type(target.first)(n)) for n in range(first, last + 1)]


def build_plan(config: ScanConfig, name: str = "default") -> ScanPlan:
    """Validate and expand; ConfigError says what to fix. No address outside `allowed` (if set)."""
    from discovery.nmap.targets import check_allowed, parse_exclusions, parse_targets

    if not config.targets:
        raise ConfigError("nothing to scan: give --targets (addresses, CIDR blocks, ranges) or a profile with targets")
    unknown = set(config.protocols) - set(PROTOCOLS)
    if unknown or not config.protocols:
        raise ConfigError(f"scan.protocols: {sorted(unknown) or 'empty'}; choose from {', '.join(PROTOCOLS)}")
    for key, low, high in (("snmp_port", 1, 65535), ("ssh_port", 1, 65535), ("concurrency", 1, 1024),
                           ("retries", 0, 10)):
        value = getattr(config, key)
        if not low <= value <= high:
            raise ConfigError(f"scan.{key}: {value} is outside {low}..{high}")
    if not 0.1 <= config.timeout <= 600:
        raise ConfigError(f"scan.timeout: {config.timeout} s is outside 0.1..600")
    if config.interval is not None and config.interval < 10:
        raise ConfigError(f"scan.interval: {config.interval} s is too short (at least 10)")
    try:
        targets = parse_targets(list(config.targets), max_addresses=MAX_HOSTS)
        if config.allowed:
            check_allowed(targets, list(config.allowed))
        excluded = {a for t in parse_exclusions(list(config.exclude)) for a in _addresses(t)} if config.exclude \
            else set()
    except ValueError as exc:
        raise ConfigError(f"scan targets: {exc}") from None
    excluded |= {a for t in targets if t.exclude for a in _addresses(t)}
    addresses = [a for t in targets if not t.exclude for a in _addresses(t) if a not in excluded]
    if not addresses:
        raise ConfigError("every target is excluded: nothing to scan")
    return ScanPlan(name, tuple(dict.fromkeys(addresses)), tuple(dict.fromkeys(config.protocols)), config.ports,
                    config.service_version, config.snmp_port, config.ssh_port, config.trust_on_first_use,
                    config.concurrency, config.timeout, config.retries, config.interval)
