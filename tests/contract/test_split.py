"""CI split (Store.split_ci) and its undo: two VMs cloned from one image kept the agent's id, so
reconcile took them for one machine. Splitting off the second VM's MAC and hostname gives it its
own CI, with its agent's staleness scopes and what only that agent saw."""

from __future__ import annotations

import pytest

from cmdb.operations import CIOperationRefused
from tests.contract.merge_views import installs_on, resend, snapshot
from tests.unit.reconcile.reports import machine_report

VM2_KEYS = [("mac", "00:1a:2b:3c:4e:02"), ("hostname", "vm2")]


def clone(n: int, **changes):
    args = dict(
        identifiers={"agent_id": "golden-0001", "mac": [f"00:1a:2b:3c:4e:0{n}"], "hostname": f"vm{n}"},
        attributes={"hostname": f"vm{n}"},
        packages={"bash": "5.2.15-2", **({"nginx": "1.22.1-9"} if n == 2 else {"vim": "9.0-1"})},
        interfaces={"eth0": [f"10.0.0.{n}"]},
        disks=(),
        source_id=f"agent-vm{n}",
    )
    args.update(changes)
    return machine_report(**args)


@pytest.fixture
def merged_clones(store):
    hosts = {resend(store, clone(n)).ci_of_ref["computer"] for n in (1, 2)}
    assert len(hosts) == 1
    return hosts.pop()


def test_split_moves_identifiers_scopes_and_what_only_that_source_saw(store, merged_clones):
    host = merged_clones
    assert set(installs_on(store, host)) == {"bash", "vim", "nginx"}
    op = store.split_ci(host, VM2_KEYS, "alice", "cloned VM")
    new = op.other_ci
    assert (op.kind, op.ci_id, op.actor, op.reason) == ("split", host, "alice", "cloned VM")
    assert sorted((i.kind, i.value) for i in store.get_ci(new).identifiers) == sorted(VM2_KEYS)
    assert not {(i.kind, i.value) for i in store.get_ci(host).identifiers} & set(VM2_KEYS)
    # agent-vm2 bound only these identifiers: its scopes moved, and nginx (only it saw) with them;
    # bash, seen by both agents, stays.
    assert op.moved["scopes_moved"] >= 1 and op.moved["identifiers_moved"] == 2
    assert set(installs_on(store, new)) == {"nginx"} and set(installs_on(store, host)) == {"bash", "vim"}
    nginx = store.get_ci(installs_on(store, new)["nginx"])
    assert [i.value for i in nginx.identifiers] == [f"{new}/deb:nginx:amd64"]
    kinds = [(r.ci_id, r.kind, r.name) for r in store.history(new) if r.kind in ("ci.create", "ci.split")]
    assert kinds == [
        (new, "ci.create", None),
        (host, "ci.split", "split_off"),
        (new, "ci.split", "split_from"),
    ]

    # each VM's next report lands on its own CI: the second VM's address moved with the split, its
    # interface, OS and bash are new CIs of its own
    second = resend(store, clone(2))
    assert second.ci_of_ref["computer"] == new
    assert sorted(c.ci_class for c in second.created) == ["Interface", "OperatingSystem", "SoftwareInstall"]
    address = second.ci_of_ref["ip:10.0.0.2"]
    assert address in {c.ci_id for c in store.list_cis("IPAddress", state=None)}
    # the address hung off the original's eth0 until the second VM's complete run said otherwise
    assert [r.from_ci for r in store.relationships(address, "in", "HAS_IP")] == [second.ci_of_ref["if:eth0"]]
    first = resend(store, clone(1))
    assert first.ci_of_ref["computer"] == host and first.created == []
    assert set(installs_on(store, host)) == {"bash", "vim"}
    assert set(installs_on(store, new)) == {"bash", "nginx"}


def test_sources_can_be_named_and_a_dry_run_changes_nothing(store, merged_clones):
    host = merged_clones
    before = snapshot(store)
    dry = store.split_ci(host, VM2_KEYS[:1], "alice", sources=[], dry_run=True)
    assert dry.dry_run and "scopes_moved" not in dry.moved and store.ci_operations() == []
    assert snapshot(store) == before
    op = store.split_ci(host, VM2_KEYS[:1], "alice", sources=[])  # only the MAC, no scope
    assert "scopes_moved" not in op.moved and installs_on(store, op.other_ci) == {}
    store.undo_ci_operation(op.seq, "alice")
    assert snapshot(store, frozenset({op.other_ci})) == before
    assert store.get_ci(op.other_ci).merged_into == host


@pytest.mark.parametrize(
    "case", ["not held", "every identifier", "unknown source", "dependent", "merged", "none"]
)
def test_a_refused_split_says_why_and_changes_nothing(store, merged_clones, case):
    host = merged_clones
    if case == "merged":
        other = resend(
            store, clone(3, identifiers={"serial": "SN-3"}, attributes={"manufacturer": "Dell Inc."})
        )
        store.merge_cis(host, other.ci_of_ref["computer"], "alice")
        target, keys = other.ci_of_ref["computer"], [("serial", "dell|SN-3")]
    else:
        target, keys = host, VM2_KEYS
    everything = [(i.kind, i.value) for i in store.get_ci(host).identifiers]
    bash = installs_on(store, host)["bash"]
    args, words = {
        "not held": ((host, [("mac", "00:00:5e:00:53:01")]), "has no identifier mac=00:00:5e:00:53:01"),
        "every identifier": ((host, everything), "leave at least one identifier"),
        "unknown source": ((host, keys), "has no staleness scope"),
        "dependent": ((bash, [("package", f"{host}/deb:bash:amd64")]), "dependent CI"),
        "merged": ((target, keys), "was merged into"),
        "none": ((host, []), "at least one identifier"),
    }[case]
    before, ops = snapshot(store), store.ci_operations()
    sources = [("snmp", "nobody")] if case == "unknown source" else None
    with pytest.raises(CIOperationRefused, match=words):
        store.split_ci(*args, "alice", sources=sources)
    assert snapshot(store) == before and store.ci_operations() == ops
