"""The fast path's part of the store contract (cmdb.fingerprints): what `apply` does with a change
set's fingerprint fields, and the reads reconcile's fast path makes. A backend without the
fingerprint reads is reconciled by the full path and skips this file."""

from __future__ import annotations

import pytest

from cmdb.changes import AttributeChange, ChangeSet, ItemFingerprint, RelationChange, ScopeDigest, SeenMark
from cmdb.fingerprints import FingerprintStore
from tests.contract.fleet import HOST_ATTRIBUTES, Fleet, at, provenance

DIGEST = bytes(range(16))


@pytest.fixture
def fp_store(store):
    if not isinstance(store, FingerprintStore):
        pytest.skip("this backend has no fingerprint reads: the full path reconciles it")
    return store


def write_fingerprints(store, fleet: Fleet, minutes: float = 10, report_id: str = "report-0002") -> None:
    store.apply(ChangeSet(provenance(minutes, report_id, source_id="agent-web-01"), fingerprints=[
        ItemFingerprint("computer", DIGEST, fleet.host), ItemFingerprint("pkg:openssl", DIGEST, fleet.install, fleet.host)]))


def test_written_fingerprints_are_read_back_with_their_stamp(fp_store, fleet):
    write_fingerprints(fp_store, fleet)
    rows = fp_store.item_fingerprints("agent", "agent-web-01")
    assert rows == {"computer": (DIGEST, fleet.host, at(10)), "pkg:openssl": (DIGEST, fleet.install, at(10))}
    assert fp_store.item_fingerprints("agent", "agent-web-01", ["computer", "nope"]) == {
        "computer": (DIGEST, fleet.host, at(10))}
    assert fp_store.item_fingerprints("agent", "another-agent") == {}
    (stamp,) = fp_store.confirmations([fleet.host])[fleet.host]
    assert (stamp.source_kind, stamp.source_id, stamp.report_id, stamp.confirmed_at) == \
        ("agent", "agent-web-01", "report-0002", at(10))


def test_a_whole_ci_confirmation_moves_the_stamp_not_the_values(fp_store, fleet):
    write_fingerprints(fp_store, fleet)
    pairs = [(fleet.host, name) for name in HOST_ATTRIBUTES]
    fp_store.apply(ChangeSet(provenance(60, "report-0003", source_id="agent-web-01"), confirmed=pairs,
                             fingerprint_confirms=[("computer", fleet.host)]))
    assert fp_store.confirmations([fleet.host])[fleet.host][0].confirmed_at == at(60)
    hostname = fp_store.get_ci(fleet.host).attributes["hostname"].provenance
    assert (hostname.report_id, hostname.observed_at) == ("report-0001", at(0))  # carried by the stamp
    late = ChangeSet(provenance(30, "report-late", source_id="agent-web-01"), confirmed=pairs,
                     fingerprint_confirms=[("computer", fleet.host)])
    fp_store.apply(late)
    (stamp,) = fp_store.confirmations([fleet.host])[fleet.host]
    assert (stamp.report_id, stamp.confirmed_at) == ("report-0003", at(60))  # never moved back
    # A confirmation naming a CI its row does not hold is written value by value instead.
    fp_store.apply(ChangeSet(provenance(90, "report-0004", source_id="agent-web-01"), confirmed=pairs,
                             fingerprint_confirms=[("computer", fleet.os)]))
    assert fp_store.get_ci(fleet.host).attributes["hostname"].provenance.observed_at == at(90)


