"""rpm: GLPI agent's recorded `rpm -qa` (its expected results where they apply), the basesystem
install time, purls, and several versions of one package installed at once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from agent.collectors.software.rpm import (
    RPM_QUERY,
    RpmCollector,
    parse_install_time,
    parse_rpm_qa,
    rpm_install_purl,
)
from tests.unit.agent.conftest import GLPI, RecordedContext, glpi_expected

RECORDED = (GLPI / "packaging" / "rpm").read_text()


def test_recorded_output_matches_glpi():
    packages = parse_rpm_qa(RECORDED)
    expected = glpi_expected("packaging", "rpm", "softwares")["value"]
    assert [p.name for p in packages] == [s["NAME"] for s in expected]
    for pkg, soft in zip(packages, expected, strict=True):
        assert (pkg.arch, pkg.evr, pkg.vendor, pkg.summary) == (soft["ARCH"], soft["VERSION"], soft["PUBLISHER"], soft["COMMENTS"])
        assert pkg.size_bytes == int(soft["FILESIZE"])
        # GLPI renders INSTALLTIME in the test's time zone (CET) as dd/mm/yyyy.
        assert datetime.fromtimestamp(pkg.install_time, ZoneInfo("CET")).strftime("%d/%m/%Y") == soft["INSTALLDATE"]
        # GLPI keeps Fedora's catch-all group "Unspecified"; it says nothing, so it is absent here.
        assert pkg.group == (None if soft["SYSTEM_CATEGORY"] == "Unspecified" else soft["SYSTEM_CATEGORY"])
        assert pkg.epoch is None and pkg.license is None  # not in GLPI's eight columns


def test_basesystem_install_date_matches_glpi():
    expected = glpi_expected("packaging", "fedora-35", "basesystem_installdate")["value"]  # UTC
    ours = parse_install_time((GLPI / "packaging" / "fedora-35").read_text())
    assert ours == expected.replace(" ", "T") + "Z"
    assert parse_install_time("") is None and parse_install_time("(none)\n") is None


FEDORA = (
    "curl\tx86_64\t7.79.1-1.fc35\t1643183600\t719234\tFedora Project\tA utility for getting files from remote servers\t"
    "Unspecified\t(none)\tcurl\n"
    "kernel-core\tx86_64\t5.16.5-200.fc35\t1644300000\t93000000\tFedora Project\tThe Linux kernel\tUnspecified\t(none)\t"
    "GPLv2 and Redistributable, no modification permitted\n"
    "kernel-core\tx86_64\t5.15.18-200.fc35\t1643500000\t92000000\tFedora Project\tThe Linux kernel\tUnspecified\t(none)\t"
    "GPLv2 and Redistributable, no modification permitted\n"
    "gpg-pubkey\t(none)\t9867c58f-601c49ca\t1643183500\t0\t(none)\tFedora (35) <fedora-35-primary@fedoraproject.org>\t"
    "Public Keys\t(none)\tpubkey\n"
    "dbus\tx86_64\t1.12.20-5.fc35\t1643183550\t0\tFedora Project\tD-BUS message bus\tUnspecified\t1\t"
    "(GPLv2+ or AFL) and GPLv2+\n"
    "libstdc++\ti686\t11.2.1~rc-1.fc35\t1643183560\t2500000\tFedora Project\tGNU Standard C++ Library\tUnspecified\t"
    "(none)\tGPLv3+ and GPLv3+ with exceptions and GPLv2+ with exceptions and LGPLv2+ and BSD\n"
)


def _collect(os_release: str = "ID=fedora\nVERSION_ID=35\n"):
    ctx = RecordedContext(files={"/etc/os-release": os_release, "/var/lib/rpm/rpmdb.sqlite": ""},
                          commands={tuple(RPM_QUERY): FEDORA})
    assert RpmCollector().is_enabled(ctx)
    return RpmCollector().collect(ctx)


def test_collector_items_and_attributes():
    out = _collect()
    curl = out.items["pkg:rpm:curl:x86_64"]
    assert curl.identifiers == {"package": "rpm:curl:x86_64"}
    assert curl.attributes == {  # group "Unspecified" and epoch "(none)": absent
        "name": "curl", "version": "7.79.1-1.fc35", "arch": "x86_64", "size_bytes": 719234,
        "vendor": "Fedora Project", "license": "curl", "install_date": "2022-01-26T07:53:20Z",
        "installed": True, "purl": "pkg:rpm/fedora/curl@7.79.1-1.fc35?arch=x86_64"}
    assert out.items["sw:rpm:curl"].identifiers == {"purl": "pkg:rpm/fedora/curl"}
    assert ("pkg:rpm:curl:x86_64", "INSTALLED_ON", "computer") in out.relations
    assert ("pkg:rpm:curl:x86_64", "INSTANCE_OF", "sw:rpm:curl") in out.relations
    dbus = out.items["pkg:rpm:dbus:x86_64"].attributes
    assert dbus["epoch"] == 1 and dbus["purl"] == "pkg:rpm/fedora/dbus@1.12.20-5.fc35?arch=x86_64&epoch=1"
    assert dbus["size_bytes"] == 0  # a package of no files: zero is a size, not an unknown


def test_several_versions_of_one_package_are_several_installs():
    out = _collect()
    kernels = sorted(r for r in out.items if r.startswith("pkg:rpm:kernel-core:"))
    assert kernels == ["pkg:rpm:kernel-core:x86_64:5.15.18-200.fc35", "pkg:rpm:kernel-core:x86_64:5.16.5-200.fc35"]
    assert out.items[kernels[0]].identifiers == {"package": "rpm:kernel-core:x86_64:5.15.18-200.fc35"}
    assert [r for r in out.items if r.startswith("sw:rpm:kernel")] == ["sw:rpm:kernel-core"]
    key = out.items["pkg:rpm:gpg-pubkey:unknown"]  # arch "(none)", one key installed
    assert "arch" not in key.attributes and "vendor" not in key.attributes


def test_refs_stay_valid_and_purls_encoded():
    out = _collect(os_release='ID="rhel"\n')
    lib = out.items["pkg:rpm:libstdc++:i686"]
    assert lib.attributes["purl"] == "pkg:rpm/redhat/libstdc%2B%2B@11.2.1~rc-1.fc35?arch=i686"
    assert out.items["sw:rpm:libstdc++"].identifiers == {"purl": "pkg:rpm/redhat/libstdc%2B%2B"}


def test_not_enabled_without_an_rpm_database():
    ctx = RecordedContext(commands={tuple(RPM_QUERY): ""})
    assert not RpmCollector().is_enabled(ctx)
    assert rpm_install_purl(None, parse_rpm_qa("a\tnoarch\t1-2\t0\t0\t(none)\tx\ty\n")[0]) == "pkg:rpm/a@1-2?arch=noarch"
