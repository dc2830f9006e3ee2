"""Apply a realistic change set, then read it back through every query of the contract."""

from __future__ import annotations

import pytest

from cmdb.changes import ChangeSet, NewCI
from cmdb.store import ReportNotPending
from tests.contract.fleet import HOST_ATTRIBUTES, apply_fleet, fleet_changes, provenance, snapshot


def test_apply_reports_what_it_wrote(store):
    from cmdb.ids import new_ci_id
    from tests.contract.fleet import Fleet
    f = Fleet(*sorted(new_ci_id() for _ in range(8)), provenance=provenance(0))
    changes = fleet_changes(f)
    result = store.apply(changes)
    assert result.created == 8
    # a ci.create per CI, an ident.add per identifier, an attr.set per attribute, a rel.add per relation
    assert result.history_rows == 8 + len(changes.identifiers) + len(changes.attributes) + len(changes.relations)


def test_get_ci(store, fleet):
    host = store.get_ci(fleet.host)
    assert (host.ci_id, host.ci_class, host.state) == (fleet.host, "Computer", "active")
    assert host.first_seen == host.last_seen == fleet.provenance.observed_at
    assert {n: a.value for n, a in host.attributes.items()} == HOST_ATTRIBUTES
    assert all(a.provenance == fleet.provenance for a in host.attributes.values())
    assert sorted((i.kind, i.value) for i in host.identifiers) == [("hostname", "web-01"), ("serial", "SN-123")]
    assert store.get_ci("0" * 32) is None


def test_values_keep_their_json_types(store, fleet):
    attrs = store.get_ci(fleet.host).attributes
    assert attrs["ram_mb"].value == 16384 and type(attrs["ram_mb"].value) is int
    assert attrs["virtual"].value is False
    assert attrs["load"].value == 0.75
    assert attrs["tags"].value == ["prod", "web"]


def test_list_cis_by_class_and_attribute(store, fleet):
    assert [c.ci_id for c in store.list_cis("Computer")] == [fleet.host]
    assert [c.ci_id for c in store.list_cis()] == sorted(fleet.all)
    listed = store.list_cis("Computer")[0]
    assert listed.attributes["hostname"].value == "web-01" and listed.identifiers
    assert [c.ci_id for c in store.list_cis(attributes={"port": 443})] == [fleet.service]
    assert store.list_cis(attributes={"port": "443"}) == []  # JSON comparison: 443 is not "443"
    assert [c.ci_id for c in store.list_cis("Computer", {"virtual": False, "cpu_count": 8})] == [fleet.host]
    assert store.list_cis("Computer", {"virtual": True}) == []
    assert [c.ci_id for c in store.list_cis(attributes={"tags": ["prod", "web"]})] == [fleet.host]
    assert store.list_cis("Printer") == []
    assert store.list_cis(state="retired") == []
    assert [c.ci_id for c in store.list_cis(limit=3, offset=2)] == sorted(fleet.all)[2:5]


def test_counts(store, fleet):
    assert store.count_cis() == {"Computer": 1, "OperatingSystem": 1, "Interface": 1, "IPAddress": 1,
                                 "SoftwareInstall": 1, "Software": 1, "Service": 1, "BusinessService": 1}
    assert store.count_cis(None) == store.count_cis()
    assert store.count_cis("retired") == {}
    assert store.count_relationships() == {"RUNS_ON": 2, "HAS_INTERFACE": 1, "HAS_IP": 1, "INSTALLED_ON": 1,
                                           "INSTANCE_OF": 1, "DEPENDS_ON": 1}


def test_resolve_identifiers(store, fleet):
    assert store.resolve_identifiers("Computer", "serial", ["SN-123", "SN-999"]) == {"SN-123": fleet.host}
    assert store.resolve_identifiers("Computer", "hostname", ["web-01"]) == {"web-01": fleet.host}
    # the key is class + kind + value: the same value under another class or kind is not a match
    assert store.resolve_identifiers("NetworkDevice", "serial", ["SN-123"]) == {}
    assert store.resolve_identifiers("Computer", "fqdn", ["web-01"]) == {}
    assert store.resolve_identifiers("Computer", "serial", []) == {}


