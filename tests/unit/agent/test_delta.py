"""Delta planning and cutting: which sections changed, what a delta carries, the ledger."""

from __future__ import annotations

import stat

from agent.builder import build_report
from agent.delta import (
    DELTA_STATE_FILE,
    DeltaState,
    SectionRecorder,
    build_delta,
    carried_sections,
    plan_report,
    section_digest,
)
from cmdb.report import Item, Relation, check_report, decode_report, encode_report

from .conftest import RecordedContext
from .fake_inventory import FakeMachine, fake_collectors


def collect(machine: FakeMachine):
    recorder = SectionRecorder()
    report = build_report(RecordedContext(), fake_collectors(machine), observe=recorder)
    return report, recorder.sections


def acked_full(machine: FakeMachine) -> DeltaState:
    report, sections = collect(machine)
    state = DeltaState()
    state.acknowledged({"report_id": report.report_id, "mode": "full",
                        "sections": carried_sections(report, sections)})
    return state


def test_section_digest_ignores_order_and_sees_every_value():
    a = Item(class_="SoftwareInstall", ref="a", identifiers={"package": "a"}, attributes={"x": 1, "y": 2})
    b = Item(class_="SoftwareInstall", ref="b", identifiers={"package": "b"}, attributes={"y": 2, "x": 1})
    rel = [Relation(from_="a", type="INSTALLED_ON", to="computer")]
    assert section_digest([a, b], rel) == section_digest([b, a], rel)
    changed = Item(class_="SoftwareInstall", ref="b", identifiers={"package": "b"}, attributes={"x": 1, "y": 3})
    assert section_digest([a, b], rel) != section_digest([a, changed], rel)
    assert section_digest([a, b], rel) != section_digest([a, b], [])


def test_first_report_is_full_then_unchanged_sections_are_left_out():
    machine = FakeMachine()
    report, sections = collect(machine)
    assert plan_report(DeltaState(), [], report.collectors, sections, 24).mode == "full"

    state = acked_full(machine)
    again, sections = collect(machine)
    plan = plan_report(state, [], again.collectors, sections, 24)
    assert plan.mode == "delta" and plan.base_report_id == state.base_report_id
    assert plan.unchanged == {"fake.hardware", "fake.network", "fake.software"}
    delta = build_delta(again, sections, plan.unchanged, plan.base_report_id)
    check_report(decode_report(encode_report(delta)))
    assert delta.mode == "delta" and delta.base_report_id == state.base_report_id
    assert delta.report_id != again.report_id and delta.relations == []
    # The Computer always, with every identifier, so reconcile finds the machine.
    assert [(i.ref, i.identifiers, i.attributes) for i in delta.items] == [
        ("computer", {"agent_id": RecordedContext.agent_id, "serial": "SN-FAKE-0001"}, {})]
    assert all(s.status == "ok" and s.unchanged for s in delta.collectors.values())


def test_a_changed_section_travels_with_what_identifies_it():
    machine = FakeMachine()
    state = acked_full(machine)
    machine.packages["curl"] = "8.6"
    machine.interfaces["eth0"].append("192.0.2.11")
    report, sections = collect(machine)
    plan = plan_report(state, [], report.collectors, sections, 24)
    assert plan.unchanged == {"fake.hardware"}
    delta = build_delta(report, sections, plan.unchanged, plan.base_report_id)
    check_report(delta)
    refs = {i.ref for i in delta.items}
    assert {"pkg:curl", "pkg:bash", "if:eth0", "ip:192.0.2.11", "computer"} <= refs
    computer = next(i for i in delta.items if i.ref == "computer")
    assert computer.attributes == {} and computer.identifiers["serial"] == "SN-FAKE-0001"
    assert delta.collectors["fake.hardware"].unchanged and not delta.collectors["fake.software"].unchanged


