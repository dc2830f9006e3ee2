"""CI merge and its undo (Store.merge_cis, Store.undo_ci_operation): one machine that reconcile saw
as two CIs (its agent's and an SSH scan's, with no identifier in common) is merged, both sources
report again into the one CI, and the merge is undone exactly."""

from __future__ import annotations

import pytest

from cmdb.operations import OPERATOR_SOURCE_KIND, CIOperationRefused, operation_ref
from tests.contract.merge_views import (
    UUID_B,
    agent_view,
    history_length,
    installs_on,
    raw_tables,
    resend,
    snapshot,
    ssh_view,
    two_views,
)


@pytest.fixture
def views(store):
    return two_views(store)


def test_two_sources_made_two_cis_for_one_machine(store, views):
    assert store.count_cis()["Computer"] == 2
    assert set(installs_on(store, views.agent)) == {"bash", "curl", "openssl"}
    assert set(installs_on(store, views.ssh)) == {"bash", "nginx"}


def test_merge_moves_identifiers_attributes_relations_and_dependents(store, views):
    op = store.merge_cis(views.agent, views.ssh, "alice", "same box, seen by ssh")
    assert (op.kind, op.ci_id, op.other_ci, op.actor, op.reason, op.undone_by) == (
        "merge",
        views.agent,
        views.ssh,
        "alice",
        "same box, seen by ssh",
        None,
    )

    absorbed, survivor = store.get_ci(views.ssh), store.get_ci(views.agent)
    assert (absorbed.state, absorbed.merged_into) == ("retired", views.agent)
    assert absorbed.identifiers == [] and absorbed.attributes == {}
    assert store.relationships(views.ssh) == []
    assert survivor.state == "active" and survivor.merged_into is None
    held = {(i.kind, i.value) for i in survivor.identifiers}
    assert {("system_uuid", UUID_B), ("fqdn", "web01.example.com"), ("agent_id", "agent-01")} <= held

    # The survivor's value stays; the absorbed CI's value of the same attribute is an observation;
    # what the survivor lacked moved.
    assert survivor.attributes["hostname"].value == "web01"
    assert survivor.attributes["location"].value == "rack 4"
    hostname = [
        (o.value, o.provenance.source_id, o.current)
        for o in store.observations(views.agent)
        if o.name == "hostname"
    ]
    assert hostname == [("web01", "agent-01", True), ("web01-ssh", "ssh-01", False)]

    # Dependents: the same package, interface, address, disk and OS are one CI each; nginx moved.
    installs = installs_on(store, views.agent)
    assert set(installs) == {"bash", "curl", "openssl", "nginx"}
    assert store.count_cis()["Computer"] == 1 and store.count_cis()["SoftwareInstall"] == 4
    assert store.count_cis()["Interface"] == 2 and store.count_cis()["IPAddress"] == 2
    assert store.count_cis()["Disk"] == 1 and store.count_cis()["OperatingSystem"] == 1
    nginx = store.get_ci(installs["nginx"])
    assert [i.value for i in nginx.identifiers] == [f"{views.agent}/deb:nginx:amd64"]
    assert {a for a, _ in op.dependents} == {
        c.ci_id for c in store.list_cis(state="retired", limit=100) if c.merged_into and c.ci_id != views.ssh
    }
    assert op.moved["dependents_merged"] == len(op.dependents) == 5  # os, disk, eth0, its address, bash

    # The business service that depended on the absorbed CI depends on the survivor.
    assert [r.to_ci for r in store.relationships(views.business, "out")] == [views.agent]

    # History on both, stamped with the operator and the operation.
    rows = store.history(views.ssh)
    merge_rows = [(r.ci_id, r.kind, r.name, r.after) for r in rows if r.kind == "ci.merge"]
    assert merge_rows == [
        (views.ssh, "ci.merge", "merged_into", views.agent),
        (views.agent, "ci.merge", "absorbed", views.ssh),
    ]
    removed = {(r.name, r.before) for r in rows if r.kind == "ident.remove" and r.ci_id == views.ssh}
    assert ("system_uuid", UUID_B) in removed
    added = {(r.name, r.after) for r in store.history(views.agent) if r.kind == "ident.add"}
    assert ("system_uuid", UUID_B) in added
    stamp = next(r.provenance for r in rows if r.kind == "ci.merge")
    assert (stamp.source_kind, stamp.source_id, stamp.report_id) == (
        OPERATOR_SOURCE_KIND,
        "alice",
        operation_ref(op.seq),
    )
    assert store.ci_operations(views.ssh) == store.ci_operations(views.agent) == store.ci_operations()


