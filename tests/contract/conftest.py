"""The store contract suite: every backend runs every test in this folder.

Adding a backend is one line in BACKENDS: how to open (or reopen) a store kept under a folder,
and, where the backend can be reached behind the store's back, how to try rewriting history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cmdb.backends.sqlite import SQLiteStore
from cmdb.store import Store
from tests.contract.fleet import Fleet, apply_fleet


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[Path], Store]
    # Statements that try to UPDATE and DELETE history rows directly, each to be called and to raise.
    history_rewrites: Callable[[Path], list[Callable[[], object]]] | None = None


def _sqlite_history_rewrites(folder: Path) -> list[Callable[[], object]]:
    def run(sql: str) -> Callable[[], object]:
        def attempt() -> object:
            conn = sqlite3.connect(folder / "cmdb.sqlite", isolation_level=None)
            try:
                return conn.execute(sql)
            finally:
                conn.close()
        return attempt
    return [run("UPDATE history SET after = '\"forged\"'"), run("DELETE FROM history"),
            run("DELETE FROM history WHERE seq = (SELECT max(seq) FROM history)")]


BACKENDS = [
    Backend("sqlite", lambda folder: SQLiteStore(folder / "cmdb.sqlite"), _sqlite_history_rewrites),
]


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, tmp_path: Path):
    opened = backend.open(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def fleet(store: Store) -> Fleet:
    """A realistic host and its dependents, applied to the store."""
    return apply_fleet(store)
