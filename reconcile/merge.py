"""Merge: what a report's statements change on the CIs it identified (attributes, relations).

Attribute precedence (reconcile.precedence): each stated value is its source's *observation*; the
CI's current value is the winning observation (priority of the source kind for that attribute,
then recency). The store keeps the current value (which is its source's observation) and the
other sources' latest observations (`Store.other_observations`); so a CI reported by one source
only, the common case, has no extra rows, and its no-change report takes the fast path below.

- A stated value: a late report (its source's stored observation is newer) changes nothing. Else
  the winner is picked among the current value, the other observations and this one. A change of
  the winning *value* is an AttributeChange (history); the same value from a new winning source
  only moves the provenance (no history); a losing value is kept as an observation.
- A value not stated by a complete run (`removals_allowed`) of the current value's source kind,
  not newer than the report: the best other observation takes over (history row, with that
  observation's provenance), else the value is removed. As before precedence, removal is scoped
  by source *kind* (a reinstalled agent with a new id still cleans up after its predecessor), and
  that kind's losing observations not restated go too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from cmdb.changes import AttributeChange, JSONValue, Observation, Provenance, RelationChange
from cmdb.junk import is_junk
from cmdb.model import CI_CLASSES
from cmdb.report import Item, Report
from cmdb.store import AttributeValue, Relationship
from reconcile.identify import Identification
from reconcile.precedence import DEFAULT_PRECEDENCE, PrecedenceTable
from reconcile.rules import JUNK_CHECKED_ATTRIBUTES


def canonical_json(value: JSONValue) -> Any:
    """A comparable form of a JSON value: 1 == 1.0, True != 1, lists keep the order sent."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        return ("number", value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canonical_json(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((str(k), canonical_json(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def same_json_value(a: JSONValue, b: JSONValue) -> bool:
    if type(a) is type(b) and type(a) in _PLAIN_TYPES:
        return a == b  # the common case (two strings, two ints), without building canonical forms
    return canonical_json(a) == canonical_json(b)


_PLAIN_TYPES = (str, int)


def report_value_wins(stored: AttributeValue, provenance: Provenance) -> bool:
    """Recency within one source kind: a report decides about a value of its own kind unless the
    stored value was observed after it (removals; precedence across sources: reconcile.precedence)."""
    return stored.provenance.observed_at <= provenance.observed_at


def stated_attributes(item: Item) -> dict[str, JSONValue]:
    """The values the item states. Null and junk hardware placeholders mean unknown: not stated."""
    return {
        name: value for name, value in item.attributes.items()
        if value is not None and not (name in JUNK_CHECKED_ATTRIBUTES and is_junk(value))
    }


def removals_allowed(report: Report, item: Item) -> bool:
    """Only a full report whose collector for this item ran completely ("ok") may remove a value:
    a failed, partial or unknown run, or a delta, says nothing about what it did not send."""
    if report.mode != "full" or item.collector is None:
        return False
    status = report.collectors.get(item.collector)
    return status is not None and status.status == "ok"