def test_resolve_many_identifiers_at_once(store):
    n = 1500
    ids = [f"{i:032x}" for i in range(n)]
    from cmdb.changes import IdentifierClaim
    store.apply(ChangeSet(provenance(0), created=[NewCI(i, "SoftwareInstall") for i in ids],
                          identifiers=[IdentifierClaim(i, "SoftwareInstall", "package", f"host/pkg-{k}")
                                       for k, i in enumerate(ids)]))
    wanted = [f"host/pkg-{k}" for k in range(n)] + ["host/not-installed"]
    resolved = store.resolve_identifiers("SoftwareInstall", "package", wanted)
    assert resolved == {f"host/pkg-{k}": i for k, i in enumerate(ids)}
    assert len(store.identifiers_of(ids)) == n
    assert store.list_cis("SoftwareInstall", limit=2000)[-1].ci_id == ids[-1]


def test_current_attributes_with_provenance(store, fleet):
    current = store.current_attributes([fleet.host, fleet.service, "no-such-ci"])
    assert set(current) == {fleet.host, fleet.service}
    assert current[fleet.service]["port"].value == 443
    p = current[fleet.host]["hostname"].provenance
    assert (p.source_kind, p.source_id, p.report_id, p.observed_at) == \
        ("agent", "agent-web-01", "report-0001", fleet.provenance.observed_at)


def test_identifiers_of(store, fleet):
    found = store.identifiers_of([fleet.host, fleet.iface])
    assert sorted((i.kind, i.value) for i in found[fleet.host]) == [("hostname", "web-01"), ("serial", "SN-123")]
    assert [(i.kind, i.value) for i in found[fleet.iface]] == [("name", f"{fleet.host}/eth0")]


def test_relationships_among(store, fleet):
    rels = store.relationships_among([fleet.install, fleet.host])
    assert sorted((r.type, r.from_ci, r.to_ci) for r in rels) == sorted([
        ("INSTALLED_ON", fleet.install, fleet.host), ("INSTANCE_OF", fleet.install, fleet.software),
        ("HAS_INTERFACE", fleet.host, fleet.iface)])
    assert all(r.state == "active" and r.provenance == fleet.provenance for r in rels)
    assert all(r.first_seen == r.last_seen == fleet.provenance.observed_at for r in rels)


def test_relationships_in_and_out(store, fleet):
    out = store.relationships(fleet.host, "out")
    assert [(r.type, r.to_ci) for r in out] == [("HAS_INTERFACE", fleet.iface)]
    incoming = store.relationships(fleet.host, "in")
    assert sorted((r.type, r.from_ci) for r in incoming) == sorted([
        ("RUNS_ON", fleet.os), ("RUNS_ON", fleet.service), ("INSTALLED_ON", fleet.install)])
    both = store.relationships(fleet.host)
    assert len(both) == 4
    assert [r.from_ci for r in store.relationships(fleet.host, "in", type="INSTALLED_ON")] == [fleet.install]
    assert store.relationships(fleet.host, "out", type="RUNS_ON") == []


def test_seen_refreshes_last_seen_without_history(store, fleet):
    rows = len(store.history(fleet.host))
    result = store.apply(ChangeSet(provenance(30, "report-0002"), seen=[fleet.host],
                                   relations_seen=[("HAS_INTERFACE", fleet.host, fleet.iface)]))
    assert result.history_rows == 0
    host = store.get_ci(fleet.host)
    assert host.first_seen == fleet.provenance.observed_at and host.last_seen == provenance(30).observed_at
    rel = store.relationships(fleet.host, "out")[0]
    assert rel.last_seen == provenance(30).observed_at and rel.first_seen == fleet.provenance.observed_at
    assert len(store.history(fleet.host)) == rows
    # a late report that observed earlier does not move last_seen back
    store.apply(ChangeSet(provenance(10, "report-0003"), seen=[fleet.host]))
    assert store.get_ci(fleet.host).last_seen == provenance(30).observed_at


def test_apply_marks_its_report_reconciled(store):
    put = store.put_report("report-0001", "agent", "agent-web-01", provenance(0).observed_at, b"{}")
    apply_fleet(store, report_seq=put.seq)
    reconciled = store.get_report("report-0001")
    assert reconciled.status == "reconciled" and reconciled.reconciled_at is not None
    assert store.pending_reports() == []


