"""The registry of agent collectors: one line each, run in this order.

Adding a collector is its module, its fixture folder and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.collectors.base import COMPUTER_REF, Collector, Contribution
from agent.collectors.connections import ConnectionsCollector
from agent.collectors.hardware import HardwareCollector
from agent.collectors.hardware.filesystems import FilesystemCollector
from agent.collectors.licenses import DpkgLicensesCollector, FlexlmCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.os import OsCollector
from agent.collectors.services import ServicesCollector
from agent.collectors.software.apk import ApkCollector
from agent.collectors.software.dpkg import DpkgCollector
from agent.collectors.software.rpm import RpmCollector

COLLECTORS: tuple[Collector, ...] = (
    HardwareCollector(),
    FilesystemCollector(),
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


def configured_collectors(license_paths: Sequence[str] | None = None) -> tuple[Collector, ...]:
    """The registry with the configured options (`[agent] license_paths`); the other collectors
    are the registry's own instances, so what they keep between runs is kept."""
    if license_paths is None:
        return COLLECTORS
    return tuple(FlexlmCollector(license_paths) if c.name == FlexlmCollector.name else c for c in COLLECTORS)

__all__ = ["COLLECTORS", "COMPUTER_REF", "Collector", "Contribution", "configured_collectors"]
