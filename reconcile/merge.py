"""Merge: what a report's statements change on the CIs it identified (attributes, relations).

Attribute precedence, first version: the report's value wins when it is at least as recent as
the stored one (recency); a stored value observed *after* the report was collected (an outbox
replaying old reports) is left alone. `report_value_wins` is the one place a per-attribute
precedence table (agent > ssh > snmp > nmap) will plug in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from cmdb.changes import AttributeChange, JSONValue, Provenance, RelationChange
from cmdb.junk import is_junk
from cmdb.model import CI_CLASSES
from cmdb.report import Item, Report
from cmdb.store import AttributeValue, Relationship
from reconcile.identify import Identification
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
    """Recency: the report decides unless the stored value was observed after it."""
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


def diff_attributes(report: Report, identification: Identification,
                    current: dict[str, dict[str, AttributeValue]], provenance: Provenance) -> AttributeDiff:
    diff = AttributeDiff()
    changes_, measurements, confirmed = diff.changes, diff.measurements, diff.confirmed
    observed_at, source_kind = provenance.observed_at, provenance.source_kind
    items_by_ref = {item.ref: item for item in report.items}
    measured_of: dict[str, frozenset[str]] = {}
    no_values: dict[str, AttributeValue] = {}
    # The hot loop of a no-change report (every stated value confirmed): report_value_wins and
    # same_json_value are inlined for the common case, a stored value as recent as the report's
    # of the same plain type.
    for ci_id, ref in identification.attribute_ref_of_ci.items():
        item = items_by_ref[ref]
        measured = measured_of.get(item.class_)
        if measured is None:
            measured = measured_of[item.class_] = frozenset(CI_CLASSES[item.class_].measurements)
        stored = current.get(ci_id, no_values)
        stated = stated_attributes(item)
        for name, value in stated.items():
            old = stored.get(name)
            if old is None or old.value is None:
                (measurements if name in measured else changes_).append(AttributeChange(ci_id, name, None, value))
                continue
            if old.provenance.observed_at > observed_at:  # not report_value_wins
                continue
            stored_value = old.value
            if (stored_value == value and type(stored_value) is type(value) and type(value) in _PLAIN_TYPES
                    or same_json_value(stored_value, value)):
                confirmed.append((ci_id, name))
            else:
                (measurements if name in measured else changes_).append(
                    AttributeChange(ci_id, name, stored_value, value))
        if len(stated) == len(stored) and stated.keys() == stored.keys() or not removals_allowed(report, item):
            continue  # every stored name is stated: nothing to remove
        for name, old in stored.items():
            if (old.value is not None and name not in stated and old.provenance.source_kind == source_kind
                    and report_value_wins(old, provenance)):
                changes = measurements if name in measured else changes_
                changes.append(AttributeChange(ci_id, name, old.value, None))
    return diff


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
