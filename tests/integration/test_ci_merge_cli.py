"""`fleetgraph ci merge|split|undo|operations` through the real CLI (a subprocess) on a real store
that reconcile filled: one machine seen as two CIs (merge), two VMs seen as one (split)."""

from __future__ import annotations

import json

import pytest

from cmdb.backends import open_store, sqlite_url
from reconcile.engine import reconcile_report
from tests.contract.merge_views import installs_on, raw_tables, resend, two_views
from tests.unit.reconcile.reports import machine_report

from .lab import fleetgraph


@pytest.fixture
def cmdb(tmp_path):
    """(store URL, TwoViews): the agent's CI and the SSH scan's CI of one machine."""
    url = sqlite_url(tmp_path / "cmdb.sqlite")
    store = open_store(url)
    views = two_views(store)
    store.close()
    return url, views


def _state(url: str) -> dict:
    store = open_store(url)
    try:
        return {"tables": raw_tables(store), "operations": store.ci_operations()}
    finally:
        store.close()


def test_merge_dry_run_merge_show_history_operations_and_undo(cmdb):
    url, views = cmdb
    before = _state(url)
    dry = fleetgraph("ci", "merge", views.agent[:24], views.ssh[:24], "--dry-run", "--store", url)
    assert (
        f"would merge CI {views.ssh} (Computer web01-ssh) into {views.agent} (Computer web01)" in dry.stdout
    )
    assert "dependent CIs merged" in dry.stdout and "(dry run: nothing was changed)" in dry.stdout
    assert _state(url) == before

    done = fleetgraph(
        "ci", "merge", views.agent, views.ssh, "--reason", "one box", "--actor", "alice", "--store", url
    )
    assert (
        "merged CI" in done.stdout
        and ": operation 1" in done.stdout
        and "fleetgraph ci undo 1" in done.stdout
    )
    shown = json.loads(fleetgraph("ci", "show", views.ssh[:24], "--json", "--store", url).stdout)
    assert (shown["state"], shown["merged_into"], shown["identifiers"]) == ("retired", views.agent, [])
    assert f"merged into {views.agent}" in fleetgraph("ci", "show", views.ssh, "--store", url).stdout
    history = json.loads(fleetgraph("ci", "history", views.ssh, "--json", "--store", url).stdout)
    merge_rows = [r for r in history if r["kind"] == "ci.merge"]
    assert {r["source"] for r in merge_rows} == {"operator:alice"} and merge_rows[0][
        "report_id"
    ] == "ci-operation-1"

    listed = json.loads(fleetgraph("ci", "operations", views.ssh[:24], "--json", "--store", url).stdout)
    assert [(o["seq"], o["kind"], o["ci_id"], o["other_ci"], o["actor"], o["reason"]) for o in listed] == [
        (1, "merge", views.agent, views.ssh, "alice", "one box")
    ]
    assert listed[0]["moved"]["dependents_merged"] == 5

    undo = fleetgraph("ci", "undo", "1", "--actor", "bob", "--store", url)
    assert (
        f"undid operation 1, splitting CI {views.ssh} back out of {views.agent}: operation 2" in undo.stdout
    )
    assert _state(url)["tables"] == before["tables"]
    table = fleetgraph("ci", "operations", "--store", url).stdout
    assert "undone by 2" in table and "undoes 1" in table
    again = fleetgraph("ci", "undo", "1", "--store", url, check=False)
    assert again.returncode == 2 and "undone already, by operation 2" in again.stderr


