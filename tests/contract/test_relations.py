"""Relationships: retire and reactivate with history, the networkx graph, and impact analysis."""

from __future__ import annotations

import networkx as nx

from cmdb.changes import ChangeSet, RelationChange
from cmdb.graph import impacted_by
from tests.contract.fleet import at, provenance


def test_retire_then_reactivate(store, fleet):
    retired = store.apply(ChangeSet(provenance(60, "report-0002"),
                                    relations=[RelationChange("INSTALLED_ON", fleet.install, fleet.host, "retire")]))
    assert retired.history_rows == 1
    assert store.relationships(fleet.host, "in", type="INSTALLED_ON") == []
    assert store.relationships_among([fleet.install]) and all(
        r.type != "INSTALLED_ON" for r in store.relationships_among([fleet.install]))
    assert store.count_relationships("retired") == {"INSTALLED_ON": 1}
    assert "INSTALLED_ON" not in store.count_relationships()
    assert store.count_relationships(None)["INSTALLED_ON"] == 1

    # retiring what is already retired records nothing
    again = store.apply(ChangeSet(provenance(70, "report-0003"),
                                  relations=[RelationChange("INSTALLED_ON", fleet.install, fleet.host, "retire")]))
    assert again.history_rows == 0

    back = store.apply(ChangeSet(provenance(120, "report-0004", kind="ssh", source_id="scanner-1"),
                                 relations=[RelationChange("INSTALLED_ON", fleet.install, fleet.host)]))
    assert back.history_rows == 1
    [rel] = store.relationships(fleet.host, "in", type="INSTALLED_ON")
    assert rel.state == "active" and rel.first_seen == at(0) and rel.last_seen == at(120)
    assert rel.provenance == provenance(120, "report-0004", kind="ssh", source_id="scanner-1")
    assert store.count_relationships(None)["INSTALLED_ON"] == 1  # one relationship, reactivated

    rows = store.history(fleet.install, name="INSTALLED_ON")
    assert [(r.kind, r.before, r.after) for r in rows] == [
        ("rel.add", None, "active"), ("rel.retire", "active", "retired"), ("rel.add", "retired", "active")]
    assert [r.provenance.report_id for r in rows] == ["report-0001", "report-0002", "report-0004"]
    assert all(r.related_ci == fleet.host for r in rows)


def test_adding_an_active_relation_again_records_nothing(store, fleet):
    result = store.apply(ChangeSet(provenance(60, "report-0002"),
                                   relations=[RelationChange("RUNS_ON", fleet.os, fleet.host)]))
    assert result.history_rows == 0
    assert len(store.history(fleet.os, name="RUNS_ON")) == 1


def test_graph_mirrors_active_relationships(store, fleet):
    store.apply(ChangeSet(provenance(60, "report-0002"),
                          relations=[RelationChange("INSTANCE_OF", fleet.install, fleet.software, "retire")]))
    graph = store.graph()
    assert isinstance(graph, nx.MultiDiGraph)
    assert set(graph.nodes) == set(fleet.all)
    assert graph.nodes[fleet.host]["ci_class"] == "Computer"
    assert graph.nodes[fleet.software]["ci_class"] == "Software"
    assert graph.has_edge(fleet.os, fleet.host, key="RUNS_ON")
    assert not graph.has_edge(fleet.install, fleet.software, key="INSTANCE_OF")
    edge = graph.edges[fleet.host, fleet.iface, "HAS_INTERFACE"]
    assert edge["first_seen"] == at(0) and edge["last_seen"] == at(0)
    assert graph.number_of_edges() == 6


def test_impact_follows_each_types_direction(store, fleet):
    graph = store.graph()
    # the host down takes what runs and is installed on it (to_from), its interface and that
    # interface's address (from_to), and, through the service, the business service (DEPENDS_ON)
    assert impacted_by(graph, fleet.host) == {fleet.os, fleet.service, fleet.install, fleet.iface, fleet.ip,
                                              fleet.business}
    assert impacted_by(graph, fleet.service) == {fleet.business}
    assert impacted_by(graph, fleet.iface) == {fleet.ip}
    assert impacted_by(graph, fleet.software) == set()  # INSTANCE_OF carries no impact
    assert impacted_by(graph, fleet.business) == set()
    assert impacted_by(graph, "0" * 32) == set()


def test_impact_across_both_ways_links_and_cycles(store, fleet):
    from cmdb.changes import NewCI
    a, b = "a" * 32, "b" * 32
    store.apply(ChangeSet(provenance(60, "report-0002"), created=[NewCI(a, "NetworkDevice"), NewCI(b, "NetworkDevice")],
                          relations=[RelationChange("CONNECTED_TO", a, b), RelationChange("CONNECTED_TO", b, a),
                                     RelationChange("CONNECTED_TO", fleet.iface, a)]))
    graph = store.graph()
    assert impacted_by(graph, b) == {a, fleet.iface, fleet.ip}
    assert impacted_by(graph, fleet.iface) == {a, b, fleet.ip}
