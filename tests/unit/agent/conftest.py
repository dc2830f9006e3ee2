"""Shared pieces of the agent tests: where the corpora are, and a recorded-host context."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.context import CommandError, CommandNotFound, DeferredCommand

GLPI = Path(__file__).resolve().parents[2] / "fixtures" / "host" / "glpi-agent"


def glpi_expected(tool: str, case: str, expectation: str):
    doc = json.loads((GLPI / tool / "expected" / f"{case}.json").read_text())
    return doc["expected"][expectation]


@dataclass
class RecordedContext:
    """A host known only by recorded files, links and command outputs (a command mapped to an
    exception raises it). Not local: psutil and socket say nothing about it."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    commands: dict[tuple[str, ...], str | Exception] = field(default_factory=dict)
    agent_id: str = "6f1c2d3e-0000-4000-8000-000000000001"
    local: bool = False

    def run(self, argv: Sequence[str], timeout: float = 20.0) -> str:
        out = self.commands.get(tuple(argv))
        if out is None:
            raise CommandNotFound(argv, "command not found")
        if isinstance(out, Exception):
            raise out
        return out

    def start(self, argv: Sequence[str], timeout: float = 20.0) -> DeferredCommand:
        return DeferredCommand(self, argv, timeout)

    def has_command(self, name: str) -> bool:
        return any(argv[0] == name for argv in self.commands)

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def read_bytes(self, path: str, limit: int = 16 * 2**20) -> bytes | None:
        text = self.files.get(path)
        return None if text is None else text.encode()[:limit]

    def list_dir(self, path: str) -> list[str] | None:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0] for p in [*self.files, *self.links] if p.startswith(prefix)}
        return sorted(names) or None

    def read_link(self, path: str) -> str | None:
        return self.links.get(path)


@pytest.fixture
def recorded() -> RecordedContext:
    return RecordedContext()


__all__ = ["GLPI", "CommandError", "RecordedContext", "glpi_expected"]
