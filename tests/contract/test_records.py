"""Records on every backend: change records and incidents, their state machines, links to CIs and
drift, the event log (audit trail and webhook outbox) and the webhook endpoint cursors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.changes import ChangeSet, DriftEvent
from cmdb.records import DriftAction, ExpectedOutcome, NewChange, NewIncident, RecordError
from tests.contract.fleet import Fleet, at, provenance


def _change(fleet: Fleet, **kw) -> NewChange:
    args = dict(type="normal", title="upgrade RAM", created_by="alice", cis=(fleet.host,),
                planned_start=at(10), planned_end=at(70))
    args.update(kw)
    return NewChange(**args)


def _approve(store, number: str, actor: str = "cab") -> None:
    for state in ("assess", "authorize", "scheduled"):
        store.transition_change(number, state, actor)


def test_a_change_walks_its_state_machine_and_every_step_is_an_event(store, fleet):
    change = store.create_change(_change(fleet), now=at(0))
    assert change.number == "CHG0000001" and change.state == "new" and change.cis == (fleet.host,)
    _approve(store, change.number)
    change = store.transition_change(change.number, "implement", "bob")
    change = store.transition_change(change.number, "review", "bob")
    change = store.transition_change(change.number, "closed", "bob")
    assert change.state == "closed" and change.approved_by == "cab" and change.approved_at is not None
    events = store.record_events(record=change.number)
    assert [e.event for e in events] == ["created"] + ["transitioned"] * 6
    assert [e.data["to"] for e in events[1:]] == ["assess", "authorize", "scheduled", "implement", "review",
                                                  "closed"]
    assert events[3].data["approved"] is True and events[3].actor == "cab"
    with pytest.raises(RecordError, match="is final"):
        store.transition_change(change.number, "cancelled", "bob")


@pytest.mark.parametrize("change_type,path,refused", [
    ("normal", [], "scheduled"),             # a normal change cannot skip assessment and authorization
    ("standard", [], "assess"),              # a standard change is pre-authorized: new -> scheduled only
    ("emergency", [], "scheduled"),          # an emergency change still needs authorization
    ("normal", ["assess"], "implement"),
    ("normal", ["assess", "authorize", "scheduled"], "closed"),
])
def test_a_transition_off_the_state_machine_is_refused_and_changes_nothing(store, fleet, change_type, path,
                                                                           refused):
    change = store.create_change(_change(fleet, type=change_type))
    for state in path:
        store.transition_change(change.number, state, "alice")
    before = store.get_change(change.number)
    events = len(store.record_events(record=change.number))
    with pytest.raises(RecordError, match=f"not {refused}") as err:
        store.transition_change(change.number, refused, "alice")
    assert err.value.rule == "bad_transition"
    assert store.get_change(change.number) == before
    assert len(store.record_events(record=change.number)) == events


def test_shortcuts_of_standard_and_emergency_changes(store, fleet):
    standard = store.create_change(_change(fleet, type="standard"))
    assert store.transition_change(standard.number, "scheduled", "ops").state == "scheduled"
    emergency = store.create_change(_change(fleet, type="emergency"))
    assert store.transition_change(emergency.number, "authorize", "ops").state == "authorize"


def test_a_change_without_a_window_cannot_be_approved(store, fleet):
    change = store.create_change(_change(fleet, planned_start=None, planned_end=None))
    store.transition_change(change.number, "assess", "a")
    store.transition_change(change.number, "authorize", "a")
    with pytest.raises(RecordError, match="no planned window"):
        store.transition_change(change.number, "scheduled", "a")
    store.update_change(change.number, "a", planned_start=at(0), planned_end=at(60))
    assert store.transition_change(change.number, "scheduled", "a").state == "scheduled"
    with pytest.raises(RecordError, match="before it is approved"):
        store.update_change(change.number, "a", planned_end=at(90))


@pytest.mark.parametrize("kw,words", [
    ({"type": "urgent"}, "unknown change type"),
    ({"title": "  "}, "title"),
    ({"title": "x" * 201}, "longer than"),
    ({"planned_end": None}, "needs both"),
    ({"planned_end": at(0), "planned_start": at(10)}, "after planned_start"),
    ({"cis": ("0" * 32,)}, "unknown CI"),
])
def test_a_bad_change_is_refused_and_nothing_is_stored(store, fleet, kw, words):
    with pytest.raises(RecordError, match=words):
        store.create_change(_change(fleet, **kw))
    assert store.list_changes() == [] and store.record_events() == []


def test_approved_changes_for_a_ci_are_those_whose_window_is_open(store, fleet):
    approved = store.create_change(_change(fleet))
    _approve(store, approved.number)
    store.create_change(_change(fleet, title="not approved yet"))
    other = store.create_change(_change(fleet, cis=(fleet.os,), title="another CI"))
    _approve(store, other.number)
    assert [c.number for c in store.approved_changes_for([fleet.host], at(30))] == [approved.number]
    assert store.approved_changes_for([fleet.host], at(71)) == []
    assert store.approved_changes_for([fleet.host], at(9)) == []
    both = store.approved_changes_for([fleet.host, fleet.os], at(10))
    assert [c.number for c in both] == [approved.number, other.number]


def test_an_incident_has_an_itil_priority_and_its_own_state_machine(store, fleet):
    incident = store.create_incident(NewIncident("db01 down", "alice", impact=1, urgency=2, cis=(fleet.host,)))
    assert incident.number == "INC0000001" and incident.priority == 2 and incident.state == "new"
    assert store.count_open_incidents() == 1
    with pytest.raises(RecordError, match="needs a resolution"):
        store.update_incident(incident.number, "bob", state="resolved")
    with pytest.raises(RecordError, match="not closed"):
        store.update_incident(incident.number, "bob", state="closed")
    incident = store.update_incident(incident.number, "bob", state="in_progress", assignee="bob", urgency=3)
    assert incident.priority == 3 and incident.assignee == "bob"
    incident = store.update_incident(incident.number, "bob", state="resolved", resolution="rebooted")
    assert incident.resolved_at is not None and store.count_open_incidents() == 0
    incident = store.update_incident(incident.number, "bob", state="closed")
    assert incident.closed_at is not None
    kinds = [e.event for e in store.record_events(record=incident.number)]
    assert kinds == ["opened", "transitioned", "transitioned", "transitioned"]
    assert store.list_incidents(open_only=True) == [] and len(store.list_incidents(ci_id=fleet.host)) == 1


@pytest.mark.parametrize("impact,urgency", [(0, 1), (4, 2), (2, "high")])
def test_impact_and_urgency_outside_the_matrix_are_refused(store, fleet, impact, urgency):
    with pytest.raises(RecordError, match="must be 1"):
        store.create_incident(NewIncident("x", "alice", impact=impact, urgency=urgency))


def test_unknown_and_malformed_numbers(store, fleet):
    assert store.get_change("CHG0000099") is None and store.get_incident("INC0000099") is None
    for bad in ("CHG", "INC-1", "'; DROP TABLE incident; --", "X" * 500):
        with pytest.raises(RecordError, match="not a record number"):
            store.get_change(bad)
    with pytest.raises(RecordError, match="not an incident"):
        store.update_incident("CHG0000001", "x", state="resolved")


def _drift(fleet: Fleet, attribute: str, after, minutes: float) -> DriftEvent:
    prov = provenance(minutes, report_id=f"r-{attribute}-{minutes}")
    return DriftEvent(f"{attribute}-{minutes}".ljust(32, "0")[:32], fleet.host, "Computer", attribute, 1, after,
                      None, prov)


def _apply_drift(store, fleet: Fleet, events: list[DriftEvent], actions: list[DriftAction]) -> None:
    changes = ChangeSet(provenance=events[0].provenance, drift=events, drift_actions=actions)
    store.apply(changes)


def test_drift_actions_open_one_record_per_ci_and_attribute_while_it_is_open(store, fleet):
    e1, e2, e3 = (_drift(fleet, "memory_bytes", v, m) for v, m in ((2, 1), (3, 2), (4, 3)))
    incident = DriftAction(e1.drift_id, "incident", ci_id=fleet.host, attribute="memory_bytes", title="t")
    _apply_drift(store, fleet, [e1], [incident])
    _apply_drift(store, fleet, [e2], [DriftAction(e2.drift_id, "incident", ci_id=fleet.host,
                                                  attribute="memory_bytes", title="t")])
    [open_] = store.list_incidents()
    assert open_.drift == (e1.drift_id, e2.drift_id) and open_.origin == "drift"
    assert [e.disposition for e in store.drift_events()] == ["incident", "incident"]
    assert {e.record for e in store.drift_events()} == {open_.number}
    store.update_incident(open_.number, "bob", state="resolved", resolution="expected after all")
    _apply_drift(store, fleet, [e3], [DriftAction(e3.drift_id, "incident", ci_id=fleet.host,
                                                  attribute="memory_bytes", title="t")])
    assert [i.number for i in store.list_incidents(open_only=True)] == ["INC0000002"]


def test_authorized_drift_is_evidence_of_its_change(store, fleet):
    change = store.create_change(_change(fleet, expected=(ExpectedOutcome("memory_bytes", 4),)))
    _approve(store, change.number)
    event = _drift(fleet, "memory_bytes", 4, 30)
    _apply_drift(store, fleet, [event], [DriftAction(event.drift_id, "authorized", change=change.number)])
    assert store.get_change(change.number).evidence == (event.drift_id,)
    assert store.drift_events()[0].disposition == "authorized"
    assert store.list_incidents() == []
    due = store.changes_due_for_verification(at(71))
    assert [c.number for c in due] == [change.number] and store.changes_due_for_verification(at(69)) == []
    store.record_verification(change.number, "implemented_as_planned", {"evidence": 1}, at(71))
    store.record_verification(change.number, "not_observed", {}, at(72))  # verified once only
    assert store.get_change(change.number).verification == "implemented_as_planned"
    assert store.changes_due_for_verification(at(80)) == []


def test_webhook_cursor_starts_at_the_newest_event_and_moves_on_delivery(store, fleet):
    store.create_incident(NewIncident("before the endpoint existed", "alice"))
    seq, attempts, _next, error, dead = store.webhook_state("http://127.0.0.1:9/hook")
    assert seq == 1 and attempts == 0 and error is None and dead == 0
    store.create_incident(NewIncident("after", "alice"))
    [event] = store.record_events(after_seq=seq)
    assert event.record == "INC0000002" and event.event_id == "evt-2"
    assert store.webhook_failed("http://127.0.0.1:9/hook", "connection refused", at(1) + timedelta(seconds=5)) == 1
    assert store.webhook_state("http://127.0.0.1:9/hook")[1:4:2] == (1, "connection refused")
    store.webhook_delivered("http://127.0.0.1:9/hook", event.seq)
    assert store.webhook_state("http://127.0.0.1:9/hook")[:2] == (2, 0)
