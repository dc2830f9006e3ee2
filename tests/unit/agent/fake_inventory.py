"""A machine described by a few mutable fields, and collectors that report it: tests change one
field and see which section a delta carries (the real collectors inventory the test host)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.collectors.base import COMPUTER_REF, Contribution


@dataclass
class FakeMachine:
    serial: str = "SN-FAKE-0001"
    memory_mb: int = 8192
    packages: dict[str, str] = field(default_factory=lambda: {"bash": "5.2", "curl": "8.5", "vim": "9.1"})
    interfaces: dict[str, list[str]] = field(default_factory=lambda: {"eth0": ["192.0.2.10"]})
    broken: set[str] = field(default_factory=set)  # collector names that raise


class _FakeCollector:
    name = ""

    def __init__(self, machine: FakeMachine):
        self.machine = machine

    def is_enabled(self, ctx) -> bool:
        return True

    def collect(self, ctx) -> Contribution:
        if self.name in self.machine.broken:
            raise RuntimeError(f"{self.name} is broken for this test")
        out = Contribution()
        self.fill(out)
        return out


class FakeHardware(_FakeCollector):
    name = "fake.hardware"

    def fill(self, out: Contribution) -> None:
        out.computer({"serial": self.machine.serial}, {"memory_mb": self.machine.memory_mb, "serial": self.machine.serial})


class FakeNetwork(_FakeCollector):
    name = "fake.network"

    def fill(self, out: Contribution) -> None:
        for ifname, addresses in self.machine.interfaces.items():
            ref = out.add("Interface", f"if:{ifname}", {"name": ifname}, {"name": ifname})
            out.relate(COMPUTER_REF, "HAS_INTERFACE", ref)
            for address in addresses:
                ip = out.add("IPAddress", f"ip:{address}", {"address": address}, {"address": address})
                out.relate(ref, "HAS_IP", ip)


class FakeSoftware(_FakeCollector):
    name = "fake.software"

    def fill(self, out: Contribution) -> None:
        for package, version in self.machine.packages.items():
            ref = out.add("SoftwareInstall", f"pkg:{package}", {"package": package},
                          {"name": package, "version": version})
            out.relate(ref, "INSTALLED_ON", COMPUTER_REF)


def fake_collectors(machine: FakeMachine) -> list[_FakeCollector]:
    return [FakeHardware(machine), FakeNetwork(machine), FakeSoftware(machine)]
