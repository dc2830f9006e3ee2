"""The registry of agent collectors: one line each, run in this order.

Adding a collector is its module, its fixture folder and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.collectors.base import COMPUTER_REF, Collector, Contribution
from agent.collectors.connections import ConnectionsCollector
from agent.collectors.hardware import HardwareCollector
from agent.collectors.hardware.filesystems import FilesystemCollector
from agent.collectors.hardware.pci_devices import PciCollector
from agent.collectors.licenses import DpkgLicensesCollector, FlexlmCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.os import OS_RELEASE_PATHS, OsCollector
from agent.collectors.services import ServicesCollector
from agent.collectors.software.apk import ApkCollector
from agent.collectors.software.dpkg import DpkgCollector
from agent.collectors.software.rpm import RPM_DB_DIRS, RpmCollector

COLLECTORS: tuple[Collector, ...] = (
    HardwareCollector(),
    FilesystemCollector(),
    PciCollector(),
    OsCollector(),
    NetworkCollector(),
    DpkgCollector(),
    RpmCollector(),
    ApkCollector(),
    DpkgLicensesCollector(),  # after DpkgCollector: it adds `license` to dpkg's SoftwareInstall items
    FlexlmCollector(),
    ServicesCollector(),
    ConnectionsCollector(),  # after ServicesCollector: it relates from the Service items
)


@dataclass(frozen=True)
class InputGroup:
    """Collectors whose sections follow from `paths` alone (absolute paths on the inventoried
    machine; a folder's stat changes when an entry is added, removed or renamed)."""

    collectors: tuple[str, ...]
    paths: tuple[str, ...]

    @property
    def key(self) -> str:
        return "+".join(self.collectors)


# Collectors whose sections follow from these files alone: a delta run skips a group whose files
# have not changed since it last ran for real (agent.fastpath: the conditions, and why a full
# report always collects). dpkg: status and its journal (updates/), the file lists (install
# dates), the doc folders (licenses), os-release (the purl namespace). rpm: the database files,
# whichever backend (bdb Packages, sqlite, ndb) and folder the distribution uses.
UNCHANGED_WHILE_SAME: tuple[InputGroup, ...] = (
    InputGroup(("software.dpkg", "licenses.dpkg"),
               ("/var/lib/dpkg/status", "/var/lib/dpkg/updates", "/var/lib/dpkg/info", "/var/lib/dpkg/available",
                "/usr/share/doc", *OS_RELEASE_PATHS)),
    InputGroup(("software.rpm",),
               (*RPM_DB_DIRS, *(f"{d}/{f}" for d in RPM_DB_DIRS for f in ("Packages", "Packages.db", "rpmdb.sqlite",
                                                                           "rpmdb.sqlite-wal")),
                *OS_RELEASE_PATHS)),
)


def configured_collectors(license_paths: Sequence[str] | None = None) -> tuple[Collector, ...]:
    """The registry with the configured options (`[agent] license_paths`); the other collectors
    are the registry's own instances, so what they keep between runs is kept."""
    if license_paths is None:
        return COLLECTORS
    return tuple(FlexlmCollector(license_paths) if c.name == FlexlmCollector.name else c for c in COLLECTORS)

__all__ = ["COLLECTORS", "COMPUTER_REF", "UNCHANGED_WHILE_SAME", "Collector", "Contribution", "InputGroup",
           "configured_collectors"]
