"""apk: a hand-made Alpine database (tests/fixtures/host/handmade/apk, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.collectors.software.apk import APK_INSTALLED, ApkCollector, apk_install_purl, parse_apk_installed
from agent.collectors.software.purl import iso_utc
from tests.unit.agent.conftest import RecordedContext

APK = Path(__file__).resolve().parents[2] / "fixtures" / "host" / "handmade" / "apk"
TEXT = (APK / "installed-alpine-3.19").read_text(encoding="utf-8")
EXPECTED = json.loads((APK / "expected.json").read_text(encoding="utf-8"))["expected"]["packages"]


def test_parser_matches_the_expected_values():
    packages = parse_apk_installed(TEXT)
    assert len(packages) == len(EXPECTED)
    for pkg, exp in zip(packages, EXPECTED, strict=True):
        ours = {"name": pkg.name, "version": pkg.version, "arch": pkg.arch, "size_bytes": pkg.size_bytes,
                "license": pkg.license, "origin": pkg.origin, "maintainer": pkg.maintainer,
                "build_date": iso_utc(pkg.build_time), "purl": apk_install_purl("alpine", pkg)}
        assert ours == exp


def test_collector():
    ctx = RecordedContext(files={APK_INSTALLED: TEXT, "/etc/os-release": "ID=alpine\nVERSION_ID=3.19.1\n"})
    assert ApkCollector().is_enabled(ctx)
    out = ApkCollector().collect(ctx)
    lib = out.items["pkg:apk:libstdc++:x86_64"]
    assert lib.identifiers == {"package": "apk:libstdc++:x86_64"}
    assert lib.attributes["license"] == "GPL-2.0-or-later AND LGPL-2.1-or-later"
    assert "install_date" not in lib.attributes  # apk records none; build_date is not one
    assert out.items["sw:apk:libstdc++"].identifiers == {"purl": "pkg:apk/alpine/libstdc%2B%2B"}
    assert out.items["sw:apk:libstdc++"].attributes["origin"] == "gcc"
    assert ("pkg:apk:busybox:x86_64", "INSTALLED_ON", "computer") in out.relations
    assert not ApkCollector().is_enabled(RecordedContext())


def test_blocks_without_name_or_version_and_crlf():
    assert parse_apk_installed("P:x\n\nV:1\n\n") == []
    assert [p.name for p in parse_apk_installed("P:a\r\nV:1-r0\r\nA:aarch64\r\n\r\nP:b\nV:2-r1\n")] == ["a", "b"]
