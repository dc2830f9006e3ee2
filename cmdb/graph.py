"""The relationship graph as networkx, and impact analysis on it.

The store is the system of record; this graph is a read-only mirror of its active relationships
(`Store.graph()`), built for the question incident responders ask: what breaks if this CI fails?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from cmdb.model import REL_TYPES
from cmdb.store import Relationship

# Per relationship type, whether a failure travels along the edge (from -> to) and against it.
_DOWNSTREAM = frozenset(name for name, rel in REL_TYPES.items() if rel.impact in ("from_to", "both"))
_UPSTREAM = frozenset(name for name, rel in REL_TYPES.items() if rel.impact in ("to_from", "both"))


def build_graph(relationships: Iterable[Relationship], ci_classes: Mapping[str, str]) -> nx.MultiDiGraph:
    """Nodes are CI ids with `ci_class` (every CI in ci_classes, and every relationship end);
    edges run from -> to, keyed by relationship type, with first_seen and last_seen."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from((ci_id, {"ci_class": ci_class}) for ci_id, ci_class in ci_classes.items())
    graph.add_edges_from((r.from_ci, r.to_ci, r.type, {"first_seen": r.first_seen, "last_seen": r.last_seen})
                         for r in relationships)
    for ci_id, data in graph.nodes(data=True):
        data.setdefault("ci_class", ci_classes.get(ci_id))
    return graph


def impacted_by(graph: nx.MultiDiGraph, ci_id: str) -> set[str]:
    """The CIs impacted, directly or transitively, if `ci_id` fails (not ci_id itself).

    A DEPENDS_ON B ("to_from"): B failing impacts A. H HAS_INTERFACE I ("from_to"): H failing
    impacts I. "both" goes either way, "none" (and a type the model does not know) stops impact.
    """
    if ci_id not in graph:
        return set()
    reached = {ci_id}
    frontier = [ci_id]
    while frontier:
        node = frontier.pop()
        for _, to_ci, rel_type in graph.out_edges(node, keys=True):
            if rel_type in _DOWNSTREAM and to_ci not in reached:
                reached.add(to_ci)
                frontier.append(to_ci)
        for from_ci, _, rel_type in graph.in_edges(node, keys=True):
            if rel_type in _UPSTREAM and from_ci not in reached:
                reached.add(from_ci)
                frontier.append(from_ci)
    reached.discard(ci_id)
    return reached
