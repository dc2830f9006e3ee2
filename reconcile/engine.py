"""Reconcile one report: identify, merge, and diff against the store into a change set, then apply.

    changes = compute_changes(store, report)   # reads only; print it with reconcile.dryrun
    reconcile_report(store, report, seq)       # computes and applies in one transaction

Reads per report, whatever its size: one `resolve_identifiers` per (class, kind), one
`identifiers_of` for candidates of classes with exclusive kinds, one `current_attributes`, one
`other_observations` (attribute precedence: `reconcile.merge`), one `relationships_among`; a
report with reference items adds the few reads of `reconcile.references`, and scoped staleness a
few more (`reconcile.staleness`: what a complete run of a collector no longer states is retired,
after `retire_after_missed_runs` such runs). A delta report is read as statements about the items
it carries and never removes attribute values (`merge.removals_allowed`); the sections it carries
are complete runs of their collectors. Drift (`reconcile.drift`) is read off the finished change
set, so a report that changes nothing costs nothing more.

The fast path (`reconcile.fastpath`, on unless `fast_path=False` or FLEETGRAPH_RECONCILE_FAST_PATH
=off) skips the identification, attribute read and diff of items a source states exactly as last
time, with the same outcome; values confirmed through it carry their stamp on the item's
fingerprint, which is folded back in wherever the full path compares stamps.
"""

from __future__ import annotations

from cmdb.changes import Provenance
from cmdb.report import Report
from cmdb.store import Store
from reconcile.drift import DEFAULT_DRIFT_POLICY, DriftPolicy, detect_drift
from reconcile.fastpath import FastPath, fast_path_enabled, fold_confirmations
from reconcile.identify import identify_items
from reconcile.merge import diff_attributes, diff_relations, stated_relations
from reconcile.precedence import DEFAULT_PRECEDENCE, PrecedenceTable
from reconcile.records import DEFAULT_RESPONSE_POLICY, DriftResponsePolicy, decide_drift_actions
from reconcile.references import resolve_references
from reconcile.result import AnnotatedChangeSet
from reconcile.staleness import compute_staleness


def provenance_of(report: Report) -> Provenance:
    return Provenance(
        source_kind=report.source.kind,
        source_id=report.source.id,
        report_id=report.report_id,
        observed_at=report.collected_at,
    )


def compute_changes(store: Store, report: Report, retire_after_missed_runs: int = 1,
                    precedence: PrecedenceTable = DEFAULT_PRECEDENCE,
                    drift_policy: DriftPolicy = DEFAULT_DRIFT_POLICY,
                    response_policy: DriftResponsePolicy = DEFAULT_RESPONSE_POLICY,
                    fast_path: bool | None = None) -> AnnotatedChangeSet:
    """The change set that reconciling `report` would apply (reads the store, writes nothing);
    `precedence` decides which source's value of an attribute is current (reconcile.precedence),
    `drift_policy` which changes are drift (reconcile.drift); `fast_path` False forces the full
    path (None: reconcile.fastpath.fast_path_enabled decides)."""
    provenance = provenance_of(report)
    epoch = store.ci_operation_epoch() if hasattr(store, "ci_operation_epoch") else None  # read first
    fast = FastPath(store, report, precedence, drift_policy) if fast_path_enabled(store, fast_path) else None
    identification = identify_items(store, report, fast.shortcut if fast else None)
    references = resolve_references(store, report, identification)
    new_ids = identification.new_ci_ids
    seen = identification.resolved_ci_ids()
    existing = [ci_id for ci_id in seen if ci_id not in new_ids]

    diffed = fast.split(identification) if fast else identification
    compared = [ci_id for ci_id in existing if ci_id not in fast.settled] if fast else existing
    current = store.current_attributes(compared) if compared else {}
    fold_confirmations(store, current)
    others = store.other_observations(compared) if compared else {}
    attributes = diff_attributes(report, diffed, current, provenance, others, precedence)
    if fast:
        attributes.confirmed += fast.confirmed_pairs()
    stated = list(dict.fromkeys(stated_relations(report, identification) + references.relations))
    if fast:
        relations = fast.diff_relations(stated, new_ids)
        staleness = compute_staleness(store, report, identification, stated, retire_after_missed_runs,
                                      store.scope_digests(report.source.kind, report.source.id), fast.known)
    else:
        relations = diff_relations(stated, store.relationships_among(existing) if existing else [])
        staleness = compute_staleness(store, report, identification, stated, retire_after_missed_runs)

    changes = AnnotatedChangeSet(
        provenance=provenance,
        created=identification.created,
        identifiers=identification.claims,
        attributes=attributes.changes,
        confirmed=attributes.confirmed,
        measurements=attributes.measurements,
        observations=attributes.observations,
        observations_dropped=attributes.observations_dropped,
        provenance_moves=attributes.provenance_moves,
        relations=[r for r in relations.added if not staleness.stale & {r.from_ci, r.to_ci}]
        + staleness.relations_retired,
        relations_seen=relations.seen,
        seen=seen,
        retired=staleness.retired,
        reactivated=staleness.reactivated,
        scope_runs=staleness.scope_runs,
        seen_marks=staleness.marks,
        conflicts=identification.conflicts,
        shared_identifiers=identification.shared,
        skipped=identification.skipped + references.skipped,
        ci_of_ref=identification.ci_of_ref,
        scope_digests=staleness.digests,
    )
    if fast:
        fast.annotate(changes, identification, attributes, current, others, staleness)
    changes.drift = detect_drift(changes, report, store, drift_policy)
    changes.drift_actions = decide_drift_actions(changes.drift, store, response_policy)
    changes.operation_epoch = epoch
    return changes


def reconcile_report(store: Store, report: Report, report_seq: int | None = None,
                     retire_after_missed_runs: int = 1,
                     precedence: PrecedenceTable = DEFAULT_PRECEDENCE,
                     drift_policy: DriftPolicy = DEFAULT_DRIFT_POLICY,
                     response_policy: DriftResponsePolicy = DEFAULT_RESPONSE_POLICY,
                     fast_path: bool | None = None) -> AnnotatedChangeSet:
    """Compute the change set of `report` and apply it in one transaction (with `report_seq`,
    the stored report is marked reconciled in the same transaction). Returns what was applied."""
    changes = compute_changes(store, report, retire_after_missed_runs, precedence, drift_policy, response_policy,
                              fast_path)
    store.apply(changes, report_seq)
    return changes