def test_after_a_merge_both_sources_reconcile_into_the_survivor(store, views):
    store.merge_cis(views.agent, views.ssh, "alice")
    counts = store.count_cis()
    for report in (views.agent_report, views.ssh_report, views.agent_report):
        changes = resend(store, report)
        assert changes.ci_of_ref["computer"] == views.agent
        assert changes.created == [] and changes.conflicts == [] and changes.retired == []
        assert store.count_cis() == counts
    assert set(installs_on(store, views.agent)) == {"bash", "curl", "openssl", "nginx"}
    # What only one source sees still retires when its complete run stops stating it.
    changes = resend(store, views.ssh_report, **_with_packages(views.ssh_report, {"bash": "5.2.15-2"}))
    assert [store.get_ci(c).attributes["name"].value for c in changes.retired] == ["nginx"]
    assert set(installs_on(store, views.agent)) == {"bash", "curl", "openssl"}


def test_undo_restores_the_state_before_the_merge_exactly(store, views):
    before, raw_before, rows = snapshot(store), raw_tables(store), history_length(store)
    op = store.merge_cis(views.agent, views.ssh, "alice")
    assert snapshot(store) != before
    undo = store.undo_ci_operation(op.seq, "bob", "wrong box")
    assert snapshot(store) == before
    assert raw_tables(store) == raw_before
    assert history_length(store) > rows  # history only grows
    assert (undo.kind, undo.undoes, undo.ci_id, undo.other_ci) == ("split", op.seq, views.agent, views.ssh)
    assert store.ci_operations()[0].undone_by == undo.seq
    kinds = [(r.ci_id, r.kind) for r in store.history(views.ssh) if r.kind.startswith("ci.")]
    assert kinds[-2:] == [(views.ssh, "ci.split"), (views.agent, "ci.split")]
    # and both sources reconcile into their own CI again, creating nothing
    for report, host in ((views.agent_report, views.agent), (views.ssh_report, views.ssh)):
        changes = resend(store, report)
        assert changes.ci_of_ref["computer"] == host and changes.created == [] and changes.conflicts == []


def test_undo_after_reports_gives_each_machine_its_own_back(store, views):
    op = store.merge_cis(views.agent, views.ssh, "alice")
    # after the merge the scanner sees a new package and the agent an upgrade
    resend(
        store,
        views.ssh_report,
        **_with_packages(views.ssh_report, {"bash": "5.2.15-2", "nginx": "1.22.1-9", "htop": "3.2.2-2"}),
    )
    resend(
        store,
        views.agent_report,
        **_with_packages(
            views.agent_report, {"bash": "5.2.15-2", "curl": "7.88.1-10", "openssl": "3.0.13-1"}
        ),
    )
    store.undo_ci_operation(op.seq, "alice")
    assert store.get_ci(views.ssh).state == "active" and store.get_ci(views.ssh).merged_into is None
    assert set(installs_on(store, views.ssh)) == {"bash", "nginx"}
    # htop came after the merge: it stays on the survivor until the scanner's next complete run
    assert "htop" in installs_on(store, views.agent)
    installs = installs_on(store, views.agent)
    assert store.get_ci(installs["openssl"]).attributes["version"].value == "3.0.13-1"

    ssh = resend(
        store,
        views.ssh_report,
        **_with_packages(views.ssh_report, {"bash": "5.2.15-2", "nginx": "1.22.1-9", "htop": "3.2.2-2"}),
    )
    assert ssh.ci_of_ref["computer"] == views.ssh
    assert [c.ci_class for c in ssh.created] == ["SoftwareInstall"]  # htop, now on its own machine
    assert set(installs_on(store, views.ssh)) == {"bash", "nginx", "htop"}
    assert set(installs_on(store, views.agent)) == {"bash", "curl", "openssl"}
    agent = resend(store, views.agent_report)
    assert agent.ci_of_ref["computer"] == views.agent and agent.created == []
    assert store.count_cis()["Computer"] == 2


