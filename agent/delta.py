"""Delta reports: after a full report is acknowledged, send only the sections that changed.

A *section* is one collector's contribution (its items and relations). Each run hashes every
section (`SectionRecorder`); the agent compares those hashes with what the CMDB is known to hold
and sends the sections that differ. The unchanged ones are listed as
`CollectorStatus(status="ok", unchanged=True)` and carry no items, so reconcile states nothing and
retires nothing for them. The Computer item is always present with all its identifiers: reconcile
needs them to find the machine.

What "the CMDB is known to hold" means (the ledger in `<state_dir>/delta.json`):

- `base_report_id` and `sections` are the *acknowledged* state: updated only when the collector
  answers 202/200 for a report, just before it leaves the outbox. A full report replaces the
  base and every section hash; a delta updates the hashes of the sections it carried. A report
  that is never acknowledged never changes the ledger, so a lost report costs nothing but a
  resend of the same sections.
- Reports still queued in the outbox are folded on top of the ledger (`project`), in order: the
  outbox delivers oldest first, so by the time a new report arrives the collector has every
  queued report before it. Comparing against this projection, not the raw ledger, is what keeps a
  change that flips back while the collector is down (A -> B queued -> A) from being lost: the
  third run sends A again instead of calling it unchanged.
- A delta names as its base the newest full report of that projection (acknowledged, or queued
  ahead of it). Deltas are never chained on deltas: any delta can be lost or refused without
  corrupting the next one, and one full report resets everything.
- Anything that breaks the projection (a queued report dropped or refused, the collector saying it
  does not know the base) sets `force_full`: the next report is a full one, which restores the
  CMDB to the truth whatever was lost. A full report is also sent every `full_every` runs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agent.collectors.base import COMPUTER_REF
from agent.files import write_private_atomically
from cmdb.model import CI_CLASSES
from cmdb.report import CollectorStatus, Item, Relation, Report

DELTA_STATE_FILE = "delta.json"
_canonical = msgspec.json.Encoder(order="sorted")

Edge = tuple[str, str, str]  # (from ref, type, to ref)


@dataclass(frozen=True)
class Section:
    """One collector's contribution as it was before merging: its hash, the attribute names it
    stated per ref, and its relations (to cut a delta out of the merged full report)."""

    digest: str
    attributes: Mapping[str, frozenset[str]]
    relations: frozenset[Edge]


def _without_measurements(item: Item) -> Item:
    """The item as far as change detection goes: measurement readings (free space, ...) change
    every run and are not changes, so they alone never make a section "changed"."""
    measured = CI_CLASSES[item.class_].measurements
    if not measured or not measured & item.attributes.keys():
        return item
    attributes = {k: v for k, v in item.attributes.items() if k not in measured}
    return msgspec.structs.replace(item, attributes=attributes)


def section_digest(items: Iterable[Item], relations: Iterable[Relation]) -> str:
    """sha256 of the canonical encoding (sorted keys, items by ref, relations sorted), measurement
    attributes left out."""
    doc = [sorted((_without_measurements(i) for i in items), key=lambda i: i.ref),
           sorted(relations, key=lambda r: (r.from_, r.type, r.to))]
    return hashlib.sha256(_canonical.encode(doc)).hexdigest()


class SectionRecorder:
    """The observer handed to `agent.builder.build_report`: records every collector's section."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}

    def __call__(self, name: str, items: list[Item], relations: list[Relation]) -> None:
        self.sections[name] = Section(
            digest=section_digest(items, relations),
            attributes={item.ref: frozenset(item.attributes) for item in items},
            relations=frozenset((r.from_, r.type, r.to) for r in relations),
        )


def carried_sections(report: Report, sections: Mapping[str, Section]) -> dict[str, str]:
    """{collector: hash} of the sections whose content `report` carries (status ok, not unchanged)."""
    return {name: sections[name].digest for name, status in report.collectors.items()
            if status.status == "ok" and not status.unchanged and name in sections}


# -- the ledger -------------------------------------------------------------------------------

