"""The fleetgraph endpoint agent: collectors, the report builder, identity, transport, run loop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_DIST = "fleetgraph"


def _version_from_metadata_dirs() -> str | None:
    """The version in the first fleetgraph `*.dist-info`/`*.egg-info` on sys.path, found the way
    importlib.metadata finds it but without importing it (and the email parser it pulls in): the
    agent reads its version on every run. None when the layout is not the plain one."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip, a missing folder
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info") or stem.split("-", 1)[0].lower() != _DIST:
                continue
            meta = os.path.join(entry or ".", name, "METADATA" if suffix == "dist-info" else "PKG-INFO")
            try:
                with open(meta, encoding="utf-8") as fh:
                    for line in fh:
                        if line.startswith("Version:"):
                            return line[len("Version:"):].strip() or None
                        if not line.strip():  # the end of the headers
                            break
            except OSError:
                pass
            return None
    return None


def _fleetgraph_version() -> str:
    found = _version_from_metadata_dirs()
    if found:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DIST)
    except PackageNotFoundError:  # a source checkout that was never pip-installed
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            import tomllib

            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "0+unknown"


FLEETGRAPH_VERSION = _fleetgraph_version()
