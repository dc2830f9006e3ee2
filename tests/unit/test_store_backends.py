"""open_store URL handling, and impact analysis on hand-built graphs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from cmdb.backends import open_store
from cmdb.backends.sqlite import SQLiteStore
from cmdb.changes import Provenance
from cmdb.graph import build_graph, impacted_by
from cmdb.store import Relationship, Store


def test_open_store_absolute_url(tmp_path: Path):
    store = open_store(f"sqlite://{tmp_path}/sub/cmdb.sqlite")  # sqlite:/// + an absolute path
    try:
        assert isinstance(store, SQLiteStore) and isinstance(store, Store)
        assert store.path == tmp_path / "sub" / "cmdb.sqlite"
        assert store.path.exists()
    finally:
        store.close()


def test_open_store_relative_url_and_bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    for url, path in (("sqlite:data/a.sqlite", Path("data/a.sqlite")), ("data/b.sqlite", Path("data/b.sqlite")),
                      (str(tmp_path / "c.sqlite"), tmp_path / "c.sqlite")):
        store = open_store(url)
        try:
            assert store.path == path and (tmp_path / path).exists()
        finally:
            store.close()


@pytest.mark.parametrize("url, message", [
    ("neo4j://localhost:7687", "planned"),
    ("bolt://localhost:7687", "planned"),
    ("postgres://db/cmdb", "unknown scheme 'postgres'.*neo4j:// backend is planned"),
    ("sqlite://host/cmdb.sqlite", "not a host"),
    ("sqlite:///tmp/x.sqlite?mode=ro", "no \\?options"),
    ("sqlite::memory:", "name a database file"),
    (":memory:", "file path"),
])
def test_open_store_refuses_what_it_cannot_open(url: str, message: str):
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_naive_datetimes_are_refused(tmp_path: Path):
    store = SQLiteStore(tmp_path / "cmdb.sqlite")
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.put_report("report-0001", "agent", "a", datetime(2025, 1, 1), b"{}")
        assert store.count_reports() == 0
    finally:
        store.close()


def _rel(type_: str, a: str, b: str) -> Relationship:
    t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    return Relationship(type_, a, b, "active", t, t, Provenance("agent", "a", None, t))


def test_impact_directions():
    graph = build_graph([_rel("DEPENDS_ON", "app", "db"), _rel("RUNS_ON", "db", "host"),
                         _rel("HOSTS", "hv", "host"), _rel("LICENSED_BY", "db", "lic"),
                         _rel("CONNECTED_TO", "host", "switch"), _rel("MEMBER_OF", "app", "cluster")],
                        {"app": "Service", "db": "Service", "host": "VirtualMachine", "hv": "Computer",
                         "lic": "LicenseEntitlement", "switch": "NetworkDevice", "cluster": "BusinessService",
                         "lonely": "Printer"})
    assert impacted_by(graph, "hv") == {"host", "db", "app", "switch", "cluster"}
    assert impacted_by(graph, "switch") == {"host", "db", "app", "cluster"}
    assert impacted_by(graph, "lic") == set()
    assert impacted_by(graph, "app") == {"cluster"}
    assert impacted_by(graph, "cluster") == set()
    assert impacted_by(graph, "lonely") == set() and graph.nodes["lonely"]["ci_class"] == "Printer"


def test_build_graph_keeps_parallel_edges_of_different_types():
    graph = build_graph([_rel("RUNS_ON", "a", "b"), _rel("DEPENDS_ON", "a", "b"), _rel("RUNS_ON", "a", "x")],
                        {"a": "Service", "b": "Computer"})
    assert graph.number_of_edges("a", "b") == 2
    assert graph.nodes["x"]["ci_class"] is None  # an end the caller gave no class for


def test_a_report_stored_before_schema_8_reads_its_mode_from_its_body(tmp_path):
    """Upgrading keeps delta base checks right for reports stored without a mode column value."""
    import sqlite3
    from datetime import UTC, datetime

    from cmdb.backends.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "old.sqlite")
    store.put_report("report-old-delta", "agent", "a-1", datetime(2026, 1, 1, tzinfo=UTC),
                     b'{"schema": "fleetgraph.report/1", "mode": "delta"}')
    store.close()
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:  # as a version-7 store left it
        conn.execute("UPDATE report SET mode = NULL")
    store = SQLiteStore(tmp_path / "old.sqlite")
    try:
        assert store.report_head("report-old-delta").mode == "delta"
    finally:
        store.close()