def _with_packages(report, packages):
    fresh = agent_view(packages=packages) if report.source.kind == "agent" else ssh_view(packages=packages)
    items = [i for i in report.items if i.class_ not in ("Software", "SoftwareInstall")]
    items += [i for i in fresh.items if i.class_ in ("Software", "SoftwareInstall")]
    relations = [r for r in report.relations if r.type not in ("INSTALLED_ON", "INSTANCE_OF")]
    relations += [r for r in fresh.relations if r.type in ("INSTALLED_ON", "INSTANCE_OF")]
    return {"items": items, "relations": relations}


def test_a_dry_run_says_what_would_move_and_changes_nothing(store, views):
    before, rows = snapshot(store), history_length(store)
    dry = store.merge_cis(views.agent, views.ssh, "alice", dry_run=True)
    assert dry.dry_run and dry.moved["identifiers_moved"] >= 2 and dry.moved["dependents_merged"] == 5
    assert snapshot(store) == before and history_length(store) == rows and store.ci_operations() == []
    real = store.merge_cis(views.agent, views.ssh, "alice")
    assert real.moved == dry.moved and not real.dry_run
    undo_dry = store.undo_ci_operation(real.seq, "alice", dry_run=True)
    assert undo_dry.undoes == real.seq and store.ci_operations()[0].undone_by is None


def test_a_merge_of_cis_one_source_reported_folds_its_scopes(store):
    """An SSH scanner that reached one machine by two addresses, with nothing to tie them: two CIs,
    both subjects of the scanner's scopes. Merged, the scopes fold into one; undone, they are two."""
    first = reconcile_two = resend  # noqa: F841 - readability of the two calls below
    a = first(store, ssh_view(identifiers={"fqdn": "db01.example.com"}, source_id="ssh-01"))
    b = reconcile_two(
        store,
        ssh_view(
            identifiers={"system_uuid": UUID_B},
            source_id="ssh-01",
            packages={"bash": "5.2.15-2", "postgresql": "15.5-0"},
        ),
    )
    x, y = a.ci_of_ref["computer"], b.ci_of_ref["computer"]
    before, raw_before = snapshot(store), raw_tables(store)
    op = store.merge_cis(x, y, "alice")
    assert op.moved["scopes_folded"] == 4 and "scopes_moved" not in op.moved
    state = store.scope_states("ssh", "ssh-01", [("software", x), ("software", y)])
    assert state[("software", y)].last_run is None and state[("software", x)].last_run is not None
    assert set(installs_on(store, x)) == {"bash", "nginx", "postgresql"}
    store.undo_ci_operation(op.seq, "alice")
    assert snapshot(store) == before and raw_tables(store) == raw_before


@pytest.mark.parametrize(
    "case",
    [
        "self",
        "unknown",
        "class",
        "dependent",
        "merged",
        "actor",
        "long actor",
        "control actor",
        "long reason",
    ],
)
def test_a_refused_merge_says_why_and_changes_nothing(store, views, case):
    install = installs_on(store, views.agent)["bash"]
    if case == "merged":
        store.merge_cis(views.agent, views.ssh, "alice")
    before, ops = snapshot(store), store.ci_operations()
    args = {
        "self": (views.agent, views.agent, "alice", None),
        "unknown": (views.agent, "0" * 32, "alice", None),
        "class": (views.agent, views.business, "alice", None),
        "dependent": (
            install,
            installs_on(store, views.ssh if case != "merged" else views.agent)["bash"],
            "alice",
            None,
        ),
        "merged": (views.agent, views.ssh, "alice", None),
        "actor": (views.agent, views.ssh, "  ", None),
        "long actor": (views.agent, views.ssh, "a" * 129, None),
        "control actor": (views.agent, views.ssh, "alice\x1b[2J", None),
        "long reason": (views.agent, views.ssh, "alice", "x" * 2001),
    }[case]
    words = {
        "self": "into itself",
        "unknown": "no CI",
        "class": "only CIs of one class",
        "dependent": "dependent CI",
        "merged": "was merged into",
        "actor": "--actor",
        "long actor": "at most 128",
        "control actor": "printable",
        "long reason": "at most 2000",
    }[case]
    with pytest.raises(CIOperationRefused, match=words):
        store.merge_cis(*args)
    assert snapshot(store) == before and store.ci_operations() == ops


