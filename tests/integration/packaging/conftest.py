"""The single-file agent and the .deb, built once per session by the scripts behind `make agent-pyz`
and `make deb`, and the environment an operator's shell would give the installed agent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = Path("/usr/bin/python3")
TARGET_PYTHON = (3, 11)  # the bundled C extensions are cp311 (Debian 12)


def run_build(script: str, *args: str) -> float:
    """Run packaging/<script> as the Makefile does; return its wall time in seconds."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "packaging" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return time.monotonic() - start


def clean_env(**extra: str) -> dict[str, str]:
    """No venv, no PYTHONPATH, no FLEETGRAPH_* of the test run: what a root shell has."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def system_python_or_skip() -> Path:
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} is missing: the pyz targets Debian 12's system Python")
    out = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.split()
    if tuple(map(int, out)) != TARGET_PYTHON:
        pytest.skip(f"{SYSTEM_PYTHON} is {'.'.join(out)}; the pyz bundles extensions for "
                    f"{'.'.join(map(str, TARGET_PYTHON))}")
    return SYSTEM_PYTHON


@pytest.fixture(scope="session")
def built_pyz(tmp_path_factory) -> Path:
    pyz = tmp_path_factory.mktemp("pyz") / "fleetgraph-agent.pyz"
    run_build("build_pyz.py", "--output", str(pyz))
    return pyz


@pytest.fixture(scope="session")
def built_deb(built_pyz, tmp_path_factory) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is missing: not a Debian machine")
    outdir = tmp_path_factory.mktemp("deb")
    run_build("build_deb.py", "--pyz", str(built_pyz), "--outdir", str(outdir))
    debs = sorted(outdir.glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]