def test_refusals_exit_2_say_why_and_change_nothing(cmdb):
    url, views = cmdb
    store = open_store(url)
    install = installs_on(store, views.agent)["bash"]
    store.close()
    before = _state(url)
    cases = [
        (("ci", "merge", views.agent, "ffff"), "no CI with id 'ffff'"),
        (("ci", "merge", views.agent, "01"), "matches several CIs"),
        (("ci", "merge", views.agent, "'; DROP TABLE ci; --"), "is not a CI id"),
        (("ci", "merge", views.agent, views.agent), "into itself"),
        (("ci", "merge", views.agent, views.business), "only CIs of one class"),
        (("ci", "merge", install, views.agent), "dependent CI"),
        (("ci", "merge", views.agent, views.ssh, "--actor", "eve\x1b[2J"), "printable"),
        (("ci", "merge", views.agent, views.ssh, "--reason", "x" * 5000), "at most 2000"),
        (("ci", "split", views.agent, "--identifier", "serial=nope"), "has no identifier serial=nope"),
        (("ci", "split", views.agent, "--identifier", "no-equals-sign"), "expected KIND=VALUE"),
        (
            ("ci", "split", views.agent, "--identifier", "hostname='; DROP TABLE ci; --"),
            "has no identifier hostname=",
        ),
        (
            ("ci", "split", views.agent, "--identifier", "hostname=web01", "--source", "agent"),
            "expected KIND:ID",
        ),
        (
            ("ci", "split", views.agent, "--identifier", "hostname=web01", "--source", "snmp:nobody"),
            "has no staleness scope",
        ),
        (("ci", "undo", "7"), "no CI operation 7"),
        (("ci", "undo", "-3"), "positive integer"),
        (("ci", "undo", "one"), "invalid int value"),
        (("ci", "operations", "ffff"), "no CI with id"),
    ]
    for argv, words in cases:
        out = fleetgraph(*argv, "--store", url, check=False)
        assert out.returncode == 2 and words in out.stderr, (argv, out.returncode, out.stderr)
    assert _state(url) == before
    missing = fleetgraph("ci", "merge", views.agent, views.ssh, "--store", url + ".missing", check=False)
    assert missing.returncode == 2 and "no CMDB at" in missing.stderr


def test_split_a_golden_image_clone_off_and_its_reports_follow(tmp_path):
    """Two VMs cloned with the agent's id: reconcile made one CI. Split off the second VM's MAC and
    hostname: its agent's staleness scopes and the package only it has move along, and its next
    report lands on the new CI."""
    url = sqlite_url(tmp_path / "cmdb.sqlite")
    store = open_store(url)
    vms = [
        machine_report(
            identifiers={"agent_id": "golden-0001", "mac": [f"00:1a:2b:3c:4e:0{n}"], "hostname": f"vm{n}"},
            attributes={"hostname": f"vm{n}"},
            packages={"bash": "5.2.15-2", **({"nginx": "1.22.1-9"} if n == 2 else {})},
            interfaces={},
            disks=(),
            source_id=f"agent-vm{n}",
        )
        for n in (1, 2)
    ]
    host = {reconcile_report(store, vm).ci_of_ref["computer"] for vm in vms}.pop()
    store.close()

    out = json.loads(
        fleetgraph(
            "ci",
            "split",
            host[:24],
            "--identifier",
            "mac=00:1a:2b:3c:4e:02",
            "--identifier",
            "hostname=vm2",
            "--json",
            "--store",
            url,
        ).stdout
    )
    new = out["other_ci"]
    assert out["kind"] == "split" and out["moved"]["identifiers_moved"] == 2
    assert out["moved"]["scopes_moved"] >= 1 and out["moved"]["dependents_moved"] == 1  # nginx

    store = open_store(url)
    try:
        assert set(installs_on(store, new)) == {"nginx"} and set(installs_on(store, host)) == {"bash"}
        second = resend(store, vms[1])
        assert second.ci_of_ref["computer"] == new
        assert [c.ci_class for c in second.created] == [
            "OperatingSystem",
            "SoftwareInstall",
        ]  # its own os, bash
        assert resend(store, vms[0]).ci_of_ref["computer"] == host
        assert set(installs_on(store, new)) == {"bash", "nginx"} and set(installs_on(store, host)) == {"bash"}
    finally:
        store.close()