def test_a_report_is_applied_once(store):
    put = store.put_report("report-0001", "agent", "agent-web-01", provenance(0).observed_at, b"{}")
    apply_fleet(store, report_seq=put.seq)
    before = snapshot(store)
    with pytest.raises(ReportNotPending):
        apply_fleet(store, report_seq=put.seq)
    with pytest.raises(ReportNotPending):
        apply_fleet(store, report_seq=put.seq + 1000)
    assert snapshot(store) == before


def test_a_failed_report_can_be_applied_after_a_fix(store):
    put = store.put_report("report-0001", "agent", "agent-web-01", provenance(0).observed_at, b"{}")
    store.mark_report_failed(put.seq, "reconcile crashed")
    apply_fleet(store, report_seq=put.seq)
    assert store.get_report("report-0001").status == "reconciled"
    assert store.get_report("report-0001").error is None


def test_find_ci_ids_by_prefix(store, fleet):
    assert store.find_ci_ids(fleet.host, limit=5) == [fleet.host]
    assert store.find_ci_ids(fleet.host[:30], limit=5) == [fleet.host]
    assert len(store.find_ci_ids("", limit=3)) == 3
    assert store.find_ci_ids("zz") == []


def test_find_ci_ids_does_not_treat_wildcards_as_wildcards(store):
    ids = ["ab%cd", "ab_cd", "abxcd", "a\\bc", "ABXCD"]
    store.apply(ChangeSet(provenance(0), created=[NewCI(i, "BusinessService") for i in ids]))
    assert store.find_ci_ids("ab%", limit=10) == ["ab%cd"]
    assert store.find_ci_ids("ab_", limit=10) == ["ab_cd"]
    assert store.find_ci_ids("%", limit=10) == []
    assert store.find_ci_ids("_", limit=10) == []
    assert store.find_ci_ids("a\\", limit=10) == ["a\\bc"]
    assert store.find_ci_ids("abx", limit=10) == ["abxcd"]  # prefixes are case-sensitive
    assert store.find_ci_ids("ab", limit=2) == ["ab%cd", "ab_cd"]


def test_reopened_store_keeps_everything(backend, store, fleet, tmp_path):
    put = store.put_report("report-0001", "agent", "agent-web-01", provenance(0).observed_at, b'{"x": 1}')
    store.add_token("hash-1", "ops", "admin")
    before = snapshot(store)
    graph_edges = sorted(store.graph().edges(keys=True))
    store.close()
    reopened = backend.open(tmp_path)
    try:
        assert snapshot(reopened) == before
        assert sorted(reopened.graph().edges(keys=True)) == graph_edges
        assert reopened.get_report("report-0001").seq == put.seq
        assert reopened.token_role("hash-1", provenance(0).observed_at) == ("ops", "admin")
        assert reopened.put_report("report-0002", "agent", "a", provenance(1).observed_at, b"{}").seq > put.seq
    finally:
        reopened.close()


def test_find_by_attribute_resolves_values_to_active_cis_of_the_class(store):
    from datetime import UTC, datetime

    from cmdb.changes import AttributeChange, ChangeSet, NewCI, Provenance

    prov = Provenance("agent", "a-1", "r-find", datetime(2026, 1, 1, tzinfo=UTC))
    ids = ["f" * 31 + str(i) for i in range(3)]
    changes = ChangeSet(prov, created=[NewCI(ids[0], "IPAddress"), NewCI(ids[1], "IPAddress"),
                                       NewCI(ids[2], "Interface")],
                        attributes=[AttributeChange(ids[0], "address", None, "10.0.0.5"),
                                    AttributeChange(ids[1], "address", None, "10.0.0.5"),
                                    AttributeChange(ids[2], "address", None, "10.0.0.6"),
                                    AttributeChange(ids[0], "prefix_length", None, 24)])
    store.apply(changes)
    found = store.find_by_attribute("IPAddress", "address", ["10.0.0.5", "10.0.0.6", "10.9.9.9"])
    assert found == {"10.0.0.5": sorted(ids[:2])}
    assert store.find_by_attribute("IPAddress", "prefix_length", [24]) == {24: [ids[0]]}
    assert store.find_by_attribute("IPAddress", "address", ["x' OR '1'='1"]) == {}
