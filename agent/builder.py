"""The report builder: run every enabled collector, merge their contributions, say how complete
the run was.

A collector that raises, or returns something the wire format would reject, is recorded as
`failed` with the reason and contributes nothing; the others still run. Reconcile relies on that
status: it retires nothing a failed collector would have reported.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec

from agent import FLEETGRAPH_VERSION
from agent.collectors import COLLECTORS
from agent.collectors.base import COMPUTER_REF, Collector, Contribution
from agent.context import Context
from cmdb.report import SCHEMA_V1, CollectorStatus, Item, Relation, Report, ReportError, Source, check_item

MAX_REASON = 2048
_encoder = msgspec.json.Encoder()
_items_decoder = msgspec.json.Decoder(list[Item])
_relations_decoder = msgspec.json.Decoder(list[Relation])


class ContributionError(ValueError):
    """A collector returned items or relations the report cannot carry (a bug in the collector)."""


class ReportGraph:
    """Items merged by ref and deduplicated relations. The Computer item is seeded with the agent
    id; collectors add to it. A merged item keeps the name of the first collector that
    contributed to it; identifiers that are lists (MACs) are unioned, other values: first wins."""

    def __init__(self, agent_id: str):
        self.items: dict[str, Item] = {
            COMPUTER_REF: Item(class_="Computer", ref=COMPUTER_REF, identifiers={"agent_id": agent_id}),
        }
        self.relations: list[Relation] = []
        self._edges: set[tuple[str, str, str, bytes]] = set()

    def validated(self, collector: str, contribution: Contribution) -> tuple[list[Item], list[Relation]]:
        """The contribution as wire structs, checked against the report rules; raises
        ContributionError naming what is wrong. Nothing is merged yet."""
        items = [Item(class_=c.class_, ref=c.ref, identifiers=c.identifiers, attributes=c.attributes,
                      collector=collector, reference=c.reference) for c in contribution.items.values()]
        relations = [Relation(from_=f, type=t, to=to, attributes=contribution.relation_attributes.get(i, {}))
                     for i, (f, t, to) in enumerate(contribution.relations)]
        try:  # the same decoder as the collector's edge, so what passes here is accepted there
            items = _items_decoder.decode(_encoder.encode(items))
            relations = _relations_decoder.decode(_encoder.encode(relations))
        except msgspec.ValidationError as exc:
            raise ContributionError(f"invalid item or relation: {exc}") from None
        for item in items:
            known = self.items.get(item.ref)
            if known is not None and known.class_ != item.class_:
                raise ContributionError(f"ref {item.ref!r} is a {known.class_} already, not a {item.class_}")
            try:
                check_item(item, f"{item.class_} {item.ref!r}")
            except ReportError as exc:
                raise ContributionError(str(exc)) from None
        refs = set(contribution.items) | set(self.items)
        for rel in relations:
            for ref in (rel.from_, rel.to):
                if ref not in refs:
                    raise ContributionError(f"relation {rel.from_} {rel.type} {rel.to}: no item {ref!r}")
        return items, relations

    def merge(self, items: Iterable[Item], relations: Iterable[Relation]) -> None:
        for item in items:
            known = self.items.get(item.ref)
            if known is None:
                self.items[item.ref] = item
                continue
            if known.collector is None:
                known.collector = item.collector
            if not item.reference:  # owned by one collector, pointed at by another: owned
                known.reference = False
            for kind, value in item.identifiers.items():
                current = known.identifiers.get(kind)
                if isinstance(current, list) and isinstance(value, list):
                    known.identifiers[kind] = sorted(set(current) | set(value))
                elif current is None:
                    known.identifiers[kind] = value
            for name, value in item.attributes.items():
                known.attributes.setdefault(name, value)
        for rel in relations:
            edge = (rel.from_, rel.type, rel.to, _encoder.encode(rel.attributes) if rel.attributes else b"")
            if edge not in self._edges:
                self._edges.add(edge)
                self.relations.append(rel)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:MAX_REASON]


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


# Sees each collector's validated contribution before it is merged (merging mutates items), e.g.
# agent.delta.SectionRecorder, which hashes it to tell which sections changed since the last report.
ContributionObserver = Callable[[str, list[Item], list[Relation]], None]


def run_collector(ctx: Context, collector: Collector, graph: ReportGraph,
                  observe: ContributionObserver | None = None) -> CollectorStatus:
    """Run one collector into `graph`; never raises (except KeyboardInterrupt/SystemExit)."""
    start = time.perf_counter()
    try:
        if not collector.is_enabled(ctx):
            return CollectorStatus(status="not_applicable", duration_ms=_elapsed_ms(start))
        items, relations = graph.validated(collector.name, collector.collect(ctx))
        if getattr(collector, "annotates", False):
            # It adds attributes to items another collector owns (licenses on dpkg's packages). If
            # the owner failed, these items must not claim to be a complete collector's view, or
            # reconcile would remove the owner's attributes: no collector, no removals.
            for item in items:
                item.collector = None
        if observe is not None:
            observe(collector.name, items, relations)
        graph.merge(items, relations)
    except Exception as exc:  # one broken collector must not cost the others their results
        return CollectorStatus(status="failed", reason=_reason(exc), duration_ms=_elapsed_ms(start))
    return CollectorStatus(status="ok", duration_ms=_elapsed_ms(start))


def prepare_collectors(ctx: Context, collectors: Iterable[Collector]) -> None:
    """Let the enabled collectors that have a `prepare(ctx)` start their slow, independent work
    (reading files, a command) before any collector runs, so that it overlaps the others. Only a
    head start: a collector's collect() works without it, and reports any failure itself."""
    for collector in collectors:
        prepare = getattr(collector, "prepare", None)
        if prepare is None:
            continue
        try:
            if collector.is_enabled(ctx):
                prepare(ctx)
        except Exception:  # collect() does the work again, and says what failed
            continue


def build_report(ctx: Context, collectors: Iterable[Collector] | None = None,
                 observe: ContributionObserver | None = None) -> Report:
    """A full report of the machine behind `ctx`, from `collectors` (default: the registry);
    `observe` sees each collector's contribution (see run_collector)."""
    collectors = list(COLLECTORS if collectors is None else collectors)
    names = [c.name for c in collectors]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two collectors are named {twice!r}")
    prepare_collectors(ctx, collectors)
    graph = ReportGraph(ctx.agent_id)
    statuses: dict[str, CollectorStatus] = {}
    for collector in collectors:
        statuses[collector.name] = run_collector(ctx, collector, graph, observe)
    return Report(
        schema=SCHEMA_V1,
        report_id=str(uuid.uuid4()),
        source=Source(kind="agent", id=ctx.agent_id, version=FLEETGRAPH_VERSION),
        collected_at=datetime.now(UTC),
        mode="full",
        collectors=statuses,
        items=list(graph.items.values()),
        relations=graph.relations,
    )


def count_by_class(report: Report) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.class_] = counts.get(item.class_, 0) + 1
    return counts
