from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path):
    """The real embedded store, one fresh file per test."""
    from cmdb.backends.sqlite import SQLiteStore

    s = SQLiteStore(str(tmp_path / "cmdb.sqlite"))
    yield s
    s.close()


class CountingStore:
    """The real store, counting the read calls reconcile makes (to pin batched reads)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def counted(*args, **kwargs):
            self.calls.append((name, args[:2] if name == "resolve_identifiers" else ()))
            return target(*args, **kwargs)
        return counted

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


@pytest.fixture
def counting_store(store):
    return CountingStore(store)