def test_a_dependent_item_brings_its_scope_chain_up_to_the_host():
    """An IP is identified through its interface and host: a section stating only the IP's
    attributes still carries the HAS_IP and HAS_INTERFACE relations and both parents."""
    machine = FakeMachine()
    report, sections = collect(machine)
    only_ip = {"x": sections["fake.network"].__class__(
        digest="d", attributes={"ip:192.0.2.10": frozenset({"address"})}, relations=frozenset())}
    delta = build_delta(report, only_ip | {"fake.network": sections["fake.network"]},
                        {"fake.network"}, "base-0001")
    # "x" is not a collector of the report, so it carries nothing: only the Computer.
    assert [i.ref for i in delta.items] == ["computer"]
    report.collectors["x"] = report.collectors["fake.network"]
    delta = build_delta(report, only_ip, set(), "base-0001")
    check_report(delta)
    assert {i.ref for i in delta.items} == {"computer", "if:eth0", "ip:192.0.2.10"}
    assert {(r.from_, r.type, r.to) for r in delta.relations} == {
        ("computer", "HAS_INTERFACE", "if:eth0"), ("if:eth0", "HAS_IP", "ip:192.0.2.10")}
    interface = next(i for i in delta.items if i.ref == "if:eth0")
    assert interface.attributes == {} and interface.identifiers == {"name": "eth0"}


def test_a_failed_section_is_not_unchanged_and_keeps_its_status():
    machine = FakeMachine()
    state = acked_full(machine)
    machine.broken.add("fake.software")
    report, sections = collect(machine)
    plan = plan_report(state, [], report.collectors, sections, 24)
    assert "fake.software" not in plan.unchanged
    delta = build_delta(report, sections, plan.unchanged, plan.base_report_id)
    assert delta.collectors["fake.software"].status == "failed" and not delta.collectors["fake.software"].unchanged


def test_queued_reports_are_folded_in_so_a_change_that_flips_back_is_sent():
    machine = FakeMachine()
    state = acked_full(machine)
    machine.memory_mb = 16384
    changed, sections = collect(machine)
    plan = plan_report(state, [], changed.collectors, sections, 24)
    delta = build_delta(changed, sections, plan.unchanged, plan.base_report_id)
    queued = [{"report_id": delta.report_id, "mode": "delta", "base_report_id": plan.base_report_id,
               "sections": carried_sections(delta, sections)}]
    machine.memory_mb = 8192  # back, while the first delta still waits in the outbox
    back, sections = collect(machine)
    assert plan_report(state, [], back.collectors, sections, 24).unchanged >= {"fake.hardware"}
    assert "fake.hardware" not in plan_report(state, queued, back.collectors, sections, 24).unchanged
    # A queued full report becomes the base of the next delta.
    queued_full = [{"report_id": "full-queued-1", "mode": "full", "sections": carried_sections(back, sections)}]
    assert plan_report(state, queued_full, back.collectors, sections, 24).base_report_id == "full-queued-1"


def test_full_every_force_full_and_a_damaged_ledger(tmp_path):
    machine = FakeMachine()
    state = acked_full(machine)
    report, sections = collect(machine)
    state.runs_since_full = 22
    assert plan_report(state, [], report.collectors, sections, 24).mode == "delta"
    state.runs_since_full = 23
    assert plan_report(state, [], report.collectors, sections, 24).mode == "full"
    state.runs_since_full = 0
    assert plan_report(state, [], report.collectors, sections, 1).mode == "full"
    state.base_refused(state.base_report_id)
    plan = plan_report(state, [], report.collectors, sections, 24)
    assert plan.mode == "full" and "does not know base" in plan.reason
    assert state.base_report_id is None and state.sections == {}

    state.save(tmp_path)
    assert stat.S_IMODE((tmp_path / DELTA_STATE_FILE).stat().st_mode) == 0o600
    assert DeltaState.load(tmp_path) == state
    (tmp_path / DELTA_STATE_FILE).write_text("{not json")
    assert DeltaState.load(tmp_path).force_full
    assert DeltaState.load(tmp_path / "nowhere") == DeltaState()