@dataclass
class DeltaState:
    """The acknowledged state (see the module doc) and the run counter, in `delta.json`."""

    base_report_id: str | None = None
    sections: dict[str, str] = field(default_factory=dict)
    runs_since_full: int = 0
    force_full: str | None = None  # why the next report must be full

    @classmethod
    def load(cls, state_dir: Path) -> DeltaState:
        path = Path(state_dir) / DELTA_STATE_FILE
        try:
            doc = json.loads(path.read_text())
            return cls(base_report_id=doc.get("base_report_id"), sections=dict(doc.get("sections") or {}),
                       runs_since_full=int(doc.get("runs_since_full") or 0), force_full=doc.get("force_full"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, AttributeError):
            # A damaged ledger is never trusted: start over with a full report.
            return cls(force_full=f"{path} was unreadable")

    def save(self, state_dir: Path) -> None:
        data = json.dumps({"base_report_id": self.base_report_id, "sections": self.sections,
                           "runs_since_full": self.runs_since_full, "force_full": self.force_full},
                          indent=1, sort_keys=True).encode()
        write_private_atomically(Path(state_dir) / DELTA_STATE_FILE, data)

    def acknowledged(self, meta: Mapping[str, Any]) -> None:
        """The collector stored the report described by an outbox `meta`."""
        sections = dict(meta.get("sections") or {})
        if meta.get("mode") == "full":
            self.base_report_id = meta["report_id"]
            self.sections = sections
        else:
            self.sections.update(sections)

    def base_refused(self, base_report_id: str | None) -> None:
        if base_report_id and self.base_report_id == base_report_id:
            self.base_report_id = None
            self.sections = {}
        self.force_full = f"the collector does not know base report {base_report_id}"


def project(state: DeltaState, queued: Iterable[Mapping[str, Any]]) -> DeltaState:
    """What the CMDB will hold once every queued report (oldest first) is delivered."""
    projected = DeltaState(state.base_report_id, dict(state.sections), state.runs_since_full, state.force_full)
    for meta in queued:
        projected.acknowledged(meta)
    return projected


@dataclass(frozen=True)
class Plan:
    mode: str  # "full" or "delta"
    reason: str  # why full, or what the delta is relative to
    base_report_id: str | None = None
    unchanged: frozenset[str] = frozenset()


def plan_mode(state: DeltaState, queued: Iterable[Mapping[str, Any]], full_every: int) -> Plan:
    """Full or delta. Nothing in it depends on what the collectors find, so a run knows it before
    collecting (the fast path, agent.fastpath, skips collectors in delta runs only)."""
    if state.force_full:
        return Plan("full", state.force_full)
    if full_every <= 1:
        return Plan("full", "delta reports are off (agent.full_every <= 1)")
    projected = project(state, queued)
    if projected.base_report_id is None:
        return Plan("full", "no full report acknowledged yet")
    if state.runs_since_full + 1 >= full_every:
        return Plan("full", f"a full report every {full_every} runs (agent.full_every)")
    return Plan("delta", f"relative to {projected.base_report_id}", projected.base_report_id)


def plan_report(state: DeltaState, queued: Iterable[Mapping[str, Any]], statuses: Mapping[str, CollectorStatus],
                sections: Mapping[str, Section], full_every: int) -> Plan:
    """Full or delta, and which sections are unchanged."""
    queued = list(queued)
    plan = plan_mode(state, queued, full_every)
    if plan.mode == "full":
        return plan
    projected = project(state, queued)
    unchanged = frozenset(name for name, status in statuses.items()
                          if status.status == "ok" and name in sections
                          and projected.sections.get(name) == sections[name].digest)
    return Plan("delta", plan.reason, plan.base_report_id, unchanged)


# -- cutting a delta out of the full report ------------------------------------------------------

def build_delta(full: Report, sections: Mapping[str, Section], unchanged: Iterable[str],
                base_report_id: str) -> Report:
    """The delta of `full`: the items and relations of the changed sections, with the attributes
    those sections stated (values as merged in the full report), the Computer with all its
    identifiers, and whatever identification needs around them: the scope relations of dependent
    items up to their host, and the far ends of relations (identifiers only)."""
    unchanged = frozenset(unchanged)
    names: dict[str, set[str]] = {COMPUTER_REF: set()}
    edges: set[Edge] = set()
    for name, section in sections.items():
        status = full.collectors.get(name)
        if name in unchanged or status is None or status.status != "ok":
            continue
        for ref, attrs in section.attributes.items():
            names.setdefault(ref, set()).update(attrs)
        edges |= section.relations

    items_by_ref = {item.ref: item for item in full.items}
    by_end: dict[tuple[str, str, str], list[Relation]] = {}  # (end, ref, type) -> relations
    for rel in full.relations:
        by_end.setdefault(("from", rel.from_, rel.type), []).append(rel)
        by_end.setdefault(("to", rel.to, rel.type), []).append(rel)

    # A dependent item (an IP, a package install) is identified through its host: keep the chain.
    todo = list(names)
    while todo:
        item = items_by_ref.get(todo.pop())
        if item is None:
            continue
        for scope in CI_CLASSES[item.class_].scope:
            for rel in by_end.get((scope.dependent_end, item.ref, scope.rel_type), ()):
                edges.add((rel.from_, rel.type, rel.to))
                parent = rel.to if scope.dependent_end == "from" else rel.from_
                if parent not in names:
                    names[parent] = set()
                    todo.append(parent)
    relations = [rel for rel in full.relations if (rel.from_, rel.type, rel.to) in edges]
    for rel in relations:
        for ref in (rel.from_, rel.to):
            names.setdefault(ref, set())

    items = [msgspec.structs.replace(item, attributes={k: v for k, v in item.attributes.items()
                                                       if k in names[item.ref]})
             for item in full.items if item.ref in names]
    collectors = {
        name: (CollectorStatus(status="ok", unchanged=True, duration_ms=status.duration_ms)
               if name in unchanged and status.status == "ok" else status)
        for name, status in full.collectors.items()
    }
    return msgspec.structs.replace(full, report_id=str(uuid.uuid4()), mode="delta",
                                   base_report_id=base_report_id, collectors=collectors,
                                   items=items, relations=relations)
