"""The store's part of scoped staleness: scope stamps, seen-by records, CI retire/reactivate."""

from __future__ import annotations

import sqlite3

from cmdb.changes import ChangeSet, RelationChange, SeenMark
from cmdb.store import ScopeKey
from tests.contract.fleet import at, provenance


def _marks(fleet, when, missed=0):
    return [SeenMark("software", fleet.host, fleet.install, "", "", missed, at(when)),
            SeenMark("software", fleet.host, fleet.install, "INSTALLED_ON", fleet.host, missed, at(when))]


def test_scope_stamps_and_records_round_trip(store, fleet):
    store.apply(ChangeSet(provenance(60, "r-2"), scope_runs=[("software", fleet.host)], seen_marks=_marks(fleet, 60)))
    states = store.scope_states("agent", "agent-web-01", [("software", fleet.host), ("network", fleet.host)])
    assert states[("network", fleet.host)].last_run is None and states[("network", fleet.host)].records == []
    state = states[("software", fleet.host)]
    assert state.scope == ScopeKey("agent", "agent-web-01", "software", fleet.host) and state.last_run == at(60)
    assert {(r.ci_id, r.rel_type, r.missed, r.last_seen_run) for r in state.records} == {
        (fleet.install, "", 0, at(60)), (fleet.install, "INSTALLED_ON", 0, at(60))}

    # a later run re-stating everything writes only the stamp: records with missed 0 follow it
    store.apply(ChangeSet(provenance(90, "r-3"), scope_runs=[("software", fleet.host)]))
    state = store.scope_states("agent", "agent-web-01", [("software", fleet.host)])[("software", fleet.host)]
    assert {r.last_seen_run for r in state.records} == {at(90)}
    # an older stamp never moves it back
    store.apply(ChangeSet(provenance(30, "r-0"), scope_runs=[("software", fleet.host)]))
    assert store.scope_states("agent", "agent-web-01", [("software", fleet.host)])[("software", fleet.host)].last_run \
        == at(90)

    # a miss keeps the last sighting
    store.apply(ChangeSet(provenance(120, "r-4"), scope_runs=[("software", fleet.host)],
                          seen_marks=_marks(fleet, 90, missed=1)))
    records = store.seen_records([fleet.install])
    assert {(r.scope.collector, r.rel_type, r.missed, r.last_seen_run) for r in records} == {
        ("software", "", 1, at(90)), ("software", "INSTALLED_ON", 1, at(90))}
    assert store.seen_records([fleet.host]) == []


def test_retire_and_reactivate_a_ci_with_history(store, fleet):
    store.apply(ChangeSet(provenance(60, "r-2"), scope_runs=[("software", fleet.host)], seen_marks=_marks(fleet, 60)))
    result = store.apply(ChangeSet(
        provenance(90, "r-3"), retired=[fleet.install],
        relations=[RelationChange("INSTALLED_ON", fleet.install, fleet.host, "retire")]))
    assert result.history_rows == 2
    assert store.get_ci(fleet.install).state == "retired"
    assert set(store.retired_among([fleet.install, fleet.host])) == {fleet.install}
    assert store.seen_records([fleet.install]) == []  # records of what retired are dropped
    assert store.apply(ChangeSet(provenance(95, "r-4"), retired=[fleet.install])).history_rows == 0

    back = store.apply(ChangeSet(provenance(120, "r-5"), reactivated=[fleet.install]))
    assert back.history_rows == 1 and store.get_ci(fleet.install).state == "active"
    rows = [(r.kind, r.before, r.after, r.provenance.report_id)
            for r in store.history(fleet.install) if r.kind.startswith("ci.") and r.kind != "ci.create"]
    assert rows == [("ci.retire", "active", "retired", "r-3"), ("ci.reactivate", "retired", "active", "r-5")]


def test_relationships_touching_reads_both_ends(store, fleet):
    touching = {(r.type, r.from_ci, r.to_ci) for r in store.relationships_touching([fleet.iface])}
    assert touching and all(fleet.iface in (f, t) for _, f, t in touching)
    assert any(t == fleet.iface for _, _, t in touching) and any(f == fleet.iface for _, f, _ in touching)


def test_a_version_3_database_migrates_keeping_history(backend, tmp_path):
    if backend.name != "sqlite":
        return
    from cmdb.backends.sqlite import SQLiteStore
    from cmdb.backends.sqlite_schema import MIGRATIONS

    path = tmp_path / "cmdb.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    for migration in MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    conn.execute("INSERT INTO ci VALUES ('c1', 'Computer', 'active', 1, 1)")
    conn.execute("INSERT INTO history (ci_id, kind, after, source_kind, source_id, observed_at, recorded_at) "
                 "VALUES ('c1', 'ci.create', '\"Computer\"', 'agent', 'a', 1, 1)")
    conn.close()
    store = SQLiteStore(path)
    try:
        store.apply(ChangeSet(provenance(10, "r-1"), retired=["c1"]))
        assert [(r.seq, r.kind) for r in store.history("c1")] == [(1, "ci.create"), (2, "ci.retire")]
    finally:
        store.close()
