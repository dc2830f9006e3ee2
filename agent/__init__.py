"""The fleetgraph endpoint agent: collectors, the report builder, identity, transport, run loop."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _fleetgraph_version() -> str:
    try:
        return version("fleetgraph")
    except PackageNotFoundError:  # a source checkout that was never pip-installed
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            import tomllib

            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "0+unknown"


FLEETGRAPH_VERSION = _fleetgraph_version()