@dataclass(slots=True)
class AttributeDiff:
    changes: list[AttributeChange] = field(default_factory=list)
    measurements: list[AttributeChange] = field(default_factory=list)
    confirmed: list[tuple[str, str]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    observations_dropped: list[tuple[str, str, str, str]] = field(default_factory=list)
    provenance_moves: list[Observation] = field(default_factory=list)


OtherObservations = dict[str, dict[str, list[AttributeValue]]]  # Store.other_observations


def diff_attributes(report: Report, identification: Identification,
                    current: dict[str, dict[str, AttributeValue]], provenance: Provenance,
                    others_of: OtherObservations | None = None,
                    precedence: PrecedenceTable = DEFAULT_PRECEDENCE) -> AttributeDiff:
    """What the report's attribute statements change. `current` holds each CI's current values
    (each one its source's observation), `others_of` the other sources' observations
    (Store.other_observations); `precedence` picks the winner among them (reconcile.precedence)."""
    diff = AttributeDiff()
    changes_, measurements, confirmed = diff.changes, diff.measurements, diff.confirmed
    observed_at, source_kind, source_id = provenance.observed_at, provenance.source_kind, provenance.source_id
    others_of = others_of or {}
    items_by_ref = {item.ref: item for item in report.items}
    measured_of: dict[str, frozenset[str]] = {}
    no_values: dict[str, AttributeValue] = {}
    no_others: dict[str, list[AttributeValue]] = {}
    # The hot loop of a no-change report (every stated value confirmed by the source that holds
    # it, no other source's observation): same_json_value is inlined for the common case, a stored
    # value of the same plain type. Anything else goes through the precedence decision.
    for ci_id, ref in identification.attribute_ref_of_ci.items():
        item = items_by_ref[ref]
        measured = measured_of.get(item.class_)
        if measured is None:
            measured = measured_of[item.class_] = frozenset(CI_CLASSES[item.class_].measurements)
        stored = current.get(ci_id, no_values)
        others = others_of.get(ci_id, no_others)
        stated = stated_attributes(item)
        for name, value in stated.items():
            old = stored.get(name)
            if others and name in others:
                _decide_stated(diff, precedence, item.class_, ci_id, name, value, old, others[name],
                               provenance, measurements if name in measured else changes_)
                continue
            if old is None or old.value is None:
                (measurements if name in measured else changes_).append(AttributeChange(ci_id, name, None, value))
                continue
            prov = old.provenance
            if prov.source_id != source_id or prov.source_kind != source_kind:
                _decide_stated(diff, precedence, item.class_, ci_id, name, value, old, (),
                               provenance, measurements if name in measured else changes_)
                continue
            if prov.observed_at > observed_at:  # a late report: this source's newer value stays
                continue
            stored_value = old.value
            if (stored_value == value and type(stored_value) is type(value) and type(value) in _PLAIN_TYPES
                    or same_json_value(stored_value, value)):
                confirmed.append((ci_id, name))
            else:
                (measurements if name in measured else changes_).append(
                    AttributeChange(ci_id, name, stored_value, value))
        if not removals_allowed(report, item) or (
                not others and len(stated) == len(stored) and stated.keys() == stored.keys()):
            continue  # nothing may be removed, or every stored name is stated
        fell_back: set[str] = set()
        for name, old in stored.items():
            if (old.value is not None and name not in stated and old.provenance.source_kind == source_kind
                    and report_value_wins(old, provenance)):
                fell_back.add(name)
                _fall_back(diff, precedence, item.class_, ci_id, name, old, others.get(name, ()), provenance,
                           measurements if name in measured else changes_)
        for name, observations in others.items():  # losing observations of this kind, not restated
            if name not in stated and name not in fell_back:
                diff.observations_dropped.extend(
                    _key(ci_id, name, o.provenance) for o in observations
                    if o.provenance.source_kind == source_kind and report_value_wins(o, provenance))
    return diff


def _key(ci_id: str, name: str, prov: Provenance) -> tuple[str, str, str, str]:
    return (ci_id, name, prov.source_kind, prov.source_id)


def _best(precedence: PrecedenceTable, ci_class: str, name: str, incumbent: AttributeValue | None,
          candidates: Iterable[AttributeValue]) -> AttributeValue | None:
    """The winning observation: the incumbent unless a candidate strictly beats it (rank, then
    recency); candidates in (kind, id) order so that full ties resolve the same way every time."""
    best = incumbent
    for c in sorted(candidates, key=lambda o: (o.provenance.source_kind, o.provenance.source_id)):
        if best is None or precedence.beats(c.provenance.source_kind, c.provenance.observed_at,
                                            best.provenance.source_kind, best.provenance.observed_at,
                                            name, ci_class):
            best = c
    return best


def _switch_to(diff: AttributeDiff, ci_id: str, name: str, old: AttributeValue | None,
               winner: AttributeValue, provenance: Provenance | None, out: list[AttributeChange]) -> None:
    """The current value now comes from `winner` (provenance None: the report's own value)."""
    if old is None or old.value is None:
        out.append(AttributeChange(ci_id, name, None, winner.value, provenance))
    elif same_json_value(old.value, winner.value):
        diff.provenance_moves.append(Observation(ci_id, name, winner.value, winner.provenance))
    else:
        out.append(AttributeChange(ci_id, name, old.value, winner.value, provenance))


def _decide_stated(diff: AttributeDiff, precedence: PrecedenceTable, ci_class: str, ci_id: str, name: str,
                   value: JSONValue, old: AttributeValue | None, others: Iterable[AttributeValue],
                   provenance: Provenance, out: list[AttributeChange]) -> None:
    """A stated value when more than one source has an observation of the attribute."""
    mine = (provenance.source_kind, provenance.source_id)
    own = old is not None and (old.provenance.source_kind, old.provenance.source_id) == mine
    rest = []
    stored_mine = old if own else None
    for o in others:
        if (o.provenance.source_kind, o.provenance.source_id) == mine:
            stored_mine = o
        else:
            rest.append(o)
    if stored_mine is not None and stored_mine.provenance.observed_at > provenance.observed_at:
        return  # a late report: its source's newer observation stays, and so does the winner
    new = AttributeValue(value, provenance)
    if own or old is None or old.value is None:
        winner = _best(precedence, ci_class, name, new, rest)
    else:
        winner = _best(precedence, ci_class, name, old, [new, *rest])
    if winner is new:
        if own:
            if same_json_value(old.value, value):
                diff.confirmed.append((ci_id, name))
            else:
                out.append(AttributeChange(ci_id, name, old.value, value))
            return
        if stored_mine is not None:
            diff.observations_dropped.append(_key(ci_id, name, provenance))
        if old is not None and old.value is not None:
            diff.observations.append(Observation(ci_id, name, old.value, old.provenance))
        _switch_to(diff, ci_id, name, old, new, None, out)
        return
    diff.observations.append(Observation(ci_id, name, value, provenance))  # kept, not current
    if winner is old:
        return
    # Another stored observation outranks the current value (the order was reconfigured).
    assert winner is not None
    diff.observations_dropped.append(_key(ci_id, name, winner.provenance))
    if old is not None and old.value is not None and not own:
        diff.observations.append(Observation(ci_id, name, old.value, old.provenance))
    _switch_to(diff, ci_id, name, old, winner, winner.provenance, out)


def _fall_back(diff: AttributeDiff, precedence: PrecedenceTable, ci_class: str, ci_id: str, name: str,
               old: AttributeValue, others: Iterable[AttributeValue], provenance: Provenance,
               out: list[AttributeChange]) -> None:
    """A complete run of the current value's source kind no longer states it: the best other
    source's observation takes over (with a history row), else the value is removed. Observations
    of that kind which are not newer than the report go too (its run is complete)."""
    remaining = []
    for o in others:
        if o.provenance.source_kind == provenance.source_kind and report_value_wins(o, provenance):
            diff.observations_dropped.append(_key(ci_id, name, o.provenance))
        else:
            remaining.append(o)
    winner = _best(precedence, ci_class, name, None, remaining)
    if winner is None:
        out.append(AttributeChange(ci_id, name, old.value, None))
        return
    diff.observations_dropped.append(_key(ci_id, name, winner.provenance))
    _switch_to(diff, ci_id, name, old, winner, winner.provenance, out)


RelationKey = tuple[str, str, str]  # (type, from ci, to ci)


@dataclass(slots=True)
class RelationDiff:
    added: list[RelationChange] = field(default_factory=list)
    seen: list[RelationKey] = field(default_factory=list)
    # Active relations out of CIs the report saw that it did not re-state. Retiring them is scoped
    # staleness (issue #5): only for a complete run of the same source and scope. Not acted on yet.
    not_restated: list[Relationship] = field(default_factory=list)


def stated_relations(report: Report, identification: Identification) -> list[RelationKey]:
    """The report's relations as CI ids, once each; relations to unplaced items are dropped, and so
    are self-loops (two refs of one report that resolved to one CI)."""
    ci_of_ref = identification.ci_of_ref
    out: dict[RelationKey, None] = {}
    for rel in report.relations:
        from_ci, to_ci = ci_of_ref.get(rel.from_), ci_of_ref.get(rel.to)
        if from_ci and to_ci and from_ci != to_ci:
            out[(rel.type, from_ci, to_ci)] = None
    return list(out)


def diff_relations(stated: Iterable[RelationKey], existing: Iterable[Relationship]) -> RelationDiff:
    diff = RelationDiff()
    active = {(r.type, r.from_ci, r.to_ci): r for r in existing if r.state == "active"}
    stated_set = set()
    for key in stated:
        stated_set.add(key)
        if key in active:
            diff.seen.append(key)
        else:
            diff.added.append(RelationChange(*key, action="add"))
    diff.not_restated = [r for key, r in active.items() if key not in stated_set]
    return diff
