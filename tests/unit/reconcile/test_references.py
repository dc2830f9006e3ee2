"""Reference items (Item.reference) against the real SQLite store: host A's report points at host
B's address through an outbound connection; reconcile re-targets the relation to B's Service or B,
and never creates, updates or claims anything from the reference."""

from __future__ import annotations

import msgspec
import pytest

from cmdb.report import CollectorStatus, Item, Relation, Report, decode_report, encode_report
from reconcile.engine import compute_changes, reconcile_report
from tests.unit.reconcile.reports import T0, again, machine_report

B_ADDRESS = "10.0.0.20"


def host(name: str, number: int, address: str, *, services: tuple[int, ...] = (),
         dependencies: tuple[tuple[str, str, int], ...] = ()) -> Report:
    """A machine report for host `name` with Services on `services` (tcp ports) and outbound
    dependencies (from ref, remote address, remote port) as the connections collector sends them."""
    identifiers = {"serial": f"SN-{number:04d}", "system_uuid": f"4c4c4544-0042-3510-8052-b4c04f4d{number:04d}",
                   "mac": [f"00:1a:2b:3c:4d:{number:02x}"], "fqdn": f"{name}.example.com", "hostname": name,
                   "agent_id": f"agent-{name}"}
    attributes = {"hostname": name, "manufacturer": "Dell Inc.", "model": "PowerEdge R640"}
    base = machine_report(identifiers=identifiers, attributes=attributes, interfaces={"eth0": [address]},
                          packages={}, source_id=f"agent-{name}")
    items, relations = list(base.items), list(base.relations)
    for port in services:
        items.append(Item(class_="Service", ref=f"svc:tcp/{port}", identifiers={"name": f"tcp/{port}"},
                          attributes={"protocol": "tcp", "port": port, "bind_addresses": ["0.0.0.0"]},
                          collector="services"))
        relations.append(Relation(from_=f"svc:tcp/{port}", type="RUNS_ON", to="computer"))
    for from_ref, remote, port in dependencies:
        ref = f"remote:{remote}"
        if all(i.ref != ref for i in items):
            items.append(Item(class_="IPAddress", ref=ref, identifiers={"address": remote}, reference=True,
                              collector="connections"))
        relations.append(Relation(from_=from_ref, type="DEPENDS_ON", to=ref,
                                  attributes={"remote_port": port, "process_name": "java"}))
    collectors = {**base.collectors, "services": CollectorStatus(status="ok"),
                  "connections": CollectorStatus(status="ok")}
    return decode_report(encode_report(msgspec.structs.replace(base, items=items, relations=relations,
                                                               collectors=collectors)))


def report_b(**kw) -> Report:
    return host("dbhost", 2, B_ADDRESS, services=(5432,), **kw)


def report_a(*dependencies: tuple[str, str, int]) -> Report:
    deps = dependencies or (("svc:tcp/8080", B_ADDRESS, 5432), ("computer", B_ADDRESS, 22))
    return host("apphost", 1, "10.0.0.5", services=(8080,), dependencies=deps)


def depends_on(store) -> set[tuple[str, str]]:
    return {(r.from_ci, r.to_ci) for c in store.list_cis(limit=10_000)
            for r in store.relationships(c.ci_id, "out", "DEPENDS_ON")}


def history_size(store) -> int:
    return sum(len(store.history(c.ci_id, limit=1_000_000)) for c in store.list_cis(state=None, limit=100_000))


def test_b_reported_before_a(store):
    b = reconcile_report(store, report_b())
    counts = store.count_cis()
    a = reconcile_report(store, report_a())
    # The reference created nothing: A brought its own Computer, OS, Disk, Interface, IP and Service.
    assert store.count_cis()["IPAddress"] == counts["IPAddress"] + 1
    assert "remote:10.0.0.20" not in a.ci_of_ref and not a.skipped and not a.conflicts
    assert len(a.created) == len([i for i in report_a().items if not i.reference])
    assert depends_on(store) == {(a.ci_of_ref["svc:tcp/8080"], b.ci_of_ref["svc:tcp/5432"]),  # port 5432: B's Service
                                 (a.ci_of_ref["computer"], b.ci_of_ref["computer"])}  # port 22: no Service, B itself


def test_the_reference_writes_nothing_on_b(store):
    b = reconcile_report(store, report_b())
    b_cis = set(b.ci_of_ref.values())
    before = {ci: store.history(ci) for ci in b_cis}
    a = reconcile_report(store, report_a())
    for ci in b_cis:  # B's records gained only the relations A made to it
        new_rows = store.history(ci)[len(before[ci]):]
        assert store.history(ci)[:len(before[ci])] == before[ci]
        assert all(row.kind == "rel.add" and row.related_ci == ci and row.ci_id in a.ci_of_ref.values()
                   for row in new_rows)
    assert not b_cis & set(a.seen)  # B's last_seen is B's own business
    assert all(claim.ci_id not in b_cis for claim in a.identifiers)
    assert all(change.ci_id not in b_cis for change in a.attributes)


