"""Build the single-file agent: dist/fleetgraph-agent.pyz, a shiv zipapp.

    .venv/bin/python packaging/build_pyz.py [--output dist/fleetgraph-agent.pyz]

It holds the packages `agent` and `cmdb` (less the store side of cmdb, which an endpoint never
uses) and the agent's dependencies msgspec and psutil. Both are C extensions, which Python cannot
import from inside a zip, so the zipapp is built with shiv: on its first run it extracts itself to
$SHIV_ROOT (default ~/.shiv) and runs from there; later runs find the extraction and start at once.

The bundled wheels are for the target, not for the build machine: CPython 3.11 (Debian 12's
/usr/bin/python3), manylinux x86_64 (or aarch64), at the versions installed in the build venv,
so the pyz carries exactly what the test suite ran against. Run it as
`python3 fleetgraph-agent.pyz agent run --once ...`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "dist" / "fleetgraph-agent.pyz"
ENTRY_POINT = "cmdb.cli:main"
SHEBANG = "/usr/bin/env python3"

AGENT_PACKAGES = ("agent", "cmdb")
# The collector side of cmdb: the store contract, its backends, the networkx graph, the `ci` query
# commands and the schema generator. An endpoint never opens a store; leaving them out keeps
# networkx and the server code off endpoints, and the dispatcher then skips `fleetgraph ci`.
CMDB_LEFT_OUT = ("cli_ci.py", "backends", "graph.py", "store.py", "changes.py", "jsonschema.py", "schema")
BUNDLED = ("msgspec", "psutil")
# Parts of the bundled distributions the agent never loads.
PRUNED = ("psutil/tests",)
TARGET_PYTHON = "3.11"  # Debian 12 (bookworm)
MANYLINUX = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}


class BuildError(RuntimeError):
    """The pyz could not be built; the message says what to fix."""


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def pinned_requirements() -> list[str]:
    """msgspec==X, psutil==Y: the versions installed next to the build (the ones tests ran)."""
    pins = []
    for name in BUNDLED:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise BuildError(f"{name} is not installed in {sys.prefix}: run `make venv` first") from None
    return pins


def install_wheels(site: Path, python_version: str, machine: str) -> None:
    """pip-install the target's binary wheels (never an sdist: no compiler, no host ABI)."""
    if machine not in MANYLINUX:
        raise BuildError(f"no wheel platform known for machine {machine!r} (known: {', '.join(MANYLINUX)})")
    abi = "cp" + python_version.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(site), "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", python_version, "--abi", abi, "--platform", MANYLINUX[machine],
           *pinned_requirements()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip could not fetch the {abi} {MANYLINUX[machine]} wheels:\n{proc.stderr}")
    for rel in PRUNED:
        shutil.rmtree(site / rel, ignore_errors=True)
    shutil.rmtree(site / "bin", ignore_errors=True)


def copy_agent_sources(site: Path) -> None:
    skip_pyc = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    for package in AGENT_PACKAGES:
        shutil.copytree(REPO / package, site / package, ignore=skip_pyc)
    for name in CMDB_LEFT_OUT:
        path = site / "cmdb" / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_dist_info(site: Path, version: str) -> None:
    """Metadata so importlib.metadata.version("fleetgraph") answers inside the zipapp."""
    info = site / f"fleetgraph-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fleetgraph\n"
        f"Version: {version}\nSummary: fleetgraph endpoint agent (single-file build: agent and cmdb only)\n")
    (info / "INSTALLER").write_text("fleetgraph packaging/build_pyz.py\n")
    (info / "RECORD").write_text("")


# Imports every module of the agent from the staged tree alone (-I -S: no PYTHONPATH, no site-packages
# and no .pth finders such as an editable install), so a module that needs something left
# out fails the build here instead of failing on an endpoint.
IMPORT_CHECK = r"""
import importlib, pkgutil, sys
site = sys.argv[1]
sys.path[:] = [site] + [p for p in sys.path if p.startswith(sys.base_prefix)]
import agent
failed = []
for mod in pkgutil.walk_packages(agent.__path__, "agent."):
    try:
        importlib.import_module(mod.name)
    except ImportError as exc:
        failed.append(f"{mod.name}: {exc}")
from cmdb.cli import build_parser
commands = sorted(build_parser()._subparsers._group_actions[0].choices)
print(",".join(commands))
if failed:
    sys.exit("agent modules that do not import from the pyz contents:\n  " + "\n  ".join(failed))
"""


def check_imports(site: Path, python_version: str) -> list[str]:
    """The dispatcher's commands as the pyz will list them; BuildError when a module breaks."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != python_version:
        print(f"build_pyz: skipping the import check: building with Python {platform.python_version()} "
              f"for {python_version}", file=sys.stderr)
        return []
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", IMPORT_CHECK, str(site)], capture_output=True,
                          text=True, cwd=site)
    if proc.returncode != 0:
        raise BuildError(proc.stderr.strip())
    return proc.stdout.strip().split(",")


def run_shiv(site: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "315532800")}
    cmd = [sys.executable, "-m", "shiv", "--site-packages", str(site), "--entry-point", ENTRY_POINT,
           "--output-file", str(tmp), "--python", SHEBANG, "--compressed", "--reproducible",
           "--compile-pyc"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=site.parent)
    except FileNotFoundError:
        raise BuildError(f"{sys.executable} cannot run; use the project venv") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        hint = " (install it: .venv/bin/pip install -e '.[test]')" if "No module named shiv" in proc.stderr else ""
        raise BuildError(f"shiv failed{hint}:\n{proc.stderr}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, output)


def describe(pyz: Path) -> dict:
    with zipfile.ZipFile(pyz) as zf:
        env = json.loads(zf.read("environment.json"))
        names = zf.namelist()
    return {"output": str(pyz), "bytes": pyz.stat().st_size, "build_id": env["build_id"],
            "entry_point": env["entry_point"], "files": len(names),
            "extensions": sorted(n.rsplit("/", 1)[-1] for n in names if n.endswith(".so"))}


def build_pyz(output: Path = DEFAULT_OUTPUT, python_version: str = TARGET_PYTHON,
              machine: str | None = None) -> dict:
    machine = machine or platform.machine()
    output = Path(output).resolve()  # shiv runs in the staging directory
    with tempfile.TemporaryDirectory(prefix="fleetgraph-pyz-") as tmp:
        site = Path(tmp) / "site-packages"
        site.mkdir()
        install_wheels(site, python_version, machine)
        copy_agent_sources(site)
        write_dist_info(site, project_version())
        commands = check_imports(site, python_version)
        run_shiv(site, output)
    return {**describe(output), "commands": commands, "python": python_version, "machine": machine}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the .pyz to write")
    parser.add_argument("--python-version", default=TARGET_PYTHON,
                        help=f"target CPython X.Y of the bundled wheels (default {TARGET_PYTHON})")
    parser.add_argument("--machine", help="target machine, x86_64 or aarch64 (default: this one)")
    args = parser.parse_args(argv)
    try:
        info = build_pyz(args.output, args.python_version, args.machine)
    except BuildError as exc:
        print(f"build_pyz: {exc}", file=sys.stderr)
        return 1
    print(f"built {info['output']}: {info['bytes']} bytes, build {info['build_id'][:12]}, "
          f"commands: {', '.join(info['commands']) or '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
