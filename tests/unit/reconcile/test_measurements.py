"""Measurement attributes (CIClass.measurements): a new reading replaces the current value with its
provenance but is not a change: no history row, an empty change set, no delta section of its own."""

from __future__ import annotations

import msgspec

from agent.delta import section_digest
from cmdb.report import Item, Relation, decode_report, encode_report
from reconcile.engine import reconcile_report
from tests.unit.reconcile.reports import again, machine_report


def with_filesystem(report, free: int):
    fs = Item(class_="FileSystem", ref="fs:/", identifiers={"mount": "/"},
              attributes={"mount": "/", "fs_type": "ext4", "size_bytes": 100_000, "free_bytes": free},
              collector="hardware")
    rel = Relation(from_="computer", type="HAS_FILESYSTEM", to="fs:/")
    return decode_report(encode_report(msgspec.structs.replace(
        report, items=[*report.items, fs], relations=[*report.relations, rel])))


def fs_ci(store):
    [ci] = store.list_cis("FileSystem")
    return ci


def test_a_new_reading_updates_the_value_without_history(store):
    base = machine_report()
    first = with_filesystem(base, free=40_000)
    reconcile_report(store, first)
    ci = fs_ci(store)
    rows = len(store.history(ci.ci_id))
    assert ci.attributes["free_bytes"].value == 40_000

    second = with_filesystem(again(base), free=39_000)
    changes = reconcile_report(store, second)
    assert changes.is_empty and [(m.name, m.before, m.after) for m in changes.measurements] == [
        ("free_bytes", 40_000, 39_000)]
    ci = fs_ci(store)
    assert ci.attributes["free_bytes"].value == 39_000
    assert ci.attributes["free_bytes"].provenance.report_id == second.report_id
    assert len(store.history(ci.ci_id)) == rows, "a reading is not a change"


def test_configuration_next_to_a_reading_is_still_tracked(store):
    base = machine_report()
    reconcile_report(store, with_filesystem(base, free=40_000))
    grown = with_filesystem(again(base), free=90_000)
    grown.items[-1].attributes["size_bytes"] = 200_000
    changes = reconcile_report(store, grown)
    assert [(c.name, c.after) for c in changes.attributes] == [("size_bytes", 200_000)]
    assert [r.name for r in store.history(fs_ci(store).ci_id) if r.kind == "attr.set"][-1] == "size_bytes"


def test_a_reading_alone_does_not_change_the_agent_section_hash():
    def section(free: int, size: int = 100_000):
        return [Item(class_="FileSystem", ref="fs:/", identifiers={"mount": "/"},
                     attributes={"mount": "/", "size_bytes": size, "free_bytes": free})]

    assert section_digest(section(1), []) == section_digest(section(2), [])
    assert section_digest(section(1), []) != section_digest(section(1, size=5), [])
