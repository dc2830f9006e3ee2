"""The reconcile fast path (reconcile.fastpath) on the real SQLite store: what it skips, the stamps
it keeps instead of each value's observed time, and every way its premise is dropped. That the
outcome never differs from the full path is tests/unit/reconcile/test_fastpath_equivalence.py."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import msgspec
import pytest

from cmdb.backends.sqlite_fingerprint import forget_fingerprints
from cmdb.report import Item, decode_report, encode_report
from reconcile.engine import compute_changes, reconcile_report
from reconcile.fastpath import FAST_PATH_ENV, FINGERPRINT_FORMAT, item_digest
from reconcile.precedence import PrecedenceTable
from tests.unit.reconcile.conftest import CountingStore
from tests.unit.reconcile.reports import DEFAULT_ATTRIBUTES, again, machine_report, synthetic_packages


@pytest.fixture(autouse=True)
def fast_path_on(monkeypatch):
    """These tests are about the fast path: on, whatever the environment says."""
    monkeypatch.delenv(FAST_PATH_ENV, raising=False)


def rows(store, where: str = "1", params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(f"SELECT ref, ci_id, grouped FROM fingerprint WHERE {where} ORDER BY ref", params).fetchall()
    finally:
        conn.close()


def with_item(report, ref: str, **changes):
    items = [msgspec.structs.replace(i, **changes) if i.ref == ref else i for i in report.items]
    return decode_report(encode_report(msgspec.structs.replace(report, items=items)))


def test_a_no_change_report_skips_identification_reads_and_diff(store):
    first = machine_report(packages=synthetic_packages(50))
    reconcile_report(store, first)
    assert len(rows(store)) == len(first.items)  # a full report writes every item's fingerprint
    counting = CountingStore(store)
    changes = compute_changes(counting, again(first))
    assert changes.is_empty
    # Only the Computer (weak keys: always identified) is looked up, and its values are not read.
    assert {args[0] for name, args in counting.calls if name == "resolve_identifiers"} == {"Computer"}
    assert counting.count("current_attributes") == 0 and counting.count("relationships_among") == 0
    assert len(changes.fingerprint_confirms) == len(first.items)
    assert len(changes.confirmed) == sum(len(i.attributes) for i in first.items)
    assert len(changes.relations_seen) == len(first.relations) and len(changes.seen) == len(first.items)
    assert not changes.fingerprints and not changes.fingerprints_dropped


def test_a_confirmation_moves_one_stamp_and_last_seen(store):
    first = machine_report()
    reconcile_report(store, first)
    second = again(first)
    changes = reconcile_report(store, second)
    computer = changes.ci_of_ref["computer"]
    ci = store.get_ci(computer)
    memory = ci.attributes["memory_bytes"].provenance
    assert (memory.report_id, memory.observed_at) == (first.report_id, first.collected_at)  # the value is untouched
    assert ci.last_seen == second.collected_at  # CIs and relations are still seen
    assert all(r.last_seen == second.collected_at for r in store.relationships(computer, "out"))
    (confirmation,) = store.confirmations([computer])[computer]
    assert (confirmation.source_kind, confirmation.source_id) == ("agent", "agent-01")
    assert (confirmation.report_id, confirmation.confirmed_at) == (second.report_id, second.collected_at)
    assert {g for _, _, g in rows(store)} == {1}  # the whole group shares the source's one stamp


def test_a_late_report_is_judged_against_the_confirmation_stamp(store):
    """Stated at 1h, confirmed at 3h through the fast path: a report observed at 2h that says
    something else is late, as it is when the full path refreshes each value."""
    first = machine_report()
    reconcile_report(store, first)
    reconcile_report(store, again(first, collected_at=first.collected_at + timedelta(hours=2)))
    late = machine_report(attributes=dict(DEFAULT_ATTRIBUTES, memory_bytes=1),
                          collected_at=first.collected_at + timedelta(hours=1))
    changes = compute_changes(store, late)
    assert changes.attributes == []


def test_a_changed_item_takes_the_full_path_and_gets_a_new_fingerprint(store):
    first = machine_report(packages={"bash": "5.2-1", "curl": "7.88-1"})
    reconcile_report(store, first)
    upgraded = machine_report(packages={"bash": "5.2-2", "curl": "7.88-1"})
    changes = reconcile_report(store, upgraded)
    assert [(a.name, a.before, a.after) for a in changes.attributes] == [("version", "5.2-1", "5.2-2")]
    assert [f.ref for f in changes.fingerprints] == ["pkg:deb:bash:amd64"]
    assert "pkg:deb:curl:amd64" in dict(changes.fingerprint_confirms)
    assert compute_changes(store, again(upgraded)).fingerprint_confirms  # and next time it is skipped too


def test_another_source_taking_part_of_a_ci_drops_its_fingerprint_and_keeps_the_stamp(store):
    first = machine_report()
    reconcile_report(store, first)
    confirmed = again(first)
    reconcile_report(store, confirmed)
    computer = compute_changes(store, again(first)).ci_of_ref["computer"]
    assert rows(store, "ci_id = ?", (computer,))
    ssh = machine_report(attributes=dict(DEFAULT_ATTRIBUTES, kernel="6.1.0"), source_kind="ssh", source_id="ssh-1",
                         collected_at=confirmed.collected_at + timedelta(minutes=5))
    reconcile_report(store, ssh)
    assert rows(store, "ci_id = ?", (computer,)) == []  # no longer one source's alone
    memory = store.get_ci(computer).attributes["memory_bytes"].provenance
    assert (memory.source_kind, memory.report_id, memory.observed_at) == \
        ("agent", confirmed.report_id, confirmed.collected_at)  # the stamp went into the value
    changes = compute_changes(store, again(first))
    assert computer not in {ci for _, ci in changes.fingerprint_confirms}
    assert not changes.fingerprints or all(f.ci_id != computer for f in changes.fingerprints)


def test_a_retired_ci_loses_its_fingerprint_and_comes_back_the_long_way(store):
    first = machine_report(packages={"bash": "5.2-1", "curl": "7.88-1"})
    reconcile_report(store, first)
    curl = compute_changes(store, again(first)).ci_of_ref["pkg:deb:curl:amd64"]
    gone = reconcile_report(store, machine_report(packages={"bash": "5.2-1"}))
    assert curl in gone.retired and rows(store, "ci_id = ?", (curl,)) == []
    back = reconcile_report(store, machine_report(packages={"bash": "5.2-1", "curl": "7.88-1"}))
    assert curl in back.reactivated
    assert "pkg:deb:curl:amd64" in {f.ref for f in back.fingerprints}


def test_a_changed_precedence_makes_every_fingerprint_miss_once(store):
    first = machine_report()
    reconcile_report(store, first)
    ssh_first = PrecedenceTable(("ssh", "agent"))
    changes = reconcile_report(store, again(first), precedence=ssh_first)
    assert changes.is_empty and not changes.fingerprint_confirms
    assert len(changes.fingerprints) == len(first.items)
    assert compute_changes(store, again(first), precedence=ssh_first).fingerprint_confirms


@pytest.mark.parametrize("statuses, mode", [({"software": "failed"}, "full"), ({}, "delta")])
def test_partial_runs_and_deltas_use_fingerprints_but_write_none(store, statuses, mode):
    first = machine_report(packages={"bash": "5.2-1"})
    reconcile_report(store, first)
    partial = machine_report(packages={"bash": "5.2-2"}, statuses=statuses, mode=mode)
    changes = reconcile_report(store, partial)
    assert [(a.name, a.after) for a in changes.attributes] == [("version", "5.2-2")]
    assert "pkg:deb:bash:amd64" in changes.fingerprints_dropped and not changes.fingerprints
    assert changes.fingerprint_confirms  # the unchanged items were still skipped


def test_a_duplicate_item_is_never_skipped(store):
    first = machine_report()
    reconcile_report(store, first)
    twin = Item(class_="OperatingSystem", ref="os-again", identifiers={"family": "linux"},
                attributes={"name": "Debian GNU/Linux", "version": "12"}, collector="os")
    report = again(first)
    doubled = decode_report(encode_report(msgspec.structs.replace(
        report, items=[twin, *report.items], relations=[*report.relations,
                                                       msgspec.structs.replace(report.relations[0], from_="os-again")])))
    changes = reconcile_report(store, doubled)
    assert ("duplicate_item", None) in {(c.reason, c.kind) for c in changes.conflicts}
    assert "os" in changes.fingerprints_dropped  # the later item of the CI: its fingerprint goes
    assert reconcile_report(store, again(first), fast_path=False).is_empty


def test_forget_fingerprints_materializes_stamps_and_clears_scope_digests(store):
    first = machine_report()
    reconcile_report(store, first)
    confirmed = again(first)
    changes = reconcile_report(store, confirmed)
    computer = changes.ci_of_ref["computer"]
    with store._transaction() as conn:
        assert conn.execute("SELECT count(*) FROM scope WHERE statement_digest IS NOT NULL").fetchone()[0] > 0
        forget_fingerprints(conn, [computer])
        assert conn.execute("SELECT count(*) FROM scope WHERE statement_digest IS NOT NULL").fetchone()[0] == 0
    assert rows(store, "ci_id = ? OR host_ci = ?", (computer, computer)) == []  # and what it hosts
    assert rows(store)  # the Software products hang off nothing: theirs stay
    ci = store.get_ci(computer)
    assert {a.provenance.report_id for a in ci.attributes.values()} == {confirmed.report_id}
    after = reconcile_report(store, again(first))
    assert after.is_empty and computer in {f.ci_id for f in after.fingerprints}


def test_the_environment_switch_and_the_parameter(store, monkeypatch):
    first = machine_report()
    monkeypatch.setenv(FAST_PATH_ENV, "off")
    assert not reconcile_report(store, first).fingerprints and rows(store) == []
    monkeypatch.setenv(FAST_PATH_ENV, "on")
    assert reconcile_report(store, again(first)).fingerprints
    assert not compute_changes(store, again(first), fast_path=False).fingerprint_confirms


class WithoutFingerprints:
    """The real store, minus the fingerprint reads: a backend that does not have them."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        if name in ("item_fingerprints", "confirmations", "active_relations_from", "scope_digests"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_store_without_fingerprint_reads_takes_the_full_path(store):
    first = machine_report()
    plain = WithoutFingerprints(store)
    reconcile_report(plain, first)
    changes = reconcile_report(plain, again(first))
    assert changes.is_empty and not changes.fingerprint_confirms and not changes.fingerprints