def test_b_reported_after_a(store):
    first = reconcile_report(store, report_a())
    assert not depends_on(store)
    assert [(s.item_ref, s.ci_class) for s in first.skipped] == [("remote:10.0.0.20", "IPAddress")]
    assert "no active IPAddress CI holds it" in first.skipped[0].reason
    assert store.count_cis()["IPAddress"] == 1  # A's own: the unknown address created nothing
    b = reconcile_report(store, report_b())
    later = reconcile_report(store, again(report_a()))
    assert not later.skipped and not later.created
    assert {(r.from_ci, r.to_ci) for r in later.relations} == {
        (first.ci_of_ref["svc:tcp/8080"], b.ci_of_ref["svc:tcp/5432"]),
        (first.ci_of_ref["computer"], b.ci_of_ref["computer"])}


def test_reconciling_a_twice_writes_no_history(store):
    reconcile_report(store, report_b())
    a = report_a()
    reconcile_report(store, a)
    rows = history_size(store)
    second = reconcile_report(store, again(a))
    assert second.is_empty, second.summary()
    assert history_size(store) == rows
    assert len(second.relations_seen) == len(a.relations)  # every relation, the resolved ones too


def test_an_ambiguous_address_drops_the_relation(store):
    reconcile_report(store, report_b())
    reconcile_report(store, host("dbhost-other-site", 3, B_ADDRESS, services=(5432,)))  # same private address
    a = reconcile_report(store, report_a())
    assert not depends_on(store)
    assert [s.item_ref for s in a.skipped] == ["remote:10.0.0.20"]
    assert "ambiguous, held by 2 IPAddress CIs" in a.skipped[0].reason


def test_an_unknown_address_drops_the_relation_and_says_so(store):
    reconcile_report(store, report_b())
    a = reconcile_report(store, report_a(("svc:tcp/8080", "203.0.113.9", 443)))
    assert not depends_on(store)
    assert [s.item_ref for s in a.skipped] == ["remote:203.0.113.9"]


def test_a_report_of_references_only_creates_nothing(store):
    reconcile_report(store, report_b())
    only = Report(schema="fleetgraph.report/1", report_id="rpt-references-only", collected_at=T0,
                  source=report_b().source,
                  items=[Item(class_="IPAddress", ref="remote:10.0.0.20", identifiers={"address": B_ADDRESS},
                              reference=True),
                         Item(class_="Computer", ref="remote-host", identifiers={"hostname": "dbhost"}, reference=True)],
                  relations=[Relation(from_="remote-host", type="DEPENDS_ON", to="remote:10.0.0.20")])
    changes = compute_changes(store, decode_report(encode_report(only)))
    assert changes.is_empty and not changes.seen and not changes.relations
    assert {s.item_ref for s in changes.skipped} == {"remote-host"}  # a Computer reference is not resolved


def test_a_dependent_item_hanging_off_a_reference_is_skipped(store):
    reconcile_report(store, report_b())
    a = report_a()
    items = [*a.items, Item(class_="Interface", ref="if:remote", identifiers={"name": "eth9"})]
    relations = [*a.relations, Relation(from_="remote:10.0.0.20", type="HAS_INTERFACE", to="if:remote")]
    changes = compute_changes(store, decode_report(encode_report(msgspec.structs.replace(
        a, items=items, relations=relations))))
    assert [(s.item_ref, s.ci_class) for s in changes.skipped] == [("if:remote", "Interface")]
    assert len(changes.created) == len([i for i in a.items if not i.reference])


def test_references_are_resolved_in_batched_reads(counting_store):
    reconcile_report(counting_store, report_b())
    reconcile_report(counting_store, host("web", 4, "10.0.0.30", services=(443,)))
    counting_store.calls.clear()
    deps = [("svc:tcp/8080", B_ADDRESS, 5432), ("svc:tcp/8080", "10.0.0.30", 443), ("computer", B_ADDRESS, 22),
            ("computer", "10.0.0.30", 22), ("computer", "198.51.100.1", 53)]
    changes = compute_changes(counting_store, report_a(*deps))
    assert counting_store.count("find_by_attribute") == 1
    assert counting_store.count("identifiers_of") <= 2  # identification's and the references'
    # Service names: once for the remote ones (and once for A's own, when A is known already).
    assert [args for name, args in counting_store.calls if name == "resolve_identifiers"].count(("Service", "name")) <= 2
    resolved = {(r.from_ci, r.to_ci) for r in changes.relations if r.type == "DEPENDS_ON"}
    assert len(resolved) == 4  # 198.51.100.1 is nobody's: dropped, and noted
    assert [s.item_ref for s in changes.skipped] == ["remote:198.51.100.1"]


@pytest.mark.parametrize("spelling", ["10.0.0.20", "::ffff:10.0.0.20"])
def test_address_spellings(store, spelling):
    b = reconcile_report(store, report_b())
    a = reconcile_report(store, report_a(("computer", spelling, 5432)))
    resolved = {(r.from_ci, r.to_ci) for r in a.relations if r.type == "DEPENDS_ON"}
    if spelling == "10.0.0.20":
        assert resolved == {(a.ci_of_ref["computer"], b.ci_of_ref["svc:tcp/5432"])}
    else:  # the agent canonicalises IPv4-mapped addresses; an unmapped spelling is simply unknown
        assert resolved == set() and a.skipped
