"""Licenses: DEP-5 copyright files to SPDX (real files of this machine's packages), FlexLM license
files (hand-made fixtures, see tests/fixtures/licenses/README.md), and both collectors."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from agent.builder import build_report
from agent.collectors.licenses import (
    DpkgLicensesCollector,
    FlexlmCollector,
    expand_path_pattern,
    find_license_files,
    installed_packages,
)
from agent.collectors.software.dpkg import DpkgCollector
from agent.context import MAX_FILE_BYTES, LocalContext
from agent.parsers.flexlm import (
    MAX_LICENSE_FILE_CHARS,
    LicenseFileRefused,
    keyed_entitlements,
    logical_lines,
    parse_date,
    parse_license_file,
)
from agent.parsers.spdx import declared_license, parse_license_expression, spdx_id
from cmdb.report import check_report
from tests.unit.agent.conftest import RecordedContext

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "licenses"
DEP5_CASES = sorted(p for p in (FIXTURES / "dep5").iterdir() if p.is_dir())
FLEXLM_CASES = sorted(p for p in (FIXTURES / "flexlm").iterdir() if p.is_dir())
AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000001"
DEP5_HEADER = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n"


# -- DEP-5 to SPDX -------------------------------------------------------------------------------

@pytest.mark.parametrize("case", DEP5_CASES, ids=lambda p: p.name)
def test_real_copyright_files(case):
    expected = json.loads((case / "expected.json").read_text())
    assert declared_license((case / "copyright").read_text()) == expected["license"]
    assert declared_license((case / "copyright").read_bytes()) == expected["license"]  # as the agent reads it


@pytest.mark.parametrize("name,spdx", [
    ("GPL-2+", "GPL-2.0-or-later"), ("GPL-2", "GPL-2.0-only"), ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("Expat", "MIT"), ("BSD-3-clause", "BSD-3-Clause"), ("Apache-2.0", "Apache-2.0"),
    ("public-domain", "LicenseRef-public-domain"), ("OldBoost2", "LicenseRef-OldBoost2"),
    ("GPLv3+", "GPL-3.0-or-later"), ("GPL-2.0+", "GPL-2.0-or-later"), ("GPL-3.0-or-later", "GPL-3.0-or-later"),
    ("GPL", "GPL-1.0-only"),  # the format: an omitted version is the lowest one
    ("LGPL-2", "LGPL-2.0-only"), ("AGPL-3+", "AGPL-3.0-or-later"), ("Apache-2", "Apache-2.0"),
    ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"), ("CC0", "CC0-1.0"), ("zlib", "Zlib"),
    ("OpenLDAP-2.8", "OLDAP-2.8"), ("GAP~FSF", "LicenseRef-GAP-FSF"), ("GPL-7", "LicenseRef-GPL-7"),
    ("Permission is hereby granted", "LicenseRef-unknown"), ("", "LicenseRef-unknown"),
])
def test_debian_names_to_spdx(name, spdx):
    assert spdx_id(name) == spdx


@pytest.mark.parametrize("line,expression", [
    ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0-Perl"),
    ("GPL-2+ or BSD-3-clause and MIT", "GPL-2.0-or-later OR (BSD-3-Clause AND MIT)"),  # and binds tighter
    ("GPL-2+ or BSD-3-clause, and MIT", "(GPL-2.0-or-later OR BSD-3-Clause) AND MIT"),  # unless after a comma
    ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
    ("Perl and Expat", "(Artistic-1.0-Perl OR GPL-1.0-or-later) AND MIT"),
    ("LGPLv3+_or_GPLv2+", "LGPL-3.0-or-later OR GPL-2.0-or-later"),
    ("GPL-2+ with Autoconf exception", "GPL-2.0-or-later WITH Autoconf-exception-generic"),
    ("GPL-2+ with OpenSSL exception", "GPL-2.0-or-later WITH AdditionRef-OpenSSL-exception"),
    ("GPL-3+ with Frobnication exception", "GPL-3.0-or-later WITH AdditionRef-Frobnication-exception"),
    ("MIT or MIT", "MIT"),
])
def test_license_field_expressions(line, expression):
    assert parse_license_expression(line).render() == expression


def test_files_star_paragraph_comes_first_and_licenses_are_distinct():
    text = DEP5_HEADER + (
        "Files: debian/*\nCopyright: 2020 a\nLicense: GPL-2+\n\n"
        "Files: *\nCopyright: 2019 b\nLicense: Expat\n\n"
        "Files: lib/*\nCopyright: 2019 c\nLicense: GPL-2+ or Artistic\n\n"
        "Files: src/x.c\nCopyright: 2019 d\nLicense: GPL-2+\n\n"
        "License: GPL-2+\n This program is free software...\n")
    assert declared_license(text) == "MIT AND GPL-2.0-or-later AND (GPL-2.0-or-later OR Artistic-1.0-Perl)"


def test_crlf_and_header_only_license():
    assert declared_license((DEP5_HEADER + "Files: *\nLicense: ISC\n").replace("\n", "\r\n")) == "ISC"
    header_only = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nLicense: MIT\n"
    assert declared_license(header_only) == "MIT"


def test_paragraph_rules_of_the_byte_scan():
    # A License line belongs to the Files paragraph it is in; a blank line ends a paragraph; a
    # second Files line inside a paragraph opens nothing; fields are case-sensitive.
    text = (DEP5_HEADER + "Files: a/*\nCopyright: x\n\nLicense: MIT\n\n"
            "Files: b/*\nLicense: ISC\nFiles: c/*\nLicense: Zlib\n\n"
            "files: *\nLicense: BSL-1.0\n\nFiles: *\nCopyright: y\nLicense: GPL-2+\n")
    assert declared_license(text) == "GPL-2.0-or-later AND ISC"
    assert declared_license(text.encode()) == declared_license(text)


def test_header_is_read_as_characters_not_bytes():
    # The header scan covers 4096 characters; in UTF-8 they may take three times as many bytes.
    long_header = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n" + \
        "Comment: " + "é" * 3000 + "\n\nFiles: *\nLicense: MIT\n"
    assert declared_license(long_header.encode()) == declared_license(long_header) == "MIT"
    late_format = "Comment: " + "€" * 1500 + "\nFormat: dep5\n\nFiles: *\nLicense: MIT\n"
    assert declared_license(late_format.encode()) == declared_license(late_format) == "MIT"
    crlf = ("Comment: " + "€" * 1500 + "\nFormat: dep5\n\nFiles: *\nLicense: MIT\n").replace("\n", "\r\n")
    assert declared_license(crlf.encode()) == declared_license(crlf) == "MIT"


@pytest.mark.parametrize("text", [
    "This package was debianized by someone.\n\nLicense: GPL-2+\n",  # free text
    "Files: *\nLicense: MIT\n",  # no Format line
    "",
])
def test_not_machine_readable_means_no_license(text):
    assert declared_license(text) is None


# -- licenses.dpkg ---------------------------------------------------------------------------------

STATUS = """Package: zlib1g
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 1:1.2.13.dfsg-1

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9