@pytest.mark.parametrize("ref, value", [
    ("pkg:a@b/c+d-e.f", "it's \"quoted\"); DROP TABLE fingerprint; --"),
    ("p" * 128, "back\\slash ünïcødé 包 \u0000 \t"),
    ("x", "[\"looks\", \"like\", \"json\"]"),
])
def test_hostile_refs_and_values_are_plain_data(store, ref, value):
    """Refs go into JSON lists and SQL parameters, never into SQL text; values only into digests."""
    first = machine_report(packages={})
    item = Item(class_="SoftwareInstall", ref=ref, identifiers={"package": f"deb:{value}:amd64"},
                attributes={"name": value, "version": "1"}, collector="software")
    rel = msgspec.structs.replace(first.relations[0], from_=ref, type="INSTALLED_ON", to="computer")
    report = decode_report(encode_report(msgspec.structs.replace(first, items=[*first.items, item],
                                                                 relations=[*first.relations, rel])))
    reconcile_report(store, report)
    changes = reconcile_report(store, again(report))
    assert changes.is_empty and ref in dict(changes.fingerprint_confirms)
    assert store.get_ci(changes.ci_of_ref[ref]).attributes["name"].value == value
    assert len(rows(store)) == len(report.items)


def test_the_digest_covers_what_the_source_states_but_not_readings():
    item = Item(class_="FileSystem", ref="fs:/", identifiers={"mount": "/"},
                attributes={"mount": "/", "size_bytes": 10, "free_bytes": 5}, collector="hardware")
    salt = FINGERPRINT_FORMAT.encode()
    base = item_digest(item, "h/", salt)
    assert item_digest(msgspec.structs.replace(item, attributes={**item.attributes, "free_bytes": 6}), "h/", salt) == base
    assert item_digest(msgspec.structs.replace(item, attributes={**item.attributes, "size_bytes": 11}), "h/", salt) != base
    assert item_digest(item, "other-host/", salt) != base
    assert item_digest(msgspec.structs.replace(item, collector="os"), "h/", salt) != base
    assert item_digest(item, "h/", b"another policy") != base


