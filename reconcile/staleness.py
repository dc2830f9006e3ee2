"""Scoped staleness: retire what a complete run of the same scope no longer states (issue #5).

A *scope* is one collector of one source about one subject: (source kind, source id, collector
name, subject CI). The subject is the host the report is about (its SUBJECT_CLASSES items and
the hosts of its dependent items: the Computer of an agent, each device of a scanner), so an SSH
scanner's complete report about host B says nothing about host A. The store keeps, per scope, a
run stamp (the collected_at of its last complete or unchanged run) and a record of every
dependent CI and relation the scope saw, with a `missed` count: how many complete runs of the
scope in a row have not stated it (store tables `scope` and `seen_by`, sqlite_schema._V4).
Non-dependent CIs (the hosts themselves, Software products) are never records: they never retire
here (a host that stops being reported is silence, another feature).

What a run of a collector C in a report is:

- *complete*: C's status is "ok" and not `unchanged`. In a full report, C's items are everything C
  found; in a delta, a section the delta carries is C's whole section (agent/delta.py).
- *unchanged* (a delta's `{"status": "ok", "unchanged": true}`): C found exactly what it sent
  last time. What the scope's last complete run stated (its records with missed = 0) counts as
  seen again at this run; records already missed keep their count (the section is the one that
  missed them: neither a new miss nor a sighting). Nothing is counted up or retired.
- *partial*: C failed, is not_applicable, is absent from the report, or one of its items could not
  be placed (a dependent item without a host): nothing is counted, stamped or retired for C.
- *late*: a complete or unchanged run whose collected_at is not after the scope's stamp (a replay,
  an outbox delivering out of order) is treated as partial. This is what makes reconciling one
  report twice change nothing the second time.

What a complete run of C states, per subject: the dependent CIs that its items (collector C,
not references) resolved to, hung off that subject, and the relations it owns whose owning item
hangs off (or is) that subject. A relation is owned by the collector of its dependent end when it
is the scope relation of a dependent item (a SoftwareInstall's INSTALLED_ON, an Interface's
HAS_INTERFACE, an IPAddress's HAS_IP), else by the collector of its `from` item; a relation with a
reference end, or whose owning item has no collector, is owned by no scope and never retired by a
miss. Reference items and items without a collector state nothing for any scope.

A complete run of C sets missed = 0 on what it states (new records start at 0) and adds 1 to the
count of every other record of C (a count at or over the threshold is left as it is).

The retirement rule. With N = `retire_after_missed_runs` (>= 1), a CI or relation is retired by a
report when all of these hold:

1. a scope that ran completely in this report has missed it at least N times;
2. every scope with a record of it has missed it at least N times: a scope that saw it and has not
   run completely since (or not N times) keeps it active, whatever other sources say;
3. the report itself does not state it (an item of any collector, or none, resolved to the CI;
   the relation is among the report's relations, references included);
4. it is active.

The relations of a retired CI, in and out, are retired in the same change set (a SoftwareInstall
takes its INSTALLED_ON and INSTANCE_OF with it). The records of whatever retires are dropped: if it
is stated again by a report newer than its last sighting, a retired CI becomes active again
(`ci.reactivate`, same id: its identifiers stay bound) and a retired relation is added again,
both with fresh records; an older report (delivered late) leaves it retired. Nothing here retires on
silence or age: only a complete run that no longer states something does.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from cmdb.changes import RelationChange, ScopeDigest, SeenMark
from cmdb.model import CI_CLASSES
from cmdb.report import Item, Relation, Report
from cmdb.store import ScopeState, Store
from reconcile.identify import Identification

Key = tuple[str, str, str]  # (ci id, "", "") for a CI; (from ci, type, to ci) for a relation
RelationKey = tuple[str, str, str]  # (type, from ci, to ci), as reconcile.merge


@dataclass(slots=True)
class Staleness:
    scope_runs: list[str] = field(default_factory=list)
    marks: list[SeenMark] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    relations_retired: list[RelationChange] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    # Retired CIs stated only by a report not newer than their last sighting: left retired, and
    # the report's relations to them are not added.
    stale: set[str] = field(default_factory=set)
    # With stored digests (the fast path): the new statement digests of complete scopes.
    digests: list[ScopeDigest] = field(default_factory=list)


# The classes a source reports *about*: the hosts dependent CIs hang off (cmdb.model scopes).
SUBJECT_CLASSES = frozenset({"Computer", "VirtualMachine", "NetworkDevice", "Printer"})
Scope = tuple[str, str]  # (collector, subject ci) of the report's source


# (class, relation type, end) of every scope relation, and the dependent classes: read for every
# item and relation of every report.
_SCOPE_ENDS = frozenset((c.name, s.rel_type, s.dependent_end) for c in CI_CLASSES.values() for s in c.scope)
_DEPENDENT = frozenset(c.name for c in CI_CLASSES.values() if c.is_dependent)


def relation_owner(rel: Relation, items_by_ref: dict[str, Item]) -> Item | None:
    """The item whose collector's complete run states `rel` (see the module doc), or None."""
    a, b = items_by_ref.get(rel.from_), items_by_ref.get(rel.to)
    if a is None or b is None or a.reference or b.reference:
        return None
    if (a.class_, rel.type, "from") in _SCOPE_ENDS:
        return a
    if (b.class_, rel.type, "to") in _SCOPE_ENDS:
        return b
    return a


