"""The registry of agent collectors: one line each, run in this order.

Adding a collector is its module, its fixture folder and one line here.
"""

from __future__ import annotations

from agent.collectors.base import COMPUTER_REF, Collector, Contribution
from agent.collectors.hardware import HardwareCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.os import OsCollector
from agent.collectors.software.dpkg import DpkgCollector

COLLECTORS: tuple[Collector, ...] = (
    HardwareCollector(),
    OsCollector(),
    NetworkCollector(),
    DpkgCollector(),
)

__all__ = ["COLLECTORS", "COMPUTER_REF", "Collector", "Contribution"]
