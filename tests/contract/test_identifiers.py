"""Identifiers are unique per class + kind + value, and a change set that breaks that writes nothing."""

from __future__ import annotations

import pytest

from cmdb.changes import AttributeChange, ChangeSet, IdentifierClaim, NewCI, RelationChange
from cmdb.store import IdentifierTaken
from tests.contract.fleet import provenance, snapshot


def claim_serial(ci_id: str, serial: str = "SN-123") -> IdentifierClaim:
    return IdentifierClaim(ci_id, "Computer", "serial", serial)


def test_a_second_ci_cannot_claim_a_held_identifier_and_nothing_is_applied(store, fleet):
    put = store.put_report("report-0002", "agent", "agent-clone", provenance(5).observed_at, b"{}")
    before = snapshot(store)
    clone = "c" * 32
    changes = ChangeSet(
        provenance(5, "report-0002", source_id="agent-clone"),
        created=[NewCI(clone, "Computer")],
        identifiers=[claim_serial(clone, "SN-456"), claim_serial(clone)],  # the first is free, the second is not
        attributes=[AttributeChange(clone, "hostname", None, "web-01-clone"),
                    AttributeChange(fleet.host, "ram_mb", 16384, 32768)],
        relations=[RelationChange("DEPENDS_ON", clone, fleet.host)],
        seen=[clone, fleet.host],
    )
    with pytest.raises(IdentifierTaken) as raised:
        store.apply(changes, report_seq=put.seq)
    assert (raised.value.held_by, raised.value.claimed_by, raised.value.value) == (fleet.host, clone, "SN-123")
    assert snapshot(store) == before
    assert store.get_ci(clone) is None
    assert store.get_report("report-0002").status == "pending"  # the worker can retry or mark it failed
    assert store.resolve_identifiers("Computer", "serial", ["SN-456"]) == {}


def test_two_new_cis_claiming_one_identifier_fail_together(store):
    before = snapshot(store)
    a, b = "a" * 32, "b" * 32
    with pytest.raises(IdentifierTaken):
        store.apply(ChangeSet(provenance(0), created=[NewCI(a, "Computer"), NewCI(b, "Computer")],
                              identifiers=[claim_serial(a), claim_serial(b)]))
    assert snapshot(store) == before


def test_the_same_value_under_another_class_or_kind_is_another_key(store):
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    store.apply(ChangeSet(provenance(0), created=[NewCI(a, "Computer"), NewCI(b, "NetworkDevice"),
                                                  NewCI(c, "Computer")],
                          identifiers=[claim_serial(a, "X1"), IdentifierClaim(b, "NetworkDevice", "serial", "X1"),
                                       IdentifierClaim(c, "Computer", "hostname", "X1")]))
    assert store.resolve_identifiers("Computer", "serial", ["X1"]) == {"X1": a}
    assert store.resolve_identifiers("NetworkDevice", "serial", ["X1"]) == {"X1": b}
    assert store.resolve_identifiers("Computer", "hostname", ["X1"]) == {"X1": c}


def test_reclaiming_ones_own_identifier_is_a_no_op(store, fleet):
    rows = len(store.history(fleet.host))
    result = store.apply(ChangeSet(provenance(5, "report-0002"), identifiers=[claim_serial(fleet.host)]))
    assert result.history_rows == 0
    assert len(store.history(fleet.host)) == rows


HOSTILE = [
    "'; DROP TABLE ci; --",
    'quote " double',
    "semi;colon",
    "nul\x00byte",
    "\x00",
    "ünïcödé ☃ 𝔘 \u202e",
    "back\\slash%_",
    "line\nbreak\ttab",
    "a" * 1024,
]