def report_subjects(report: Report, identification: Identification) -> set[str]:
    """The CIs the report is about: the hosts of its dependent items, and its items of SUBJECT_CLASSES."""
    ci_of_ref = identification.ci_of_ref
    subjects = set(identification.host_of_ref.values())
    subjects.update(ci_of_ref[item.ref] for item in report.items
                    if item.class_ in SUBJECT_CLASSES and not item.reference and item.ref in ci_of_ref)
    return subjects


def scoped_statements(report: Report, identification: Identification, complete: set[str],
                      subjects: set[str]) -> dict[Scope, set[Key]]:
    """{(collector, subject): what its complete run states}, for the collectors in `complete`."""
    ci_of_ref, host_of_ref = identification.ci_of_ref, identification.host_of_ref
    items_by_ref = {item.ref: item for item in report.items}

    out: dict[Scope, set[Key]] = defaultdict(set)
    for item in report.items:
        if (item.collector in complete and not item.reference and item.class_ in _DEPENDENT
                and (ci_id := ci_of_ref.get(item.ref)) and (subject := host_of_ref.get(item.ref))):
            out[(item.collector, subject)].add((ci_id, "", ""))
    for rel in report.relations:
        owner = relation_owner(rel, items_by_ref)
        if owner is None or owner.collector not in complete:
            continue
        # the owner's subject: a dependent's host, else the owner itself when it is a subject
        if owner.class_ in _DEPENDENT:
            subject = host_of_ref.get(owner.ref)
        else:
            subject = ci_of_ref.get(owner.ref)
            subject = subject if subject in subjects else None
        if subject is None:
            continue
        from_ci, to_ci = ci_of_ref.get(rel.from_), ci_of_ref.get(rel.to)
        if from_ci and to_ci and from_ci != to_ci:
            out[(owner.collector, subject)].add((from_ci, rel.type, to_ci))
    return out


def statement_digest(stated: Collection[Key]) -> bytes:
    """A digest of what a scope's run states, whatever the order it was found in."""
    text = "\n".join(sorted("\t".join(key) for key in stated))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def compute_staleness(store: Store, report: Report, identification: Identification,
                      stated_relations: list[RelationKey], retire_after_missed_runs: int = 1,
                      stored_digests: Mapping[Scope, bytes] | None = None,
                      known_active: Collection[str] = ()) -> Staleness:
    """What the report's complete runs stamp, count and retire, and the retired CIs it brings back
    (reads only: `scope_states` once, `retired_among` once, and for retirement candidates only,
    `seen_records`, `retired_among` and `relationships_touching`).

    The fast path (reconcile.fastpath) passes `stored_digests`, the source's scopes whose records
    are exactly what their last complete run stated, none missed: a complete run stating the same
    again counts and marks nothing, so those records are not read; and `known_active`, CIs it
    knows are active. Then `digests` says which scopes' records are exactly their statements
    after this report."""
    threshold = retire_after_missed_runs
    if threshold < 1:
        raise ValueError(f"retire_after_missed_runs must be at least 1, got {threshold}")
    out = Staleness()
    new_ids = identification.new_ci_ids
    seen = identification.resolved_ci_ids()
    existing = [ci_id for ci_id in seen if ci_id not in new_ids]
    maybe_retired = [ci_id for ci_id in existing if ci_id not in known_active] if known_active else existing
    retired = store.retired_among(maybe_retired) if maybe_retired else {}
    out.reactivated = sorted(c for c, last_seen in retired.items() if last_seen < report.collected_at)
    out.stale = set(retired) - set(out.reactivated)

    collector_of = {item.ref: item.collector for item in report.items}
    unplaced = {collector_of.get(s.item_ref) for s in identification.skipped}
    ran = [name for name, status in report.collectors.items() if status.status == "ok" and name not in unplaced]
    subjects = sorted(report_subjects(report, identification))
    if not ran or not subjects:
        return out
    source = report.source
    carried = [c for c in ran if not report.collectors[c].unchanged]  # only these need their records
    settled: set[Scope] = set()
    digests: dict[Scope, bytes] = {}
    if stored_digests is not None:
        statements = scoped_statements(report, identification, set(carried), set(subjects))
        digests = {(c, s): statement_digest(statements.get((c, s), ())) for c in carried for s in subjects}
        settled = {scope for scope, digest in digests.items() if stored_digests.get(scope) == digest}
        carried = [c for c in carried if any((c, s) not in settled for s in subjects)]
    states = store.scope_states(source.kind, source.id, [(c, s) for c in ran for s in subjects], carried)
    observed = report.collected_at
    fresh = [scope for scope, state in states.items() if state.last_run is None or state.last_run < observed]
    complete = [scope for scope in fresh if not report.collectors[scope[0]].unchanged]
    out.scope_runs = fresh
    if stored_digests is None:
        statements = scoped_statements(report, identification, {c for c, _ in complete}, set(subjects))

    candidates: set[Key] = set()
    counted: dict[tuple[Scope, Key], int] = {}  # (scope, key) -> missed after this report
    for scope in complete:
        if scope in settled:
            continue  # its records are what it states again, none missed: nothing to mark or count
        stated = statements.get(scope, set())
        records = {(r.ci_id, r.rel_type, r.to_ci): r for r in states[scope].records}
        for key in stated:
            record = records.get(key)
            if record is None or record.missed:
                out.marks.append(SeenMark(*scope, *key, 0, observed))
        for key, record in records.items():
            if key in stated:
                continue
            missed = record.missed if record.missed >= threshold else record.missed + 1
            if missed != record.missed:
                out.marks.append(SeenMark(*scope, *key, missed, record.last_seen_run))
            counted[(scope, key)] = missed
            if missed >= threshold:
                candidates.add(key)

    stated_here = {(ci_id, "", "") for ci_id in seen} | {(f, t, to) for t, f, to in stated_relations}
    candidates -= stated_here
    if candidates:
        _retire(store, report, candidates, counted, threshold, stated_here, out)
    if stored_digests is not None:
        out.digests = _new_digests(complete, settled, states, statements, digests, stored_digests, out)
    return out


