"""Target parsing: every accepted form becomes canonical text we produced; everything else is
refused with a TargetError naming the entry, before nmap could see it."""

from __future__ import annotations

import ipaddress

import pytest

from discovery.nmap.errors import TargetError
from discovery.nmap.targets import MAX_ADDRESSES, all_loopback, parse_exclusions, parse_targets


def specs(text, **kwargs):
    return [(t.specs, t.exclude) for t in parse_targets(text, **kwargs)]


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.15", ("127.0.0.15",)),
    ("10.0.0.7/24", ("10.0.0.0/24",)),  # host bits dropped, as nmap does
    ("127.0.0.10-20", ("127.0.0.10-20",)),
    ("127.0.0.15-15", ("127.0.0.15",)),
    ("10.0.0.254-10.0.1.1", ("10.0.0.254/31", "10.0.1.0/31")),  # nmap has no such syntax
    ("FD00::0001", ("fd00::1",)),
    ("fd00::/126", ("fd00::/126",)),
    ("Printer-3.Example.COM.", ("printer-3.example.com",)),
])
def test_each_form_becomes_a_canonical_spec(text, expected):
    assert specs(text) == [(expected, False)]


def test_lists_blanks_commas_exclusions_and_duplicates():
    assert specs("127.0.0.15, 127.0.0.16\n127.0.0.15 !127.0.0.16") == [
        (("127.0.0.15",), False), (("127.0.0.16",), False), (("127.0.0.16",), True)]
    assert specs(["127.0.0.15", "127.0.0.17-18"]) == [(("127.0.0.15",), False), (("127.0.0.17-18",), False)]


def test_sizes_and_bounds():
    (target,) = parse_targets("127.0.0.10-20")
    assert target.size == 11 and target.first == ipaddress.ip_address("127.0.0.10")
    assert parse_targets("host.example")[0].size == 1
    with pytest.raises(TargetError, match="cover 16777216 addresses; the limit is 65536"):
        parse_targets("10.0.0.0/8")
    assert parse_targets("10.0.0.0/8", max_addresses=1 << 24)[0].size == 1 << 24
    with pytest.raises(TargetError, match="more than 65536"):
        parse_targets("10.0.0.0-10.255.255.255")
    assert MAX_ADDRESSES == 65_536


@pytest.mark.parametrize("hostile, message", [
    (";rm -rf /", "not a target"),
    ("127.0.0.15;reboot", "not a target"),
    ("$(reboot)", "not a target"),
    ("`id`", "not a target"),
    ("-iL /etc/passwd", "looks like an nmap option"),
    ("--script=http-shellshock", "looks like an nmap option"),
    ("-oN/etc/cron.d/x", "looks like an nmap option"),
    ("127.0.0.256", "not a valid IP address"),
    ("127.0.0.010", "not a valid IP address"),  # leading zero: octal to some parsers
    ("127.0.0.20-10", "empty range"),
    ("127.0.0.10-300", "octet is over 255"),
    ("10.0.0.9-10.0.0.1", "empty range"),
    ("10.0.0.1-fd00::1", "mixes an IPv4 and an IPv6"),
    ("10.0.0.0/33", "not a CIDR"),
    ("fe80::1%eth0", "IPv6 zone"),
    ("fe80::1%;rm", "IPv6 zone"),
    ("host_name.example", "not a target"),
    ("a" * 64 + ".example", "not a target"),  # a DNS label is at most 63 characters
    ("!", "not a target"),
    ("!!127.0.0.1", "not a target"),
    ("127.0.0.1\x00", "not a target"),
])
def test_hostile_or_malformed_entries_are_refused(hostile, message):
    with pytest.raises(TargetError, match=message):
        parse_targets(hostile)


def test_refusals_of_shape():
    with pytest.raises(TargetError, match="only exclusions"):
        parse_targets("!127.0.0.15")
    with pytest.raises(TargetError, match="separate runs"):
        parse_targets("127.0.0.15 ::1")
    with pytest.raises(TargetError, match="must be text"):
        parse_targets([b"127.0.0.1"])  # type: ignore[list-item]
    with pytest.raises(TargetError, match="characters; the limit"):
        parse_targets("127.0.0.1 " * 10_000)
    with pytest.raises(TargetError, match="more than 4096 targets"):
        parse_targets([f"10.0.{i // 256}.{i % 256}" for i in range(4_097)])
    assert parse_targets("") == []


def test_allowed_ranges():
    lab = "127.0.0.15-19"
    assert specs("127.0.0.15-19 127.0.0.17", allowed=lab)
    assert specs("127.0.0.16/31", allowed="127.0.0.15-19")  # .16-.17
    assert specs("127.0.0.15 !10.0.0.1", allowed=lab)  # excluding more is always allowed
    with pytest.raises(TargetError, match=r"'127.0.0.10-20' is outside the allowed ranges \(127.0.0.15/32"):
        parse_targets("127.0.0.10-20", allowed=lab)
    with pytest.raises(TargetError, match="outside the allowed ranges"):
        parse_targets("127.0.0.1", allowed=lab)
    with pytest.raises(TargetError, match="outside the allowed ranges"):
        parse_targets("::1", allowed=lab)
    with pytest.raises(TargetError, match="is a host name"):
        parse_targets("localhost", allowed=lab)
    with pytest.raises(TargetError, match="allowed range 'lab' is a name"):
        parse_targets("127.0.0.15", allowed="lab")
    # ranges that only together cover a target
    assert specs("127.0.0.14-17", allowed="127.0.0.14/31 127.0.0.16/31")


def test_exclusions_are_unbounded_and_loopback_is_detected():
    assert [t.specs for t in parse_exclusions(["!10.0.0.0/8", "fd00::/64"])] == [("10.0.0.0/8",), ("fd00::/64",)]
    with pytest.raises(TargetError, match="looks like an nmap option"):
        parse_exclusions("-iL")
    assert all_loopback(parse_targets("127.0.0.15-19 !10.0.0.1"))
    assert all_loopback(parse_targets("::1"))
    assert not all_loopback(parse_targets("127.0.0.15 10.0.0.1"))
    assert not all_loopback(parse_targets("localhost"))  # a name may resolve anywhere
