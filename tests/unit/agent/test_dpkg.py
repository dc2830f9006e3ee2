"""dpkg-query: GLPI agent's recorded output (its expected results where they apply) and this
machine's own packages."""

from __future__ import annotations

import subprocess

from agent.collectors.software.dpkg import (
    DPKG_QUERY,
    DebPackage,
    DpkgCollector,
    deb_install_purl,
    deb_software_purl,
    parse_dpkg_query,
)
from agent.context import LocalContext
from tests.unit.agent.conftest import GLPI, RecordedContext, glpi_expected

RECORDED = (GLPI / "packaging" / "dpkg").read_text()


def test_recorded_output_matches_glpi():
    packages = {p.name: p for p in parse_dpkg_query(RECORDED)}
    assert len(packages) == len(RECORDED.splitlines())  # every line, whatever its status
    expected = glpi_expected("packaging", "dpkg", "softwares")["value"]
    for soft in expected:
        pkg = packages[soft["NAME"]]
        assert (pkg.arch, pkg.version, pkg.section) == (soft["ARCH"], soft["VERSION"], soft["SYSTEM_CATEGORY"])
        if pkg.size_bytes is None:  # GLPI says "0" for an empty Installed-Size: unknown, not zero
            assert soft["FILESIZE"] == "0"
        else:
            assert pkg.size_bytes == int(soft["FILESIZE"])
    # GLPI drops removed-but-configured packages; we keep them and say so.
    dropped = set(packages) - {s["NAME"] for s in expected}
    assert dropped == {"vlc-nox"}
    assert packages["vlc-nox"].status == "deinstall ok config-files" and packages["vlc-nox"].installed is False
    assert packages["at"].installed is True and packages["adduser"].installed is None


def test_purls():
    pkg = DebPackage("libstdc++6", "amd64", "1:12.2.0~rc1+dfsg-14", 3000, "libs", None, None)
    assert deb_software_purl("debian", pkg.name) == "pkg:deb/debian/libstdc%2B%2B6"
    assert deb_install_purl("debian", pkg) == "pkg:deb/debian/libstdc%2B%2B6@1:12.2.0~rc1%2Bdfsg-14?arch=amd64"
    assert deb_install_purl(None, DebPackage("curl", None, "7.88", None, None, None, None)) == "pkg:deb/curl@7.88"


def test_collector_shape_on_recorded_host():
    ctx = RecordedContext(files={"/etc/os-release": "ID=ubuntu\n"}, commands={tuple(DPKG_QUERY): RECORDED})
    out = DpkgCollector().collect(ctx)
    install = out.items["pkg:deb:apache2:amd64"]
    assert install.identifiers == {"package": "deb:apache2:amd64"}
    assert install.attributes["purl"] == "pkg:deb/ubuntu/apache2@2.2.16-6%2Bsqueeze6?arch=amd64"
    assert install.attributes["size_bytes"] == 36 * 1024
    assert out.items["sw:deb:apache2"].identifiers == {"purl": "pkg:deb/ubuntu/apache2"}
    assert ("pkg:deb:apache2:amd64", "INSTALLED_ON", "computer") in out.relations
    assert ("pkg:deb:apache2:amd64", "INSTANCE_OF", "sw:deb:apache2") in out.relations
    assert "size_bytes" not in out.items["pkg:deb:jcagent:amd64"].attributes


def test_multiarch_gives_one_software_two_installs():
    text = "libc6\tamd64\t2.36-9\t12000\tlibs\tinstall ok installed\tGNU Libc Maintainers <x@y>\n" \
           "libc6\ti386\t2.36-9\t11000\tlibs\tinstall ok installed\tGNU Libc Maintainers <x@y>\n"
    out = DpkgCollector().collect(RecordedContext(commands={tuple(DPKG_QUERY): text}))
    assert sorted(out.items) == ["pkg:deb:libc6:amd64", "pkg:deb:libc6:i386", "sw:deb:libc6"]


def test_this_machine_one_install_per_dpkg_line():
    lines = subprocess.run(["dpkg-query", "-W"], capture_output=True, text=True, check=True).stdout.splitlines()
    out = DpkgCollector().collect(LocalContext(agent_id="x"))
    installs = [i for i in out.items.values() if i.class_ == "SoftwareInstall"]
    assert len(installs) == len(lines)
    shown = {line.split("\t")[0].split(":")[0] for line in lines}
    assert {i.attributes["name"] for i in installs} == shown


# Install dates: the mtime of the package's file list, one scan for all packages.
from agent.collectors.software.dpkg import LIST_MTIMES, install_date, parse_list_mtimes  # noqa: E402


def test_install_dates_from_a_recorded_find():
    text = "libc6\tamd64\t2.36-9\t12000\tlibs\tinstall ok installed\tGNU Libc Maintainers <x@y>\n" \
           "libc6\ti386\t2.36-9\t11000\tlibs\tinstall ok installed\tGNU Libc Maintainers <x@y>\n" \
           "curl\tamd64\t7.88.1-10\t500\tweb\tinstall ok installed\tA <a@b>\n" \
           "vlc-nox\tamd64\t2.0\t1\tvideo\tdeinstall ok config-files\tV <v@l>\n"
    find = "1700000000.1234567890 libc6:amd64.list\n1700000100.5 libc6:i386.list\n1690000000.0 curl.list\ngarbage\n"
    ctx = RecordedContext(commands={tuple(DPKG_QUERY): text, tuple(LIST_MTIMES): find})
    out = DpkgCollector().collect(ctx)
    assert out.items["pkg:deb:libc6:amd64"].attributes["install_date"] == "2023-11-14T22:13:20Z"
    assert out.items["pkg:deb:libc6:i386"].attributes["install_date"] == "2023-11-14T22:15:00Z"
    assert out.items["pkg:deb:curl:amd64"].attributes["install_date"] == "2023-07-22T04:26:40Z"
    assert "install_date" not in out.items["pkg:deb:vlc-nox:amd64"].attributes  # removed: no file list
    assert parse_list_mtimes(find) == {"libc6:amd64.list": 1700000000.123456789, "libc6:i386.list": 1700000100.5,
                                       "curl.list": 1690000000.0}


def test_this_machine_install_dates_are_the_list_mtimes():
    import os

    out = DpkgCollector().collect(LocalContext(agent_id="x"))
    installs = [i for i in out.items.values() if i.class_ == "SoftwareInstall"]
    dated = [i for i in installs if "install_date" in i.attributes]
    assert len(dated) >= len([i for i in installs if i.attributes.get("installed")]) * 0.99
    item = next(i for i in installs if i.attributes["name"] in ("dpkg", "base-files"))
    mtime = os.stat(f"/var/lib/dpkg/info/{item.attributes['name']}.list").st_mtime
    pkg = DebPackage(item.attributes["name"], item.attributes["arch"], "x", None, None, None, None)
    assert item.attributes["install_date"] == install_date(pkg, {f"{pkg.name}.list": mtime})
