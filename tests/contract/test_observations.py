"""Observations (attribute precedence): other sources' latest values beside the current one, and
current values taken over from another source's observation."""

from __future__ import annotations

from cmdb.changes import AttributeChange, ChangeSet, Observation
from tests.contract.fleet import at, provenance


def snmp(minutes: float, report_id: str = "report-snmp-1"):
    return provenance(minutes, report_id, kind="snmp", source_id="snmp-poller")


def observe(store, fleet, minutes: float, value, report_id: str = "report-snmp-1"):
    return store.apply(ChangeSet(snmp(minutes, report_id), seen=[fleet.host],
                                 observations=[Observation(fleet.host, "hostname", value, snmp(minutes, report_id))]))


def test_an_observation_is_kept_beside_the_current_value_without_history(store, fleet):
    rows = len(store.history(fleet.host))
    assert observe(store, fleet, 30, "web-01-snmp").history_rows == 0
    assert len(store.history(fleet.host)) == rows
    assert store.get_ci(fleet.host).attributes["hostname"].value == "web-01"
    others = store.other_observations([fleet.host, fleet.os])
    assert list(others) == [fleet.host]
    (kept,) = others[fleet.host]["hostname"]
    assert (kept.value, kept.provenance) == ("web-01-snmp", snmp(30))
    shown = [(o.value, o.provenance.source_kind, o.current) for o in store.observations(fleet.host)
             if o.name == "hostname"]
    assert shown == [("web-01", "agent", True), ("web-01-snmp", "snmp", False)]
    assert {o.name for o in store.observations(fleet.host) if o.current} == set(store.get_ci(fleet.host).attributes)


def test_an_older_observation_never_replaces_a_newer_one(store, fleet):
    observe(store, fleet, 60, "newer", "report-snmp-2")
    observe(store, fleet, 30, "older", "report-snmp-1")
    (kept,) = store.other_observations([fleet.host])[fleet.host]["hostname"]
    assert (kept.value, kept.provenance.observed_at, kept.provenance.report_id) == ("newer", at(60), "report-snmp-2")
    observe(store, fleet, 90, "newest", "report-snmp-3")
    assert store.other_observations([fleet.host])[fleet.host]["hostname"][0].value == "newest"


def test_a_dropped_observation_is_gone(store, fleet):
    observe(store, fleet, 30, "web-01-snmp")
    store.apply(ChangeSet(snmp(40), observations_dropped=[(fleet.host, "hostname", "snmp", "snmp-poller")]))
    assert store.other_observations([fleet.host]) == {}


def test_a_provenance_move_changes_the_source_not_the_value_nor_history(store, fleet):
    rows = len(store.history(fleet.host))
    store.apply(ChangeSet(snmp(30), provenance_moves=[Observation(fleet.host, "hostname", "web-01", snmp(30))]))
    current = store.get_ci(fleet.host).attributes["hostname"]
    assert (current.value, current.provenance) == ("web-01", snmp(30))
    assert len(store.history(fleet.host)) == rows


def test_a_value_taken_over_from_another_source_keeps_its_provenance(store, fleet):
    """The agent's report (at 60) no longer states hostname; snmp's observation (at 30) becomes
    current: the value keeps snmp's provenance, its history row is stamped when it took over."""
    observe(store, fleet, 30, "web-01-snmp")
    store.apply(ChangeSet(provenance(60, "report-0002"),
                          attributes=[AttributeChange(fleet.host, "hostname", "web-01", "web-01-snmp", snmp(30))],
                          observations_dropped=[(fleet.host, "hostname", "snmp", "snmp-poller")]))
    current = store.get_ci(fleet.host).attributes["hostname"]
    assert (current.value, current.provenance) == ("web-01-snmp", snmp(30))
    row = store.history(fleet.host, "hostname")[-1]
    assert (row.kind, row.before, row.after) == ("attr.set", "web-01", "web-01-snmp")
    assert (row.provenance.source_kind, row.provenance.report_id, row.provenance.observed_at) == \
        ("snmp", "report-snmp-1", at(60))
    assert store.ci_as_of(fleet.host, at(45)).attributes["hostname"].value == "web-01"
    assert store.ci_as_of(fleet.host, at(60)).attributes["hostname"].value == "web-01-snmp"
    assert store.other_observations([fleet.host]) == {}