def test_hostile_strings_are_stored_and_read_back_verbatim(store):
    ci_ids = [f"{n:02d}-{value[:20]}" for n, value in enumerate(HOSTILE)]
    changes = ChangeSet(
        provenance(0, report_id="r'; --\x00", source_id="src \"☃\""),
        created=[NewCI(i, "Computer") for i in ci_ids],
        identifiers=[IdentifierClaim(i, "Computer", kind, value)
                     for i, value in zip(ci_ids, HOSTILE) for kind in ("serial", value)],
        attributes=[AttributeChange(i, name, None, value) for i in ci_ids[:1]
                    for name, value in zip(HOSTILE, [*HOSTILE[1:], HOSTILE[0]])]
        + [AttributeChange(ci_ids[1], "list", None, HOSTILE)],
        relations=[RelationChange("DEPENDS_ON", ci_ids[0], ci_ids[1])],
    )
    store.apply(changes)
    assert store.resolve_identifiers("Computer", "serial", HOSTILE) == dict(zip(HOSTILE, ci_ids))
    for i, value in zip(ci_ids, HOSTILE):
        assert store.resolve_identifiers("Computer", value, [value]) == {value: i}
        ci = store.get_ci(i)
        assert ci is not None and ci.ci_id == i
        assert sorted((x.kind, x.value) for x in ci.identifiers) == sorted([("serial", value), (value, value)])
    attrs = store.get_ci(ci_ids[0]).attributes
    assert {n: a.value for n, a in attrs.items()} == dict(zip(HOSTILE, [*HOSTILE[1:], HOSTILE[0]]))
    assert attrs[HOSTILE[0]].provenance.report_id == "r'; --\x00"
    assert attrs[HOSTILE[0]].provenance.source_id == "src \"☃\""
    assert store.get_ci(ci_ids[1]).attributes["list"].value == HOSTILE
    for name in HOSTILE:
        rows = store.history(ci_ids[0], name=name)
        expected = ["ident.add", "attr.set"] if name == HOSTILE[0] else ["attr.set"]
        assert [r.kind for r in rows] == expected and {r.name for r in rows} == {name}
        assert [c.ci_id for c in store.list_cis("Computer", {name: attrs[name].value})] == [ci_ids[0]]
    assert store.count_cis() == {"Computer": len(HOSTILE)}  # the DROP TABLE did not run
    assert [r.to_ci for r in store.relationships(ci_ids[0], "out")] == [ci_ids[1]]
    assert store.find_ci_ids(ci_ids[3][:8]) == [ci_ids[3]]


def test_a_weak_value_stated_by_other_cis_is_read_back_as_shared_by_the_active_ones(store):
    a, b, c, d = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    hostname = IdentifierClaim(a, "Computer", "hostname", "kiosk")
    store.apply(ChangeSet(provenance(0), created=[NewCI(i, "Computer") for i in (a, b, c, d)],
                          identifiers=[hostname],
                          shared_identifiers=[IdentifierClaim(b, "Computer", "hostname", "kiosk"),
                                              IdentifierClaim(c, "Computer", "hostname", "kiosk"),
                                              IdentifierClaim(d, "Computer", "fqdn", "kiosk")]))
    assert store.resolve_identifiers("Computer", "hostname", ["kiosk"]) == {"kiosk": a}  # still bound to one
    assert store.shared_identifiers("Computer", "hostname", ["kiosk", "other"]) == {"kiosk": {b, c}}
    assert store.shared_identifiers("NetworkDevice", "hostname", ["kiosk"]) == {}
    assert store.shared_identifiers("Computer", "fqdn", ["kiosk"]) == {"kiosk": {d}}
    assert not store.identifiers_of([b, c]), "a shared value is no identifier of the sharer"

    rows = snapshot(store)
    store.apply(ChangeSet(provenance(5, "report-0002"),
                          shared_identifiers=[IdentifierClaim(b, "Computer", "hostname", "kiosk")] * 2))
    assert snapshot(store) == rows  # recording a share again is a no-op, and sharing writes no history

    store.apply(ChangeSet(provenance(10, "report-0003"), retired=[c]))
    assert store.shared_identifiers("Computer", "hostname", ["kiosk"]) == {"kiosk": {b}}  # active ones only