def test_a_ci_operation_that_forgets_nothing_still_voids_the_fingerprints_it_names(store):
    """The safety net: an operation recorded after a fingerprint, naming its CI, voids it even if
    the operation did not call forget_fingerprints (the merge code does; this stands in for one
    that would not)."""
    first = machine_report(packages={"bash": "5.2-1"})
    changes = reconcile_report(store, first)
    bash = changes.ci_of_ref["pkg:deb:bash:amd64"]
    with store._transaction() as conn:
        conn.execute("INSERT INTO ci_operation (kind, ci_id, other_ci, actor, moved, at) "
                     "VALUES ('split', ?, ?, 'test', '{\"cis\": []}', 0)", (bash, bash))
    assert "pkg:deb:bash:amd64" not in store.item_fingerprints("agent", "agent-01")
    assert bash not in store.confirmations([bash])
    after = reconcile_report(store, again(first))
    assert after.is_empty and bash not in {ci for _, ci in after.fingerprint_confirms}
    assert "pkg:deb:bash:amd64" in {f.ref for f in after.fingerprints}  # written again, after the operation
    assert "pkg:deb:bash:amd64" in store.item_fingerprints("agent", "agent-01")
    with store._transaction() as conn:
        forget_fingerprints(conn, [])  # an operation that dealt with its CIs: the net stands down
        floor = conn.execute("SELECT op_floor FROM fingerprint_source").fetchone()[0]
        assert floor == conn.execute("SELECT max(seq) FROM ci_operation").fetchone()[0]
