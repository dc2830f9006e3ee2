"""NmapOptions validation and the argv built from it: every value checked, nothing raw on the
command line, targets after `--`."""

from __future__ import annotations

import pytest

from discovery.nmap.errors import NmapOptionsError, TargetError
from discovery.nmap.options import SCRIPT_ALLOW_LIST, NmapOptions, build_nmap_argv, canonical_ports


def argv(targets="127.0.0.15", privileged=False, **options):
    return build_nmap_argv(targets, NmapOptions(**options), "/usr/bin/nmap", privileged=privileged)


def test_defaults_on_loopback():
    assert argv() == ["/usr/bin/nmap", "-sT", "-Pn", "-oX", "-", "--", "127.0.0.15"]


def test_every_option_on_the_command_line():
    built = argv("10.0.0.0/30 !10.0.0.2", privileged=True, ports="443, 22,1000-2000", scan="syn",
                 service_version=True, version_intensity=4, os_detection=True, timing=4, host_timeout_s=1.5,
                 exclude=["10.0.0.3"], reverse_dns=False, dns_servers=["10.0.0.53"],
                 scripts=["ssh-hostkey", "banner", "banner"])
    assert built == ["/usr/bin/nmap", "-sS", "-n", "--dns-servers", "10.0.0.53", "-p", "443,22,1000-2000",
                     "-sV", "--version-intensity", "4", "-O", "-T4", "--host-timeout", "1500ms",
                     "--script", "ssh-hostkey,banner", "--exclude", "10.0.0.3,10.0.0.2",
                     "-oX", "-", "--", "10.0.0.0/30"]


def test_host_discovery_is_skipped_only_on_loopback_unless_told():
    assert "-Pn" not in argv("10.0.0.1")
    assert "-Pn" in argv("10.0.0.1", skip_host_discovery=True)
    assert "-Pn" not in argv("127.0.0.15", skip_host_discovery=False)
    assert "--top-ports" in argv(top_ports=100)
    six = argv("fd00::1")
    assert six[six.index("--") - 3] == "-6" and six[-1] == "fd00::1"


def test_root_only_scans_are_refused_without_root_never_downgraded():
    with pytest.raises(NmapOptionsError, match="SYN scan needs root.*scan='connect'"):
        argv(scan="syn", privileged=False)
    with pytest.raises(NmapOptionsError, match=r"OS detection \(-O\) needs root"):
        argv(os_detection=True, privileged=False)
    assert "-sS" in argv(scan="syn", privileged=True)


@pytest.mark.parametrize("options, message", [
    ({"ports": "22;reboot"}, "not a port"),
    ({"ports": "T:22"}, "not a port"),
    ({"ports": "ssh"}, "not a port"),
    ({"ports": "0"}, "out of range"),
    ({"ports": "65536"}, "out of range"),
    ({"ports": "2000-1000"}, "out of range"),
    ({"ports": ""}, "comma-separated"),
    ({"ports": ",".join(["22"] * 1025)}, "comma-separated"),
    ({"ports": 22}, "must be text"),
    ({"ports": "22", "top_ports": 10}, "not both"),
    ({"top_ports": 0}, "top_ports must be a whole number from 1"),
    ({"top_ports": True}, "top_ports must be a whole number"),
    ({"scan": "udp"}, "'connect' or 'syn'"),
    ({"scan": "connect -iL /etc/passwd"}, "'connect' or 'syn'"),
    ({"service_version": "yes"}, "service_version must be true or false"),
    ({"version_intensity": 5}, "only applies with service_version"),
    ({"service_version": True, "version_intensity": 10}, "from 0 to 9"),
    ({"timing": 6}, "timing must be a whole number from 0 to 5"),
    ({"timing": "4"}, "timing must be a whole number"),
    ({"host_timeout_s": 0}, "host_timeout_s must be a number of seconds"),
    ({"host_timeout_s": "1s"}, "host_timeout_s must be a number"),
    ({"host_timeout_s": float("nan")}, "host_timeout_s must be a number"),
    ({"exclude": ["-iL /etc/passwd"]}, "looks like an nmap option"),
    ({"exclude": "10.0.0.1;rm"}, "not a target"),
    ({"dns_servers": ["8.8.8.8;id"]}, "not an IP address"),
    ({"dns_servers": ["fe80::1%eth0"]}, "IPv6 zone"),
    ({"scripts": ["http-shellshock"]}, "not on the allow-list"),
    ({"scripts": ["banner,http-shellshock"]}, "not on the allow-list"),
    ({"scripts": ["../../tmp/evil.nse"]}, "not on the allow-list"),
    ({"scripts": [1]}, "list of text"),
    ({"skip_host_discovery": "no"}, "skip_host_discovery must be true or false"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(NmapOptionsError, match=message):
        NmapOptions(**options)


def test_targets_are_validated_when_the_command_is_built():
    with pytest.raises(TargetError, match="looks like an nmap option"):
        build_nmap_argv("-iL /etc/passwd", NmapOptions())
    with pytest.raises(TargetError, match="not a target"):
        build_nmap_argv(["127.0.0.15", ";rm -rf /"], NmapOptions())
    with pytest.raises(NmapOptionsError, match="no targets"):
        build_nmap_argv("", NmapOptions())
    with pytest.raises(NmapOptionsError, match="must be NmapOptions"):
        build_nmap_argv("127.0.0.15", {"ports": "22"})  # type: ignore[arg-type]


def test_nothing_user_typed_reaches_argv_unchecked():
    """Every argv element is ours: a fixed flag, a number, or canonical text of a validated value."""
    built = argv("127.0.0.15 127.0.0.16-17", ports="22, 80", exclude=["127.0.0.17"], scripts=["banner"])
    assert built.index("--") == len(built) - 3
    assert all(not word.startswith("-") for word in built[built.index("--") + 1:])
    assert "22,80" in built and "22, 80" not in built


def test_from_mapping_for_profiles():
    options = NmapOptions.from_mapping({"ports": "22", "service_version": True, "scripts": ["banner"]})
    assert options.scripts == ("banner",) and options.ports == "22"
    with pytest.raises(NmapOptionsError, match="unknown nmap option.*'args'.*known:"):
        NmapOptions.from_mapping({"args": "-sC"})
    assert canonical_ports(" 1-3 ,5") == "1-3,5"
    assert {"banner", "ssh-hostkey", "ssl-cert"} <= SCRIPT_ALLOW_LIST
