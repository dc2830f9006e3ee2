"""The single-file agent: what it holds, and that Debian 12's /usr/bin/python3 runs it from
anywhere, with no venv and no source tree."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
import zipfile

from cmdb.report import decode_report

from .conftest import REPO, clean_env, system_python_or_skip

LEFT_OUT = ("collector/", "reconcile/", "discovery/", "packaging/", "tests/", "networkx/", "aiohttp/",
            "cmdb/backends/", "cmdb/cli_ci.py", "cmdb/graph.py", "cmdb/store.py", "psutil/tests/")


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_pyz_holds_the_agent_and_its_target_wheels_only(built_pyz):
    with zipfile.ZipFile(built_pyz) as zf:
        names = zf.namelist()
        env = json.loads(zf.read("environment.json"))
    inside = [n.removeprefix("site-packages/") for n in names if n.startswith("site-packages/")]
    for wanted in ("agent/__init__.py", "agent/cli.py", "agent/runner.py", "cmdb/cli.py", "cmdb/config.py",
                   "cmdb/report.py", "psutil/__init__.py", "msgspec/__init__.py",
                   f"fleetgraph-{project_version()}.dist-info/METADATA"):
        assert wanted in inside, wanted
    for gone in LEFT_OUT:
        assert not any(n.startswith(gone) for n in inside), f"{gone} should not be in the pyz"
    extensions = [n for n in inside if n.endswith(".so")]
    assert any(re.search(r"msgspec/_core\.cpython-311-(x86_64|aarch64)-linux-gnu\.so$", n) for n in extensions)
    assert any(n.startswith("psutil/_psutil_linux") for n in extensions)
    assert env["entry_point"] == "cmdb.cli:main"
    assert built_pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert built_pyz.stat().st_size < 2_000_000


def test_pyz_lists_only_the_agent_and_config_commands(built_pyz, tmp_path):
    python = system_python_or_skip()
    env = clean_env(SHIV_ROOT=str(tmp_path / "shiv"))
    timings = []
    for _ in range(2):  # the first run extracts, the second finds the extraction
        start = time.monotonic()
        out = subprocess.run([str(python), str(built_pyz), "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        timings.append(time.monotonic() - start)
        assert out.returncode == 0, out.stderr
    bad = subprocess.run([str(python), str(built_pyz), "no-such-command"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    choices = re.search(r"choose from (.*)\)", bad.stderr).group(1)
    assert re.findall(r"'([a-z-]+)'", choices) == ["agent", "config"], bad.stderr
    print(f"pyz --help: cold {timings[0]:.2f}s, warm {timings[1]:.2f}s")
    assert list((tmp_path / "shiv").glob("fleetgraph-agent.pyz_*/site-packages/msgspec"))


def test_pyz_dry_run_prints_a_valid_report(built_pyz, tmp_path):
    python = system_python_or_skip()
    empty_config = tmp_path / "agent.toml"
    empty_config.write_text("[agent]\n")
    out = subprocess.run([str(python), "-I", str(built_pyz), "--config", str(empty_config), "agent", "run",
                          "--once", "--dry-run", "--state-dir", str(tmp_path / "state")],
                         cwd=tmp_path, env=clean_env(SHIV_ROOT=str(tmp_path / "shiv")),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = decode_report(out.stdout.encode())
    assert report.source.kind == "agent"
    assert report.source.version == project_version()  # the pyz's own dist-info answers
    assert {s.status for s in report.collectors.values()} <= {"ok", "not_applicable"}, report.collectors
    assert [i.class_ for i in report.items].count("Computer") == 1
    assert any(p.name for p in (tmp_path / "state").iterdir()), "the agent id was not stored"