def test_undo_is_refused_twice_for_an_undo_and_behind_a_later_operation(store, views):
    extra = resend(
        store, agent_view(identifiers={"serial": "SN-C3", "agent_id": "agent-03"}, source_id="agent-03")
    )
    third = extra.ci_of_ref["computer"]
    first = store.merge_cis(views.agent, views.ssh, "alice")
    second = store.merge_cis(views.agent, third, "alice")
    before = snapshot(store)
    with pytest.raises(
        CIOperationRefused,
        match=rf"operation {second.seq} \(merge\) came after.*undo operation "
        rf"{second.seq} first",
    ):
        store.undo_ci_operation(first.seq, "alice")
    assert snapshot(store) == before
    undo_second = store.undo_ci_operation(second.seq, "alice")
    with pytest.raises(CIOperationRefused, match=f"undone already, by operation {undo_second.seq}"):
        store.undo_ci_operation(second.seq, "alice")
    with pytest.raises(CIOperationRefused, match=f"is the undo of operation {second.seq}"):
        store.undo_ci_operation(undo_second.seq, "alice")
    with pytest.raises(CIOperationRefused, match="no CI operation 99"):
        store.undo_ci_operation(99, "alice")
    with pytest.raises(CIOperationRefused, match="positive integer"):
        store.undo_ci_operation(0, "alice")
    store.undo_ci_operation(first.seq, "alice")  # the later one is undone: now it can be
    assert store.count_cis()["Computer"] == 3
    assert [o.undone_by is not None for o in store.ci_operations()] == [True, True, False, False]


def test_as_of_a_time_after_the_merge_the_absorbed_ci_holds_nothing(store, views):
    op = store.merge_cis(views.agent, views.ssh, "alice")
    then = store.ci_as_of(views.ssh, op.at)
    assert then is not None and then.identifiers == [] and then.attributes == {}
    survivor = store.ci_as_of(views.agent, op.at)
    assert ("system_uuid", UUID_B) in {(i.kind, i.value) for i in survivor.identifiers}


def test_a_change_set_computed_before_a_merge_is_refused_after_it(store):
    """The race of a reconcile worker with `fleetgraph ci merge` in another process: a change set
    computed before the merge committed is refused (transient) and nothing of it is written."""
    from cmdb.store import ChangeSetStale
    from reconcile.engine import compute_changes, reconcile_report
    from tests.integration.collector.harness import make_report

    first = make_report(hostname="a", serial="SN-A")
    second = make_report(hostname="b", serial="SN-B")
    reconcile_report(store, first)
    reconcile_report(store, second)
    a, b = (store.list_cis("Computer", attributes={"hostname": h})[0].ci_id for h in ("a", "b"))
    stale = compute_changes(store, make_report(hostname="b", serial="SN-B", memory_mb=1))
    store.merge_cis(a, b, "alice", "one machine")
    before = store.history(a, limit=10_000)
    with pytest.raises(ChangeSetStale):
        store.apply(stale)
    assert ChangeSetStale in store.transient_errors or issubclass(ChangeSetStale, store.transient_errors)
    assert store.history(a, limit=10_000) == before
    fresh = reconcile_report(store, make_report(hostname="b", serial="SN-B", memory_mb=1))
    assert fresh.ci_of_ref["host"] == a
