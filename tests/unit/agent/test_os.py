"""os-release and friends, against GLPI agent's recorded distro files and this machine."""

from __future__ import annotations

import os
import platform

import pytest

from agent.collectors.os import (
    OsCollector,
    os_attributes,
    parse_boot_time,
    parse_debian_version,
    parse_hostid,
    parse_os_release,
    parse_redhat_release,
    read_hostid,
    split_fqdn,
    timezone_from_link,
)
from agent.context import CommandTimeout, LocalContext
from tests.unit.agent.conftest import GLPI, RecordedContext, glpi_expected

DISTRO_CASES = sorted(p.name.removesuffix(".json") for p in (GLPI / "distro" / "expected").glob("*.json"))


@pytest.mark.parametrize("case", DISTRO_CASES)
def test_os_release_matches_glpi(case):
    expected = glpi_expected("distro", case, "os_release")
    inputs = expected["inputs"]
    release = parse_os_release((GLPI / inputs["os-release"]).read_text())
    assert release["NAME"] == expected["value"]["NAME"]
    assert release["PRETTY_NAME"] == expected["value"]["FULL_NAME"]
    full = None
    if "debian_version" in inputs:
        full = parse_debian_version((GLPI / inputs["debian_version"]).read_text())
    if "centos-release" in inputs:
        full = parse_redhat_release((GLPI / inputs["centos-release"]).read_text())
    # GLPI puts the refined number in VERSION ("7.9.2009 (Core)"); we keep VERSION and add it.
    if full:
        assert expected["value"]["VERSION"].split()[0] == full
    else:
        assert release["VERSION"] == expected["value"]["VERSION"]


def test_os_release_quoting_and_empty_values():
    text = (GLPI / "distro" / "os-release-fedora-35").read_text()
    release = parse_os_release(text)
    assert release["ID"] == "fedora" and release["VERSION_ID"] == "35"
    assert "VERSION_CODENAME" not in release  # VERSION_CODENAME="" is unknown, not ""
    assert release["ANSI_COLOR"] == "0;38;2;60;110;180"
    tricky = parse_os_release('# comment\nNAME=\'Single\'\nX="a \\"quoted\\" word"\nBAD LINE\nY="unbalanced\n')
    assert tricky == {"NAME": "Single", "X": 'a "quoted" word', "Y": "unbalanced"}


def test_os_release_centos_id_like():
    release = parse_os_release((GLPI / "distro" / "os-release-centos-7.9").read_text())
    assert release["ID_LIKE"] == "rhel fedora"


def test_version_files():
    assert parse_debian_version("bookworm/sid\n") is None
    assert parse_debian_version("12.5\n") == "12.5"
    assert parse_redhat_release("Red Hat Enterprise Linux release 8.9 (Ootpa)") == "8.9"


def test_split_fqdn():
    assert split_fqdn("web-01", "web-01.corp.example.com") == ("web-01", "web-01.corp.example.com",
                                                               "corp.example.com")
    assert split_fqdn("web-01.corp.example", None) == ("web-01", "web-01.corp.example", "corp.example")
    assert split_fqdn("vm", "localhost") == ("vm", "vm", None)
    assert split_fqdn("vm", "vm.localdomain") == ("vm", "vm", None)
    assert split_fqdn("vm", "other.example.com") == ("vm", "vm", None)
    assert split_fqdn(None, "x.example.com") == (None, None, None)


def test_boot_time_and_timezone():
    assert parse_boot_time("cpu 1 2 3\nbtime 1700000000\n") == "2023-11-14T22:13:20Z"
    assert parse_boot_time("cpu 1 2 3\n") is None
    assert timezone_from_link("/usr/share/zoneinfo/Europe/Paris") == "Europe/Paris"
    assert timezone_from_link("../usr/share/zoneinfo/posix/Asia/Tokyo") == "Asia/Tokyo"
    assert timezone_from_link("/etc/something") is None


def test_recorded_host():
    ctx = RecordedContext(files={
        "/etc/os-release": (GLPI / "distro" / "os-release-centos-7.9").read_text(),
        "/etc/centos-release": (GLPI / "distro" / "centos-release-centos-7.9").read_text(),
        "/proc/sys/kernel/ostype": "Linux\n",
        "/proc/sys/kernel/osrelease": "3.10.0-1160.el7.x86_64\n",
        "/proc/sys/kernel/version": "#1 SMP Mon Oct 19 16:18:59 UTC 2020\n",
        "/proc/sys/kernel/hostname": "db-07.prod.example.net\n",
        "/proc/stat": "btime 1700000000\n",
    }, links={"/etc/localtime": "../usr/share/zoneinfo/Europe/Berlin"},
        commands={("uname", "-m"): "x86_64\n", ("hostid",): "0a2b3c4d\n"})
    out = OsCollector().collect(ctx)
    os_item, computer = out.items["os"], out.items["computer"]
    assert os_item.attributes["version_full"] == "7.9.2009"
    assert os_item.attributes["id_like"] == "rhel fedora"
    assert os_item.attributes["arch"] == "x86_64"
    assert computer.identifiers == {"hostname": "db-07", "fqdn": "db-07.prod.example.net"}
    assert computer.attributes["domain"] == "prod.example.net"
    assert computer.attributes["timezone"] == "Europe/Berlin"
    assert computer.attributes["host_id"] == "0a2b3c4d"
    assert out.relations == [("os", "RUNS_ON", "computer")]


def test_hostid():
    assert parse_hostid("007f0100\n") == "007f0100" and parse_hostid("A8C00101") == "a8c00101"
    assert parse_hostid("00000000\n") is None and parse_hostid("ffffffff") is None  # no id
    assert parse_hostid("hostid: command not found") is None and parse_hostid("") is None
    assert read_hostid(RecordedContext(files={"/etc/hostid": "\x01\x7f\x00\x00"})) is None  # no command, unknown
    failing = RecordedContext(commands={("hostid",): CommandTimeout(["hostid"], "no result after 2s")})
    assert read_hostid(failing) is None


def test_this_machine_hostid():
    import shutil
    import subprocess

    if shutil.which("hostid") is None:
        pytest.skip("no hostid command here")
    expected = subprocess.run(["hostid"], capture_output=True, text=True, check=True).stdout.strip()
    assert read_hostid(LocalContext(agent_id="x")) == parse_hostid(expected)


def test_this_machine():
    attrs = os_attributes(LocalContext(agent_id="x"))
    uname = os.uname()
    assert attrs["kernel_release"] == uname.release
    assert attrs["arch"] == platform.machine()
    assert attrs["id"] == parse_os_release(open("/etc/os-release").read())["ID"]


def test_slow_resolver_falls_back_to_the_hostname(monkeypatch):
    import time

    from agent.collectors import os as os_collector

    monkeypatch.setattr(os_collector, "FQDN_LOOKUP_TIMEOUT", 0.1)
    monkeypatch.setattr(os_collector, "_resolve_canonical_name", lambda name: time.sleep(3) or "x.example.com")
    ctx = LocalContext(agent_id="x")
    start = time.perf_counter()
    assert os_collector.lookup_fqdn(ctx, "web-01") is None
    assert time.perf_counter() - start < 1
    monkeypatch.setattr(os_collector, "_resolve_canonical_name", lambda name: "web-01.corp.example")
    assert os_collector.lookup_fqdn(ctx, "web-01") == "web-01.corp.example"