def _new_digests(complete: list[Scope], settled: set[Scope], states: Mapping[Scope, ScopeState],
                 statements: Mapping[Scope, set[Key]], digests: Mapping[Scope, bytes],
                 stored: Mapping[Scope, bytes], out: Staleness) -> list[ScopeDigest]:
    """A complete scope's digest holds after this report when every record it keeps is one it
    states (what it no longer states retired here); otherwise its stored digest goes."""
    gone = {(ci_id, "", "") for ci_id in out.retired} | {(r.from_ci, r.type, r.to_ci) for r in out.relations_retired}
    written = []
    for scope in complete:
        if scope in settled:
            continue
        stated = statements.get(scope, set())
        keeps_others = any((key := (r.ci_id, r.rel_type, r.to_ci)) not in stated and key not in gone
                           for r in states[scope].records)
        digest = None if keeps_others else digests[scope]
        if digest != stored.get(scope):
            written.append(ScopeDigest(*scope, digest))
    return written


def _retire(store: Store, report: Report, candidates: set[Key], counted: dict[tuple[Scope, Key], int],
            threshold: int, stated_here: set[Key], out: Staleness) -> None:
    """Apply rules 2 and 4 of the module doc to the candidates, and take relations along."""
    source = report.source
    agreed: dict[Key, bool] = {}
    for record in store.seen_records(sorted({key[0] for key in candidates})):
        key = (record.ci_id, record.rel_type, record.to_ci)
        if key not in candidates:
            continue
        scope = record.scope
        missed = record.missed
        if scope.source_kind == source.kind and scope.source_id == source.id:
            missed = counted.get(((scope.collector, scope.subject), key), missed)
        agreed[key] = agreed.get(key, True) and missed >= threshold
    ci_ids = {key[0] for key in candidates if not key[1] and agreed.get(key)}
    ci_ids -= set(store.retired_among(ci_ids)) if ci_ids else set()
    relations = {(key[1], key[0], key[2]) for key in candidates if key[1] and agreed.get(key)}
    ends = ci_ids | {from_ci for _, from_ci, _ in relations}
    retiring: set[RelationKey] = set()
    for rel in store.relationships_touching(sorted(ends)) if ends else ():
        key = (rel.type, rel.from_ci, rel.to_ci)
        if (rel.from_ci in ci_ids or rel.to_ci in ci_ids or key in relations) \
                and (rel.from_ci, rel.type, rel.to_ci) not in stated_here:
            retiring.add(key)
    out.retired = sorted(ci_ids)
    out.relations_retired = [RelationChange(*key, action="retire") for key in sorted(retiring)]
