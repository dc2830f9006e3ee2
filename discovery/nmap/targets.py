"""Scan targets: parse and validate what an operator types before any of it reaches nmap.

Accepted, separated by commas or blanks (or given as a list):

    127.0.0.15              one address (IPv4 or IPv6)
    10.0.0.0/24             a CIDR block (host bits are dropped: 10.0.0.7/24 is 10.0.0.0/24)
    127.0.0.10-20           a range of the last IPv4 octet (nmap's own syntax)
    10.0.0.250-10.0.1.5     a range between two addresses (sent to nmap as CIDR blocks)
    printer-3.example.com   a host name (nmap resolves it)
    !10.0.0.1               an exclusion (sent as --exclude); any of the forms above after "!"

Everything else is refused with a TargetError naming the entry: anything starting with "-" (an
nmap option such as `-iL /etc/passwd`), shell syntax (`;rm -rf /`), octets over 255, names with
characters DNS names do not have. Each accepted target is rewritten in a canonical form, so the
text nmap receives is text we produced, never the operator's.

With `allowed` (the ranges a scanner may touch), every included target must lie inside them, and
host names are refused: a name cannot be checked against address ranges before nmap resolves it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from discovery.nmap.errors import TargetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Bounds that keep a typo (10.0.0.0/8 for /24) from becoming a day-long scan; callers may raise them.
MAX_ADDRESSES = 65_536
MAX_ENTRIES = 4_096
MAX_TEXT = 65_536

LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")

_OCTET_RANGE = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.(\d{1,3})-(\d{1,3})$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_ADDRESS_LIKE = re.compile(r"^[0-9.]+$|:")  # what must parse as an address, never as a name
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Target:
    """One validated target. `specs` is what nmap receives (one or more canonical tokens);
    `first`/`last` bound the addresses it covers (None for a host name)."""

    text: str
    specs: tuple[str, ...]
    first: IPAddress | None = None
    last: IPAddress | None = None
    exclude: bool = False

    @property
    def is_name(self) -> bool:
        return self.first is None

    @property
    def version(self) -> int | None:
        return self.first.version if self.first is not None else None

    @property
    def size(self) -> int:
        """How many addresses nmap will scan for it (a name counts as one)."""
        if self.first is None or self.last is None:
            return 1
        return int(self.last) - int(self.first) + 1

    def within(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
        return (self.first is not None and self.last is not None and self.first.version == network.version
                and network.network_address <= self.first and self.last <= network.broadcast_address)


def _parse_one(text: str) -> Target:
    """One entry, without a leading "!"; raises TargetError."""
    if text.startswith("-"):
        raise TargetError(f"{text!r} looks like an nmap option, not a target: options are set through "
                          "NmapOptions, and targets are addresses, CIDRs, ranges or host names")
    if "%" in text:  # Python accepts any text as an IPv6 zone ("fe80::1%;rm"): none reaches nmap
        raise TargetError(f"{text!r} has an IPv6 zone (%...): zones are not supported, give the address alone")
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise TargetError(f"{text!r} is not a CIDR block (expected e.g. 10.0.0.0/24 or fd00::/120)") from None
        return Target(text, (network.with_prefixlen,), network.network_address, network.broadcast_address)
    if match := _OCTET_RANGE.match(text):
        prefix, low, high = match[1], int(match[2]), int(match[3])
        try:
            first = ipaddress.IPv4Address(f"{prefix}.{low}")
            last = ipaddress.IPv4Address(f"{prefix}.{high}")
        except ValueError:
            raise TargetError(f"{text!r} is not a valid range: an octet is over 255 or has a leading zero") from None
        if low > high:
            raise TargetError(f"{text!r} is an empty range: {low} is after {high}")
        spec = str(first) if low == high else f"{prefix}.{low}-{high}"
        return Target(text, (spec,), first, last)
    if "-" in text and _ADDRESS_LIKE.search(text.split("-", 1)[0]):
        return _address_range(text)
    if _ADDRESS_LIKE.search(text):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise TargetError(f"{text!r} is not a valid IP address") from None
        return Target(text, (address.compressed,), address, address)
    if _HOST_NAME.match(text):
        name = text.rstrip(".").lower()
        return Target(text, (name,))
    raise TargetError(f"{text!r} is not a target: expected an address (127.0.0.15), a CIDR (10.0.0.0/24), "
                      "a range (127.0.0.10-20) or a host name (letters, digits, '-' and '.')")


def _address_range(text: str) -> Target:
    """"10.0.0.250-10.0.1.5": nmap has no syntax for it, so it becomes the covering CIDR blocks."""
    low_text, _, high_text = text.partition("-")
    try:
        first, last = ipaddress.ip_address(low_text), ipaddress.ip_address(high_text)
    except ValueError:
        raise TargetError(f"{text!r} is not a valid range: expected FIRST-LAST addresses "
                          "(10.0.0.250-10.0.1.5) or a last-octet range (127.0.0.10-20)") from None
    if first.version != last.version:
        raise TargetError(f"{text!r} mixes an IPv4 and an IPv6 address")
    if first > last:
        raise TargetError(f"{text!r} is an empty range: {first} is after {last}")
    if int(last) - int(first) + 1 > MAX_ADDRESSES:  # before summarising: that list could be huge
        raise TargetError(f"{text!r} covers more than {MAX_ADDRESSES} addresses")
    blocks = ipaddress.summarize_address_range(first, last)
    return Target(text, tuple(b.with_prefixlen if b.num_addresses > 1 else b.network_address.compressed
                              for b in blocks), first, last)


def _entries(spec: str | Iterable[str]) -> list[str]:
    if isinstance(spec, str):
        if len(spec) > MAX_TEXT:
            raise TargetError(f"the target text is {len(spec)} characters; the limit is {MAX_TEXT}")
        items: Iterable[str] = [spec]
    else:
        items = spec
    entries: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TargetError(f"a target must be text, not {type(item).__name__}")
        entries += [e for e in _SEPARATORS.split(item) if e]
        if len(entries) > MAX_ENTRIES:
            raise TargetError(f"more than {MAX_ENTRIES} targets in one scan: split it")
    return entries


def parse_targets(spec: str | Iterable[str], *, allowed: str | Iterable[str] | None = None,
                  max_addresses: int = MAX_ADDRESSES) -> list[Target]:
    """Validated targets, in the order given, duplicates dropped; "!" entries have `exclude` set.
    Raises TargetError naming the first bad entry."""
    targets: list[Target] = []
    seen: set[tuple[tuple[str, ...], bool]] = set()
    for entry in _entries(spec):
        exclude = entry.startswith("!")
        target = _parse_one(entry[1:] if exclude else entry)
        if exclude:
            target = Target(target.text, target.specs, target.first, target.last, exclude=True)
        if (target.specs, exclude) not in seen:
            seen.add((target.specs, exclude))
            targets.append(target)
    included = [t for t in targets if not t.exclude]
    if not included and targets:
        raise TargetError("only exclusions were given: name what to scan as well")
    versions = {t.version for t in included if t.version is not None}
    if len(versions) > 1:
        raise TargetError("nmap scans IPv4 and IPv6 targets in separate runs: split them into two scans")
    total = sum(t.size for t in included)
    if total > max_addresses:
        raise TargetError(f"the targets cover {total} addresses; the limit is {max_addresses}: "
                          "split the scan or raise max_addresses")
    if allowed is not None:
        check_allowed(targets, allowed)
    return targets


def parse_exclusions(spec: str | Iterable[str]) -> list[Target]:
    """Addresses never to scan (a leading "!" is allowed): validated like targets, but unbounded
    in size and version, since excluding more scans less."""
    return [Target(t.text, t.specs, t.first, t.last, exclude=True)
            for t in (_parse_one(e.removeprefix("!")) for e in _entries(spec))]


def allowed_networks(allowed: str | Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The allow-list as networks, parsed with the target syntax (names are not ranges)."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in _entries(allowed):
        target = _parse_one(entry)
        if target.first is None or target.last is None:
            raise TargetError(f"allowed range {entry!r} is a name: give addresses, CIDRs or ranges")
        networks += ipaddress.summarize_address_range(target.first, target.last)
    return list(ipaddress.collapse_addresses([n for n in networks if n.version == 4])) + \
        list(ipaddress.collapse_addresses([n for n in networks if n.version == 6]))


def check_allowed(targets: Sequence[Target], allowed: str | Iterable[str]) -> None:
    """Raise TargetError unless every included target lies inside the allowed ranges."""
    networks = allowed_networks(allowed)
    for target in targets:
        if target.exclude:
            continue  # excluding something outside the allowed ranges scans nothing more
        if target.is_name:
            raise TargetError(f"{target.text!r} is a host name, and this scan is limited to allowed ranges: "
                              "give its address, so that it can be checked before nmap runs")
        blocks = ipaddress.summarize_address_range(target.first, target.last)  # type: ignore[arg-type]
        if not all(any(block.subnet_of(net) for net in networks if net.version == block.version)
                   for block in blocks):
            shown = ", ".join(str(n) for n in networks) or "nothing"
            raise TargetError(f"{target.text!r} is outside the allowed ranges ({shown}): "
                              "this scanner may not touch it")


def all_loopback(targets: Sequence[Target]) -> bool:
    """True when every included target is in 127.0.0.0/8 or ::1, where host discovery means
    nothing (every address answers) and open ports are the only sign of a host."""
    included = [t for t in targets if not t.exclude]
    return bool(included) and all(
        t.within(LOOPBACK_V4) or (t.first is not None and t.first == t.last and t.first.is_loopback)
        for t in included)