def test_changing_a_ci_drops_every_fingerprint_of_it_into_its_values(fp_store, fleet):
    write_fingerprints(fp_store, fleet)
    fp_store.apply(ChangeSet(provenance(60, "report-0003", source_id="agent-web-01"),
                             fingerprint_confirms=[("computer", fleet.host)]))
    fp_store.apply(ChangeSet(provenance(90, "report-ssh", kind="ssh", source_id="ssh-1"),
                             attributes=[AttributeChange(fleet.host, "kernel", None, "6.1")]))
    assert "computer" not in fp_store.item_fingerprints("agent", "agent-web-01")
    assert "pkg:openssl" in fp_store.item_fingerprints("agent", "agent-web-01")  # another CI's stays
    assert fleet.host not in fp_store.confirmations([fleet.host])
    ram = fp_store.get_ci(fleet.host).attributes["ram_mb"].provenance
    assert (ram.report_id, ram.observed_at) == ("report-0003", at(60))  # the stamp went into the values


def test_dropped_fingerprints_go_with_their_stamp_written_into_the_values(fp_store, fleet):
    write_fingerprints(fp_store, fleet, minutes=10)
    fp_store.apply(ChangeSet(provenance(20, "report-0003", source_id="agent-web-01"),
                             fingerprints_dropped=["pkg:openssl"]))
    assert "pkg:openssl" not in fp_store.item_fingerprints("agent", "agent-web-01")
    version = fp_store.get_ci(fleet.install).attributes["version"].provenance
    assert (version.report_id, version.observed_at) == ("report-0002", at(10))


def test_retiring_a_ci_drops_its_fingerprints(fp_store, fleet):
    write_fingerprints(fp_store, fleet)
    fp_store.apply(ChangeSet(provenance(30), retired=[fleet.install],
                             relations=[RelationChange("INSTALLED_ON", fleet.install, fleet.host, "retire")]))
    assert "pkg:openssl" not in fp_store.item_fingerprints("agent", "agent-web-01")


def test_active_relations_from(fp_store, fleet):
    assert fp_store.active_relations_from([fleet.install]) == {
        ("INSTALLED_ON", fleet.install, fleet.host), ("INSTANCE_OF", fleet.install, fleet.software)}
    fp_store.apply(ChangeSet(provenance(30), relations=[RelationChange("INSTANCE_OF", fleet.install,
                                                                       fleet.software, "retire")]))
    assert fp_store.active_relations_from([fleet.install, fleet.os]) == {
        ("INSTALLED_ON", fleet.install, fleet.host), ("RUNS_ON", fleet.os, fleet.host)}
    assert fp_store.active_relations_from([]) == set()


def test_relations_seen_by_ci_refresh_every_active_relation_out_of_it(fp_store, fleet):
    seen = [("INSTALLED_ON", fleet.install, fleet.host), ("INSTANCE_OF", fleet.install, fleet.software)]
    fp_store.apply(ChangeSet(provenance(45), relations_seen=seen, relations_seen_from=[fleet.install]))
    assert {r.last_seen for r in fp_store.relationships(fleet.install, "out")} == {at(45)}
    assert fp_store.relationships(fleet.os, "out")[0].last_seen == at(0)


def test_scope_digests_hold_until_what_the_scope_saw_retires(fp_store, fleet):
    source = dict(kind="agent", source_id="agent-web-01")
    fp_store.apply(ChangeSet(provenance(10, **source), scope_runs=[("software", fleet.host)],
                             seen_marks=[SeenMark("software", fleet.host, fleet.install, "", "", 0, at(10))],
                             scope_digests=[ScopeDigest("software", fleet.host, DIGEST)]))
    assert fp_store.scope_digests("agent", "agent-web-01") == {("software", fleet.host): DIGEST}
    fp_store.apply(ChangeSet(provenance(20, **source), scope_runs=[("software", fleet.host)],
                             scope_digests=[ScopeDigest("software", fleet.host, None)]))
    assert fp_store.scope_digests("agent", "agent-web-01") == {}
    fp_store.apply(ChangeSet(provenance(30, **source), scope_digests=[ScopeDigest("software", fleet.host, DIGEST)]))
    fp_store.apply(ChangeSet(provenance(40, "report-x", kind="ssh", source_id="ssh-1"), retired=[fleet.install]))
    assert fp_store.scope_digests("agent", "agent-web-01") == {}  # a record of the scope went
