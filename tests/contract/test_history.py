"""History: every change a record with before, after and provenance; confirmations are not changes."""

from __future__ import annotations

import pytest

from cmdb.changes import AttributeChange, ChangeSet
from tests.contract.conftest import Backend
from tests.contract.fleet import HOST_ATTRIBUTES, at, provenance


def upgrade_ram(store, fleet, minutes: float, before, after, report_id: str):
    return store.apply(ChangeSet(provenance(minutes, report_id, source_id="agent-web-01"),
                                 attributes=[AttributeChange(fleet.host, "ram_mb", before, after)],
                                 seen=[fleet.host]))


def test_creation_is_recorded(store, fleet):
    rows = store.history(fleet.host)
    kinds = [r.kind for r in rows]
    assert kinds[0] == "ci.create"
    assert kinds.count("ident.add") == 2 and kinds.count("attr.set") == len(HOST_ATTRIBUTES)
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert all(r.provenance == fleet.provenance and r.recorded_at.tzinfo for r in rows)
    serial = next(r for r in rows if r.kind == "ident.add" and r.name == "serial")
    assert (serial.before, serial.after) == (None, "SN-123")


def test_an_attribute_change_records_before_and_after(store, fleet):
    result = upgrade_ram(store, fleet, 60, 16384, 32768, "report-0002")
    assert result.history_rows == 1
    row = store.history(fleet.host, name="ram_mb")[-1]
    assert (row.kind, row.ci_id, row.name, row.before, row.after) == ("attr.set", fleet.host, "ram_mb", 16384, 32768)
    assert row.provenance == provenance(60, "report-0002")
    current = store.current_attributes([fleet.host])[fleet.host]["ram_mb"]
    assert current.value == 32768 and current.provenance == provenance(60, "report-0002")


def test_unset_removes_the_current_value_and_records_it(store, fleet):
    store.apply(ChangeSet(provenance(60, "report-0002"), attributes=[AttributeChange(fleet.host, "load", 0.75, None)]))
    assert "load" not in store.get_ci(fleet.host).attributes
    row = store.history(fleet.host, name="load")[-1]
    assert (row.kind, row.before, row.after) == ("attr.unset", 0.75, None)


def test_a_change_to_the_same_value_records_nothing(store, fleet):
    assert upgrade_ram(store, fleet, 60, 16384, 16384, "report-0002").history_rows == 0
    assert len(store.history(fleet.host, name="ram_mb")) == 1


def test_confirm_moves_observed_at_without_history(store, fleet):
    rows = len(store.history(fleet.host))
    result = store.apply(ChangeSet(provenance(90, "report-0003"), confirmed=[(fleet.host, "hostname")]))
    assert result.history_rows == 0
    assert len(store.history(fleet.host)) == rows
    current = store.current_attributes([fleet.host])[fleet.host]
    assert current["hostname"].provenance.observed_at == at(90)
    assert current["hostname"].provenance.report_id == "report-0003"
    assert current["hostname"].value == "web-01"
    assert current["ram_mb"].provenance.observed_at == at(0)  # only what was confirmed moves
    store.apply(ChangeSet(provenance(45, "report-late"), confirmed=[(fleet.host, "hostname")]))
    assert store.current_attributes([fleet.host])[fleet.host]["hostname"].provenance.observed_at == at(90)


def test_history_filters(store, fleet):
    upgrade_ram(store, fleet, 60, 16384, 32768, "report-0002")
    upgrade_ram(store, fleet, 120, 32768, 65536, "report-0003")
    ram = store.history(fleet.host, name="ram_mb")
    assert [r.after for r in ram] == [16384, 32768, 65536]
    assert [r.after for r in store.history(fleet.host, name="ram_mb", since=at(60))] == [32768, 65536]
    assert [r.after for r in store.history(fleet.host, name="ram_mb", until=at(60))] == [16384, 32768]
    assert [r.after for r in store.history(fleet.host, name="ram_mb", since=at(30), until=at(90))] == [32768]
    assert len(store.history(fleet.host, limit=3)) == 3
    assert store.history(fleet.host, since=at(121)) == []
    assert store.history("0" * 32) == []


def test_history_of_a_ci_shows_relation_changes_at_either_end(store, fleet):
    rows = store.history(fleet.host, name="INSTALLED_ON")
    assert [(r.kind, r.ci_id, r.related_ci) for r in rows] == [("rel.add", fleet.install, fleet.host)]
    assert [(r.kind, r.related_ci) for r in store.history(fleet.install, name="INSTALLED_ON")] == \
        [("rel.add", fleet.host)]


def test_ci_as_of(store, fleet):
    upgrade_ram(store, fleet, 60, 16384, 32768, "report-0002")
    store.apply(ChangeSet(provenance(120, "report-0003"), attributes=[
        AttributeChange(fleet.host, "load", 0.75, None), AttributeChange(fleet.host, "uptime_s", None, 42)]))

    assert store.ci_as_of(fleet.host, at(-1)) is None  # it did not exist yet
    assert store.ci_as_of("0" * 32, at(500)) is None

    first = store.ci_as_of(fleet.host, at(0))
    assert (first.ci_id, first.ci_class, first.first_seen) == (fleet.host, "Computer", at(0))
    assert {n: a.value for n, a in first.attributes.items()} == HOST_ATTRIBUTES
    assert sorted((i.kind, i.value) for i in first.identifiers) == [("hostname", "web-01"), ("serial", "SN-123")]

    middle = store.ci_as_of(fleet.host, at(90))
    assert middle.attributes["ram_mb"].value == 32768
    assert middle.attributes["ram_mb"].provenance == provenance(60, "report-0002")
    assert "load" in middle.attributes and "uptime_s" not in middle.attributes

    last = store.ci_as_of(fleet.host, at(500))
    current = store.get_ci(fleet.host)
    assert {n: a.value for n, a in last.attributes.items()} == {n: a.value for n, a in current.attributes.items()}
    assert "load" not in last.attributes and last.attributes["uptime_s"].value == 42


def test_history_is_append_only(backend: Backend, store, fleet, tmp_path):
    if backend.history_rewrites is None:
        pytest.skip(f"{backend.name} gives no way around the store to try")
    rows = store.history(fleet.host)
    for attempt in backend.history_rewrites(tmp_path):
        with pytest.raises(Exception, match="append-only"):
            attempt()
    assert store.history(fleet.host) == rows