Package: vlc-nox
Status: deinstall ok config-files
Architecture: amd64
Version: 3.0.2

Package: libssl3
Status: install ok installed
Architecture: amd64
Version: 3.0.19-1~deb12u2
"""


def _recorded_dpkg_host() -> RecordedContext:
    files = {"/var/lib/dpkg/status": STATUS}
    for pkg in ("zlib1g", "libc6", "libssl3"):
        files[f"/usr/share/doc/{pkg}/copyright"] = (FIXTURES / "dep5" / pkg / "copyright").read_text()
    files["/usr/share/doc/vlc-nox/copyright"] = DEP5_HEADER + "Files: *\nLicense: GPL-2+\n"
    return RecordedContext(files=files)


def test_installed_packages_of_the_status_file():
    assert installed_packages(STATUS) == [("zlib1g", "amd64", "1:1.2.13.dfsg-1"), ("libc6", "amd64", "2.36-9"),
                                          ("libssl3", "amd64", "3.0.19-1~deb12u2")]


def test_dpkg_licenses_join_the_dpkg_items():
    out = DpkgLicensesCollector().collect(_recorded_dpkg_host())
    assert {ref: (i.class_, i.identifiers, i.attributes) for ref, i in out.items.items()} == {
        "pkg:deb:zlib1g:amd64": ("SoftwareInstall", {"package": "deb:zlib1g:amd64"}, {"license": "Zlib"}),
        "pkg:deb:libssl3:amd64": ("SoftwareInstall", {"package": "deb:libssl3:amd64"},
                                  {"license": "Apache-2.0 AND (Artistic-1.0-Perl OR GPL-1.0-or-later)"}),
    }  # libc6: free-text copyright, no license; vlc-nox: not installed
    assert sorted(out.relations) == [("pkg:deb:libssl3:amd64", "INSTALLED_ON", "computer"),
                                     ("pkg:deb:zlib1g:amd64", "INSTALLED_ON", "computer")]
    report = build_report(_recorded_dpkg_host(), [DpkgLicensesCollector()])
    assert report.collectors["licenses.dpkg"].status == "ok"
    check_report(report)


def test_dpkg_licenses_not_applicable_without_dpkg():
    report = build_report(RecordedContext(files={"/etc/os-release": "ID=alpine\n"}), [DpkgLicensesCollector()])
    assert report.collectors["licenses.dpkg"].status == "not_applicable"


class CountingContext(LocalContext):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.reads: list[str] = []

    def read_file(self, path: str) -> str | None:
        self.reads.append(path)
        return super().read_file(path)

    def read_bytes(self, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        self.reads.append(path)
        return super().read_bytes(path, limit)


def test_on_this_machine_licenses_merge_into_dpkg_items():
    ctx = LocalContext(agent_id=AGENT_ID)
    collector = DpkgLicensesCollector()
    start = time.perf_counter()
    contribution = collector.collect(ctx)
    elapsed = time.perf_counter() - start
    print(f"licenses.dpkg on this machine: {len(contribution.items)} packages with a license, {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0  # ~80-110 ms here for ~800 packages; this catches a pathological parse only
    report = build_report(ctx, [DpkgCollector(), collector])
    assert {n: s.status for n, s in report.collectors.items()} == {"software.dpkg": "ok", "licenses.dpkg": "ok"}
    check_report(report)
    installs = {i.ref: i for i in report.items if i.class_ == "SoftwareInstall"}
    assert set(contribution.items) <= set(installs)  # never an item dpkg does not report
    licensed = [i for i in installs.values() if "license" in i.attributes]
    assert len(licensed) == len(contribution.items) > len(installs) // 2
    assert all(i.collector == "software.dpkg" and "version" in i.attributes for i in licensed)
    bash = next(i for i in installs.values() if i.attributes.get("name") == "bash")
    assert "GPL-3.0-or-later" in bash.attributes["license"]


def test_a_second_run_reads_only_what_changed():
    collector = DpkgLicensesCollector()
    first = CountingContext(agent_id=AGENT_ID)
    collector.collect(first)
    second = CountingContext(agent_id=AGENT_ID)
    assert collector.collect(second).items.keys() == collector.collect(first).items.keys()
    assert second.reads == ["/var/lib/dpkg/status"]


# -- FlexLM ------------------------------------------------------------------------------------------

def _entitlement_doc(key, e) -> dict:
    return {"license_key": key, "kind": e.kind, "feature": e.feature, "vendor": e.vendor, "version": e.version,
            "expiry": e.expiry.isoformat() if e.expiry else None, "count": e.count, "uncounted": e.uncounted,
            "host_id": e.host_id, "issued": e.issued.isoformat() if e.issued else None}


@pytest.mark.parametrize("case", FLEXLM_CASES, ids=lambda p: p.name)
def test_flexlm_fixtures(case):
    expected = json.loads((case / "expected.json").read_text())
    parsed = parse_license_file((case / expected["file"]).read_text())
    assert [[s.host, s.hostid, s.port] for s in parsed.servers] == expected["servers"]
    assert [[v.name, v.path, v.port] for v in parsed.vendors] == expected["vendors"]
    assert parsed.use_server == expected["use_server"]
    assert [int(n.split(":")[0].split()[1]) for n in parsed.notes] == expected["skipped_lines"]
    assert [_entitlement_doc(k, e) for k, e in keyed_entitlements(parsed)] == expected["entitlements"]


@pytest.mark.parametrize("text,expected", [
    ("permanent", None), ("0", None), ("1-jan-0", None), ("1-jan-00", None), ("1-jan-0000", None),
    ("31-dec-2025", date(2025, 12, 31)), ("1-JAN-2030", date(2030, 1, 1)), ("15-jun-99", date(1999, 6, 15)),
])
def test_flexlm_dates(text, expected):
    assert parse_date(text) == expected


def test_continuations_and_comments():
    text = "# comment\nFEATURE f v 1.0 \\\n\tpermanent \\\n  uncounted HOSTID=ANY\n\n  # indented comment\nUSE_SERVER"
    assert logical_lines(text) == [(2, "FEATURE f v 1.0 permanent uncounted HOSTID=ANY"), (7, "USE_SERVER")]


def test_the_key_ignores_the_signature_and_follows_the_server():
    base = "SERVER s 001122334455 27000\nINCREMENT f v 1.0 31-dec-2026 5 SIGN=\"{}\"\n"
    key_of = lambda text: keyed_entitlements(parse_license_file(text))[0][0]  # noqa: E731
    assert key_of(base.format("AAAA")) == key_of(base.format("BBBB"))
    assert key_of(base.format("AAAA")) != key_of(base.replace("001122334455", "001122334466").format("AAAA"))


def test_huge_and_binary_files_are_refused():
    with pytest.raises(LicenseFileRefused, match="larger"):
        parse_license_file("# x\n" * (MAX_LICENSE_FILE_CHARS // 4 + 1))
    with pytest.raises(LicenseFileRefused, match="binary"):
        parse_license_file("FEATURE f v 1.0 permanent uncounted\n\x00\x01\x02")


def _flexlm_host() -> RecordedContext:
    files = {"/proc/sys/kernel/hostname": "licsrv01\n", "/sys/class/net/eth0/address": "00:50:56:9a:1b:2c\n"}
    for case, where in (("matlab-network", "/opt/matlab/license.dat"),
                        ("client-copy", "/etc/flexlm/synopsys.lic"),
                        ("nodelocked-uncounted", "/usr/local/flexlm/licenses/ansys.lic"),
                        ("malformed-lines", "/etc/flexlm/cad.dat")):
        files[where] = (FIXTURES / "flexlm" / case / next(
            p.name for p in (FIXTURES / "flexlm" / case).iterdir() if p.name != "expected.json")).read_text()
    files["/opt/matlab/licenses.txt"] = "These are the license terms of MATLAB. Not a license file.\n"
    files["/opt/matlab/license.bin"] = "FEATURE\x00\x00\x00"
    files["/opt/other/README"] = "nothing here"
    return RecordedContext(files=files)


def test_glob_expansion_through_the_context():
    ctx = _flexlm_host()
    assert expand_path_pattern(ctx, "/opt/*/license*") == [
        "/opt/matlab/license.bin", "/opt/matlab/license.dat", "/opt/matlab/licenses.txt"]
    assert find_license_files(ctx, ["/etc/flexlm", "/opt/*/license*"]) == [
        "/etc/flexlm/cad.dat", "/etc/flexlm/synopsys.lic",
        "/opt/matlab/license.bin", "/opt/matlab/license.dat", "/opt/matlab/licenses.txt"]
    assert find_license_files(ctx, ["relative/*", "/nowhere/*"]) == []


def test_flexlm_collector_on_a_recorded_host():
    ctx = _flexlm_host()
    report = build_report(ctx, [FlexlmCollector()])
    assert report.collectors["licenses.flexlm"].status == "ok"
    check_report(report)
    entitlements = {i.attributes["feature"]: i for i in report.items if i.class_ == "LicenseEntitlement"}
    assert set(entitlements) == {"MATLAB", "SIMULINK", "Signal_Toolbox", "vcs", "ansys_pro", "ansys_struct",
                                 "legacy_viewer", "demo_tool", "cad_base", "cad_export"}
    served = {rel.from_ for rel in report.relations if rel.type == "SERVED_BY" and rel.to == "computer"}
    by_ref = {i.ref: i.attributes["feature"] for i in entitlements.values()}
    # licsrv01 (hostname and MAC) serves MATLAB; node-locked files are served here; the client copy
    # (flexsrv02) and the file of flexsrv are not.
    assert sorted(by_ref[r] for r in served) == sorted(
        ["MATLAB", "SIMULINK", "Signal_Toolbox", "ansys_pro", "ansys_struct", "legacy_viewer", "demo_tool"])
    matlab = entitlements["MATLAB"].attributes
    assert matlab == {
        "feature": "MATLAB", "vendor_daemon": "MLM", "version": "44", "kind": "increment", "expiry": "2026-03-31",
        "count": 25, "uncounted": False, "host_id": "ANY", "vendor_string": "vi=30:at=187:pd=1:lo=CN:lu=200:ei=40612345:",
        "issued": "2025-04-01", "server_host": "licsrv01.example.com", "server_hostid": "0050569A1B2C",
        "server_port": 27000, "vendor_daemon_port": 27010, "source_file": "/opt/matlab/license.dat"}
    assert entitlements["ansys_struct"].attributes["uncounted"] is True
    assert "count" not in entitlements["ansys_struct"].attributes and "expiry" not in entitlements["ansys_struct"].attributes
    assert entitlements["MATLAB"].identifiers == {"license_key": entitlements["MATLAB"].ref.removeprefix("lic:")}
    assert all("SIGN" not in json.dumps(i.attributes) for i in entitlements.values())


def test_flexlm_not_applicable_without_license_files():
    report = build_report(RecordedContext(files={"/opt/app/README": "x"}), [FlexlmCollector()])
    assert report.collectors["licenses.flexlm"].status == "not_applicable"


def test_flexlm_configured_paths(tmp_path):
    (tmp_path / "licenses").mkdir()
    (tmp_path / "licenses" / "server.lic").write_text(
        (FIXTURES / "flexlm" / "redundant-triad" / "license.dat").read_text())
    ctx = LocalContext(agent_id=AGENT_ID)
    collector = FlexlmCollector([f"{tmp_path}/lic*"])
    assert collector.is_enabled(ctx)
    out = collector.collect(ctx)
    assert sorted(i.attributes["feature"] for i in out.items.values()) == ["Spectre", "Virtuoso_Schematic_Editor_L"]
    assert {i.attributes["server_host"] for i in out.items.values()} == {"lic-a"}


def test_license_paths_option(tmp_path):
    from agent.collectors import COLLECTORS, configured_collectors
    from cmdb.cli import build_parser, overrides_from
    from cmdb.config import DEFAULT_LICENSE_PATHS, ConfigError, load_config

    assert load_config(env={}).agent.license_paths == DEFAULT_LICENSE_PATHS
    assert load_config(env={"FLEETGRAPH_AGENT_LICENSE_PATHS": "/a, /b/*.lic"}).agent.license_paths == ("/a", "/b/*.lic")
    path = tmp_path / "c.toml"
    path.write_text('[agent]\nlicense_paths = ["/srv/flexlm"]\n')
    assert load_config(path, env={}).agent.license_paths == ("/srv/flexlm",)
    path.write_text("[agent]\nlicense_paths = 3\n")
    with pytest.raises(ConfigError, match="agent.license_paths: expected"):
        load_config(path, env={})
    args = build_parser().parse_args(["agent", "run", "--dry-run", "--license-path", "/x", "--license-path", "/y/*"])
    paths = load_config(env={}, overrides=overrides_from(args)).agent.license_paths
    assert paths == ("/x", "/y/*")
    collectors = configured_collectors(paths)
    flexlm = next(c for c in collectors if c.name == "licenses.flexlm")
    assert flexlm.paths == ("/x", "/y/*")
    assert [c for c in collectors if c.name != "licenses.flexlm"] == [c for c in COLLECTORS if c.name != "licenses.flexlm"]
