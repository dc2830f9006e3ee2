"""Drift events: written by `apply` with the change set (ChangeSet.drift), in the same transaction,
once per id, and read by CI (or related CI) and observed time."""

from __future__ import annotations

import pytest

from cmdb.changes import AttributeChange, ChangeSet, DriftEvent, IdentifierClaim
from cmdb.store import IdentifierTaken
from tests.contract.fleet import at, provenance


def ram_drift(fleet, minutes: float, before, after, report_id: str) -> ChangeSet:
    prov = provenance(minutes, report_id)
    return ChangeSet(prov, attributes=[AttributeChange(fleet.host, "memory_bytes", before, after)],
                     drift=[DriftEvent(f"drift-{report_id}", fleet.host, "Computer", "memory_bytes", before,
                                       after, None, prov)])


def package_drift(fleet, minutes: float, report_id: str, installed: bool) -> ChangeSet:
    prov = provenance(minutes, report_id)
    summary = {"package": "openssl", "name": "openssl", "version": "3.0.11-1"}
    before, after = (None, summary) if installed else (summary, None)
    return ChangeSet(prov, drift=[DriftEvent(f"drift-{report_id}", fleet.host, "Computer", "software",
                                             before, after, fleet.install, prov)])


def test_events_are_stored_with_every_field(store, fleet):
    store.apply(ram_drift(fleet, 60, 16, 32, "report-0002"))
    [event] = store.drift_events()
    assert (event.drift_id, event.ci_id, event.ci_class, event.attribute, event.before, event.after,
            event.related_ci) == ("drift-report-0002", fleet.host, "Computer", "memory_bytes", 16, 32, None)
    assert event.provenance == provenance(60, "report-0002")
    assert event.recorded_at is not None and event.recorded_at.tzinfo is not None


def test_structured_before_and_after_round_trip(store, fleet):
    store.apply(package_drift(fleet, 60, "report-0002", installed=False))
    [event] = store.drift_events(ci_id=fleet.host)
    assert event.before == {"package": "openssl", "name": "openssl", "version": "3.0.11-1"}
    assert event.after is None and event.related_ci == fleet.install


def test_an_event_applied_twice_is_stored_once(store, fleet):
    changes = ram_drift(fleet, 60, 16, 32, "report-0002")
    store.apply(changes)
    store.apply(changes)
    assert len(store.drift_events()) == 1


def test_no_events_unless_the_change_set_carries_them(store, fleet):
    store.apply(ChangeSet(provenance(60, "report-0002"),
                          attributes=[AttributeChange(fleet.host, "memory_bytes", 16, 32)]))
    assert store.drift_events() == []


def test_a_refused_apply_writes_no_drift(store, fleet):
    changes = ram_drift(fleet, 60, 16, 32, "report-0002")
    changes.identifiers = [IdentifierClaim(fleet.os, "Computer", "serial", "SN-123")]  # the host's
    with pytest.raises(IdentifierTaken):
        store.apply(changes)
    assert store.drift_events() == []


def test_filters_by_ci_related_ci_time_and_limit(store, fleet):
    store.apply(ram_drift(fleet, 60, 16, 32, "report-0002"))
    store.apply(package_drift(fleet, 120, "report-0003", installed=True))
    store.apply(package_drift(fleet, 180, "report-0004", installed=False))
    assert [e.drift_id for e in store.drift_events()] == ["drift-report-0002", "drift-report-0003",
                                                         "drift-report-0004"]
    assert len(store.drift_events(ci_id=fleet.host)) == 3
    assert [e.drift_id for e in store.drift_events(ci_id=fleet.install)] == ["drift-report-0003",
                                                                            "drift-report-0004"]
    assert store.drift_events(ci_id=fleet.os) == []
    assert [e.drift_id for e in store.drift_events(since=at(120))] == ["drift-report-0003", "drift-report-0004"]
    assert [e.drift_id for e in store.drift_events(until=at(120))] == ["drift-report-0002", "drift-report-0003"]
    assert [e.drift_id for e in store.drift_events(since=at(61), until=at(179))] == ["drift-report-0003"]
    assert len(store.drift_events(limit=2)) == 2


def test_events_are_ordered_by_observed_time_not_arrival(store, fleet):
    store.apply(ram_drift(fleet, 180, 32, 64, "report-0004"))
    store.apply(ram_drift(fleet, 60, 16, 32, "report-0002"))  # a late report
    assert [e.drift_id for e in store.drift_events()] == ["drift-report-0002", "drift-report-0004"]


def test_drift_survives_a_reopen(backend, store, fleet, tmp_path):
    store.apply(ram_drift(fleet, 60, 16, 32, "report-0002"))
    before = store.drift_events()
    store.close()
    reopened = backend.open(tmp_path)
    try:
        assert reopened.drift_events() == before
    finally:
        reopened.close()
