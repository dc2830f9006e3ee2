"""Scoped staleness (reconcile.staleness) on the real SQLite store."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from cmdb.report import CollectorStatus, Item, Report, decode_report, encode_report
from reconcile.engine import compute_changes, reconcile_report
from tests.unit.reconcile.reports import again, machine_report

PACKAGES = {"bash": "5.2.15-2", "coreutils": "9.1-1", "telnet": "0.17-44"}
WITHOUT_TELNET = {"bash": "5.2.15-2", "coreutils": "9.1-1"}
TELNET = "pkg:deb:telnet:amd64"


def later(report: Report, **kwargs) -> Report:
    """Another run of the same machine, an hour after `report`."""
    return machine_report(collected_at=report.collected_at + timedelta(hours=1), **kwargs)


def delta(report: Report, carried: tuple[str, ...]) -> Report:
    """A delta of `report`: the collectors in `carried` send their sections, the others are unchanged
    (the Computer is always there, as the agent sends it)."""
    items = [i for i in report.items if i.collector in carried or i.ref == "computer"]
    refs = {i.ref for i in items}
    relations = [r for r in report.relations if r.from_ in refs and r.to in refs]
    collectors = {name: status if name in carried else CollectorStatus(status="ok", unchanged=True)
                  for name, status in report.collectors.items()}
    return decode_report(encode_report(msgspec.structs.replace(
        report, mode="delta", base_report_id="rpt-base-000001", collectors=collectors, items=items,
        relations=relations)))


def history_kinds(store, ci_id):
    return [(r.kind, r.before, r.after) for r in store.history(ci_id) if r.kind in ("ci.retire", "ci.reactivate")]


def rels_of(store, ci_id, state="active"):
    return {(r.type, r.from_ci, r.to_ci) for r in store.relationships(ci_id) if r.state == state}


def test_an_uninstalled_package_is_retired_with_its_relations_at_the_next_complete_run(store):
    report = machine_report(packages=PACKAGES)
    first = reconcile_report(store, report)
    telnet = first.ci_of_ref[TELNET]
    relations = rels_of(store, telnet)
    assert {t for t, _, _ in relations} == {"INSTALLED_ON", "INSTANCE_OF"}

    changes = reconcile_report(store, later(report, packages=WITHOUT_TELNET))
    assert changes.retired == [telnet]
    assert {(r.type, r.from_ci, r.to_ci) for r in changes.relations if r.action == "retire"} == relations
    assert store.get_ci(telnet).state == "retired" and rels_of(store, telnet) == set()
    assert history_kinds(store, telnet) == [("ci.retire", "active", "retired")]
    assert [(r.kind, r.before, r.after) for r in store.history(telnet, name="INSTALLED_ON")][-1] == (
        "rel.retire", "active", "retired")
    # the Software product and the rest of the machine stay
    assert store.get_ci(first.ci_of_ref["sw:deb:telnet"]).state == "active"
    assert store.get_ci(first.ci_of_ref["computer"]).state == "active"
    assert store.count_cis()["SoftwareInstall"] == 2


def test_with_two_runs_to_miss_it_retires_at_the_second(store):
    first = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, first, retire_after_missed_runs=2).ci_of_ref[TELNET]
    second = later(first, packages=WITHOUT_TELNET)
    assert reconcile_report(store, second, retire_after_missed_runs=2).retired == []
    assert store.get_ci(telnet).state == "active"
    third = reconcile_report(store, later(second, packages=WITHOUT_TELNET), retire_after_missed_runs=2)
    assert third.retired == [telnet] and store.get_ci(telnet).state == "retired"


def test_a_package_stated_again_before_the_threshold_starts_counting_over(store):
    first = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, first, retire_after_missed_runs=2).ci_of_ref[TELNET]
    second = later(first, packages=WITHOUT_TELNET)
    third = later(second, packages=PACKAGES)
    fourth = later(third, packages=WITHOUT_TELNET)
    for report in (second, third, fourth):
        assert reconcile_report(store, report, retire_after_missed_runs=2).retired == []
    assert store.get_ci(telnet).state == "active"


@pytest.mark.parametrize("status", ["failed", "not_applicable", "absent"])
def test_a_failed_or_missing_software_run_retires_and_counts_nothing(store, status):
    first = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, first).ci_of_ref[TELNET]
    broken = later(first, packages={}, statuses={"software": "ok" if status == "absent" else status})
    if status == "absent":
        collectors = {k: v for k, v in broken.collectors.items() if k != "software"}
        broken = decode_report(encode_report(msgspec.structs.replace(broken, collectors=collectors)))
    changes = reconcile_report(store, broken)
    assert changes.retired == [] and not [r for r in changes.relations if r.action == "retire"]
    assert not [m for m in changes.seen_marks if m.collector == "software"]
    assert store.get_ci(telnet).state == "active"


def test_an_unchanged_section_retires_nothing_and_counts_as_seen(store):
    first = machine_report(packages=PACKAGES)
    first_changes = reconcile_report(store, first, retire_after_missed_runs=2)
    telnet, host = first_changes.ci_of_ref[TELNET], first_changes.ci_of_ref["computer"]
    second = later(first, packages=WITHOUT_TELNET)
    reconcile_report(store, second, retire_after_missed_runs=2)  # telnet missed once
    unchanged = delta(later(second, packages=WITHOUT_TELNET), carried=())
    changes = reconcile_report(store, unchanged, retire_after_missed_runs=2)
    assert changes.retired == [] and changes.seen_marks == [] and store.get_ci(telnet).state == "active"
    state = store.scope_states("agent", "agent-01", [("software", host)])[("software", host)]
    missed = {r.ci_id: (r.missed, r.last_seen_run) for r in state.records if not r.rel_type}
    bash = first_changes.ci_of_ref["pkg:deb:bash:amd64"]
    assert missed[bash] == (0, unchanged.collected_at)  # seen again, without re-stating it
    assert missed[telnet] == (1, first.collected_at)  # not counted up by an unchanged section


def test_a_delta_carrying_the_software_section_without_the_package_retires_it(store):
    first = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, first).ci_of_ref[TELNET]
    changes = reconcile_report(store, delta(later(first, packages=WITHOUT_TELNET), carried=("software",)))
    assert changes.retired == [telnet] and store.get_ci(telnet).state == "retired"
    # the sections it did not carry lose nothing
    assert store.count_cis()["Interface"] == 1 and store.count_cis()["Disk"] == 1


def test_a_reinstalled_package_is_reactivated_with_its_identity(store):
    first = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, first).ci_of_ref[TELNET]
    second = later(first, packages=WITHOUT_TELNET)
    reconcile_report(store, second)
    third = later(second, packages=PACKAGES)
    back = reconcile_report(store, third)
    assert back.ci_of_ref[TELNET] == telnet and back.reactivated == [telnet] and not back.created
    assert store.get_ci(telnet).state == "active"
    assert {t for t, _, _ in rels_of(store, telnet)} == {"INSTALLED_ON", "INSTANCE_OF"}
    assert history_kinds(store, telnet) == [("ci.retire", "active", "retired"),
                                            ("ci.reactivate", "retired", "active")]
    # and it is tracked again: the next complete run without it retires it again
    assert reconcile_report(store, later(third, packages=WITHOUT_TELNET)).retired == [telnet]


def test_a_ci_seen_by_two_sources_retires_only_when_both_missed_it(store):
    agent = machine_report(packages=PACKAGES)
    telnet = reconcile_report(store, agent).ci_of_ref[TELNET]
    ssh = machine_report(packages=PACKAGES, source_kind="ssh", source_id="scanner-1",
                         collected_at=agent.collected_at + timedelta(minutes=10))
    assert reconcile_report(store, ssh).ci_of_ref[TELNET] == telnet
    assert reconcile_report(store, later(agent, packages=WITHOUT_TELNET)).retired == []
    assert store.get_ci(telnet).state == "active"
    changes = reconcile_report(store, later(ssh, packages=WITHOUT_TELNET, source_kind="ssh", source_id="scanner-1"))
    assert changes.retired == [telnet] and store.get_ci(telnet).state == "retired"


def test_a_removed_interface_retires_with_its_addresses(store):
    first = machine_report(interfaces={"eth0": ["10.0.0.5"], "eth1": ["10.0.1.5", "10.0.1.6"]})
    applied = reconcile_report(store, first)
    eth1 = applied.ci_of_ref["if:eth1"]
    ips = sorted(applied.ci_of_ref[f"ip:10.0.1.{n}"] for n in (5, 6))
    changes = reconcile_report(store, later(first, interfaces={"eth0": ["10.0.0.5"]}))
    assert sorted(changes.retired) == sorted([eth1, *ips])
    assert {t for t, _, _ in {(r.type, r.from_ci, r.to_ci) for r in changes.relations if r.action == "retire"}} \
        == {"HAS_INTERFACE", "HAS_IP"}
    assert store.count_cis() == {**store.count_cis(), "Interface": 1, "IPAddress": 1}
    for ip in ips:
        assert history_kinds(store, ip) == [("ci.retire", "active", "retired")]


def test_reconciling_a_report_twice_changes_nothing_the_second_time(store):
    first = machine_report(packages=PACKAGES)
    reconcile_report(store, first)
    second = later(first, packages=WITHOUT_TELNET)
    reconcile_report(store, second)
    rows = sum(len(store.history(c.ci_id)) for c in store.list_cis(state=None, limit=10_000))
    replay = reconcile_report(store, second)
    assert replay.is_empty and replay.seen_marks == [] and replay.retired == []
    late = reconcile_report(store, first)  # an older report delivered late: brings nothing back
    assert late.retired == late.reactivated == [] and late.seen_marks == [] and late.is_empty
    assert store.count_cis(state="retired") == {"SoftwareInstall": 1}
    assert sum(len(store.history(c.ci_id)) for c in store.list_cis(state=None, limit=10_000)) == rows


def test_an_identical_run_writes_no_history_and_no_records(store):
    report = machine_report(packages=PACKAGES)
    reconcile_report(store, report)
    changes = compute_changes(store, again(report))
    assert changes.is_empty and changes.seen_marks == [] and changes.scope_runs


def test_items_without_a_collector_and_hosts_are_never_retired(store):
    first = machine_report(packages=PACKAGES)
    extra = Item(class_="Disk", ref="disk:sdz", identifiers={"name": "sdz"}, attributes={"size_bytes": 1})
    with_extra = decode_report(encode_report(msgspec.structs.replace(
        first, items=[*first.items, extra],
        relations=[*first.relations, msgspec.convert({"from": "computer", "type": "HAS_DISK", "to": "disk:sdz"},
                                                     type(first.relations[0]))])))
    applied = reconcile_report(store, with_extra)
    changes = reconcile_report(store, later(first, packages=PACKAGES))
    assert applied.ci_of_ref["disk:sdz"] not in changes.retired
    assert store.get_ci(applied.ci_of_ref["disk:sdz"]).state == "active"


def test_a_source_reporting_hosts_one_by_one_retires_nothing(store):
    """Scopes are per host: a scanner's complete report about one host says nothing about another."""
    a = machine_report(identifiers={"serial": "SN-A", "hostname": "a"}, source_kind="ssh", source_id="scanner-1")
    b = machine_report(identifiers={"serial": "SN-B", "hostname": "b"}, source_kind="ssh", source_id="scanner-1",
                       packages={"bash": "5.2.15-2"}, collected_at=a.collected_at + timedelta(minutes=5))
    reconcile_report(store, a)
    assert reconcile_report(store, b).retired == []
    assert store.count_cis(state="retired") == {}
