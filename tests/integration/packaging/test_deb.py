"""The Debian package: what dpkg-deb says is in it, then its real life on this machine: dpkg -i,
the installed agent reporting to a real collector, the unit checked by systemd-analyze, a reinstall
that keeps local changes, and dpkg --purge leaving nothing behind.

The install tests need root and touch the machine's dpkg database; they clean up even when they
fail, and they leave alone a fleetgraph-agent that these tests did not install.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from cmdb.config import AgentConfig, load_config
from cmdb.report import decode_report

from ..lab import Collector
from .conftest import REPO, clean_env, system_python_or_skip

PACKAGE = "fleetgraph-agent"
WRAPPER = Path("/usr/bin/fleetgraph-agent")
PYZ = Path("/usr/lib/fleetgraph-agent/fleetgraph-agent.pyz")
CONFFILE = Path("/etc/fleetgraph/agent.toml")
UNIT = Path("/lib/systemd/system/fleetgraph-agent.service")
STATE_DIR = Path("/var/lib/fleetgraph-agent")
CACHE_DIR = Path("/var/cache/fleetgraph-agent")
ENABLED_LINK = Path("/etc/systemd/system/multi-user.target.wants/fleetgraph-agent.service")
MASK_LINK = Path("/etc/systemd/system/fleetgraph-agent.service")
# Written into the state dir after our dpkg -i: a later run knows a leftover install is its own.
MARKER = STATE_DIR / ".installed-by-fleetgraph-tests"

EXPECTED_FILES = {  # path in the package: mode
    "./usr/bin/fleetgraph-agent": 0o755,
    "./usr/lib/fleetgraph-agent/fleetgraph-agent.pyz": 0o644,
    "./etc/fleetgraph/agent.toml": 0o644,
    "./lib/systemd/system/fleetgraph-agent.service": 0o644,
    "./usr/share/doc/fleetgraph-agent/copyright": 0o644,
    "./usr/share/doc/fleetgraph-agent/changelog.gz": 0o644,
    "./usr/share/man/man1/fleetgraph-agent.1.gz": 0o644,
}


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def control_fields(deb: Path) -> dict[str, str]:
    text = sh("dpkg-deb", "-f", str(deb)).stdout
    return {m[1]: m[2].strip() for m in re.finditer(r"^(\S+): (.*(?:\n .*)*)", text, re.M)}


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


# ---- the package file, no root needed -------------------------------------------------------

def test_deb_control_fields_and_conffiles(built_deb):
    arch = sh("dpkg", "--print-architecture").stdout.strip()
    assert built_deb.name == f"{PACKAGE}_{project_version()}_{arch}.deb"
    fields = control_fields(built_deb)
    assert fields["Package"] == PACKAGE and fields["Version"] == project_version()
    assert fields["Architecture"] == arch
    assert fields["Depends"] == "python3 (>= 3.11), python3 (<< 3.12)"
    assert re.fullmatch(r".+ <[^@\s]+@[^@\s]+>", fields["Maintainer"])
    assert fields["Description"].startswith("fleetgraph inventory agent")
    assert int(fields["Installed-Size"]) > 100
    control = sh("dpkg-deb", "-I", str(built_deb)).stdout
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(rf"\*\s+{script}\s+#!/bin/sh", control), f"{script} missing or not executable"
    assert sh("dpkg-deb", "-I", str(built_deb), "conffiles").stdout.split() == [str(CONFFILE)]


def test_deb_files_modes_and_owners(built_deb):
    listing = {}
    for line in sh("dpkg-deb", "-c", str(built_deb)).stdout.splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        listing[path] = (perms, owner)
    files = {p: perms for p, (perms, _) in listing.items() if perms.startswith("-")}
    assert set(files) == set(EXPECTED_FILES)
    for path, mode in EXPECTED_FILES.items():
        assert files[path] == stat.filemode(stat.S_IFREG | mode), path
    assert {owner for _, owner in listing.values()} == {"root/root"}


def test_deb_maintainer_scripts_are_valid_sh_and_filled_in(built_deb, tmp_path):
    sh("dpkg-deb", "-e", str(built_deb), str(tmp_path / "DEBIAN"))
    for script in ("postinst", "prerm", "postrm"):
        sh("sh", "-n", str(tmp_path / "DEBIAN" / script))
        assert "@" not in (tmp_path / "DEBIAN" / script).read_text().replace("$@", ""), script
    assert re.search(r"^EXTRACTED=fleetgraph-agent\.pyz_[0-9a-f]{64}$",
                     (tmp_path / "DEBIAN" / "postinst").read_text(), re.M)


def test_deb_conffile_documents_every_agent_option_and_loads(built_deb, tmp_path):
    sh("dpkg-deb", "-x", str(built_deb), str(tmp_path))
    text = (tmp_path / "etc/fleetgraph/agent.toml").read_text()
    assert tomllib.loads(text) == {"agent": {"state_dir": str(STATE_DIR)}}
    documented = set(re.findall(r"^#? ?([a-z_]+) =", text, re.M))
    secrets = {"token", "enroll_token"}
    assert documented == {f for f in AgentConfig.__dataclass_fields__} - secrets
    config = load_config(tmp_path / "etc/fleetgraph/agent.toml", env={})
    assert config.agent.state_dir == str(STATE_DIR)


# ---- installed on this machine --------------------------------------------------------------

@dataclass
class Installation:
    deb: Path
    etc_existed: bool


def package_status() -> str:
    """dpkg's abbreviated status ("ii ", "rc ") or "" when dpkg does not know the package."""
    proc = sh("dpkg-query", "-W", "-f=${db:Status-Abbrev}", PACKAGE, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def purge() -> None:
    sh("dpkg", "--purge", PACKAGE, check=False)


@pytest.fixture(scope="module")
def installed(built_deb, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("installing the .deb needs root")
    system_python_or_skip()
    status = package_status()
    if status.strip() not in ("", "un", "pn"):
        if not MARKER.exists():
            pytest.skip(f"{PACKAGE} is installed on this machine (dpkg status {status.strip()!r}) and not by "
                        "these tests: left alone")
        purge()  # a leftover of an interrupted run of these tests
    # Files of a fleetgraph agent run by hand as root (no package): moved aside, put back after.
    aside = tmp_path_factory.mktemp("aside")
    moved = [p for p in (STATE_DIR, CACHE_DIR, CONFFILE) if p.exists()]
    for path in moved:
        shutil.move(path, aside / path.name)
    etc_existed = CONFFILE.parent.exists()
    try:
        sh("dpkg", "-i", str(built_deb))
        MARKER.touch()
        yield Installation(built_deb, etc_existed)
    finally:
        purge()
        for path in moved:
            shutil.move(aside / path.name, path)


def test_installed_files_and_permissions(installed):
    assert package_status() == "ii "
    for path, mode in ((WRAPPER, 0o755), (PYZ, 0o644), (CONFFILE, 0o644), (UNIT, 0o644)):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, 0, 0), path
    st = STATE_DIR.stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0
    # postinst unpacked the zipapp for everyone: one extraction, of this build
    extracted = list(CACHE_DIR.glob("fleetgraph-agent.pyz_*/site-packages"))
    assert len(extracted) == 1 and stat.S_IMODE(extracted[0].stat().st_mode) == 0o755
    if shutil.which("deb-systemd-helper"):
        assert ENABLED_LINK.is_symlink() and os.readlink(ENABLED_LINK) == str(UNIT)


def test_installed_agent_reports_to_a_real_collector(installed, tmp_path):
    collector = Collector(tmp_path / "cmdb.sqlite").start()
    try:
        token = collector.token("agent", "deb-agent")
        reader = collector.token("reader", "deb-reader")
        sh(str(WRAPPER), "agent", "run", "--once", "--server", collector.url, cwd="/",
                 env=clean_env(FLEETGRAPH_AGENT_TOKEN=token))
        collector.wait_reconciled()
        status, computers = collector.get("/api/v1/cis?class=Computer", reader)
        assert status == 200 and len(computers["items"]) == 1, computers
    finally:
        assert collector.stop() == 0, "".join(collector.log)
    # the packaged config put the agent's state where the unit lets it write
    assert [p for p in STATE_DIR.iterdir() if p != MARKER]


def test_installed_agent_runs_for_users_other_than_root(installed):
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing")
    out = sh("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(WRAPPER), "config", "show",
             cwd="/", env=clean_env())
    assert f'"source": "{CONFFILE}"' in out.stdout


def unit_capabilities() -> list[str]:
    line = re.search(r"^CapabilityBoundingSet=(.*)$", UNIT.read_text(), re.M).group(1)
    return line.split()


def test_agent_collects_as_much_within_the_units_capability_bounding_set(installed, tmp_path):
    """The unit keeps only a few capabilities: emulate that with setpriv and compare with full root."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing")
    bounding = ",".join(["-all"] + [f"+{c.removeprefix('CAP_').lower()}" for c in unit_capabilities()])
    restricted = ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", "--no-new-privs"]
    probe = sh(*restricted, "grep", "CapBnd", "/proc/self/status", check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.strip()}")
    reports = []
    for prefix in ([], restricted):
        out = sh(*prefix, str(WRAPPER), "agent", "run", "--once", "--dry-run",
                 "--state-dir", str(tmp_path / "state"), cwd="/", env=clean_env())
        reports.append(decode_report(out.stdout.encode()))
    full, limited = reports
    assert {n: s.status for n, s in limited.collectors.items()} == {n: s.status for n, s in full.collectors.items()}
    computer = [sorted(next(i for i in r.items if i.class_ == "Computer").attributes) for r in reports]
    assert computer[0] == computer[1]


def test_unit_passes_systemd_analyze(installed):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is missing")
    verify = sh("systemd-analyze", "verify", str(UNIT), check=False)
    ours = [line for line in (verify.stdout + verify.stderr).splitlines() if PACKAGE in line]
    assert ours == [], "\n".join(ours)
    security = sh("systemd-analyze", "security", "--offline=yes", str(UNIT), check=False)
    if security.returncode != 0 and "offline" in security.stderr:
        return  # systemd < 250
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout).group(1))
    assert exposure <= 3.0, security.stdout


def test_reinstall_keeps_local_config_and_agent_state(installed):
    local = CONFFILE.read_text().replace('# timeout = 30.0', 'timeout = 12.5')
    CONFFILE.write_text(local)
    state_before = sorted(p.name for p in STATE_DIR.iterdir())
    sh("dpkg", "-i", "--force-confold", str(installed.deb))
    assert CONFFILE.read_text() == local
    assert sorted(p.name for p in STATE_DIR.iterdir()) == state_before
    assert len(list(CACHE_DIR.glob("fleetgraph-agent.pyz_*"))) == 1
    out = sh(str(WRAPPER), "config", "show", cwd="/", env=clean_env())
    assert '"timeout": 12.5' in out.stdout


def test_purge_leaves_nothing_behind(installed):
    sh("dpkg", "--purge", PACKAGE)
    assert package_status().strip() in ("", "un", "pn")
    left = [p for p in (WRAPPER, PYZ.parent, CONFFILE, UNIT, STATE_DIR, CACHE_DIR, ENABLED_LINK, MASK_LINK,
                        Path("/usr/share/doc/fleetgraph-agent"), Path("/usr/share/man/man1/fleetgraph-agent.1.gz"))
            if p.exists() or p.is_symlink()]
    assert left == []
    assert CONFFILE.parent.exists() == installed.etc_existed
    helper_state = [p for d in Path("/var/lib/systemd").glob("deb-systemd-helper-*") for p in d.rglob("*")
                    if PACKAGE in p.name]
    assert helper_state == []
