"""The fast path of reconcile: what a source states exactly as last time is not looked at again.

A machine's full report is mostly what it said last time: of ~1,800 items a no-change report
changes none, and the full path (identify every item, read and compare each of ~12,000 values,
refresh each one's stamp) costs ~130 ms where the target is 30. The fast path keeps, per
(source, item ref), a fingerprint: a digest of what the source stated about the item
(class, collector, identifiers, attributes — measurements excluded, `cmdb.model` CIClass.
measurements are readings written every run —, the host CI of a dependent item, and the policy
digest below) with the CI it resolved to (cmdb.fingerprints says what a stored row promises, and
cmdb.backends.sqlite_fingerprint when it is dropped). An item whose digest matches its row:

- skips identification, when its class has no weak identifier kinds (reconcile.rules
  WEAK_KINDS): its CI holds every one of its key values, in that spelling, so the rules can only
  find that CI again; weak keys (a hostname) depend on other CIs and items, so a host item is
  identified as usual (a handful of items) and only then compared with its row;
- skips the attribute read and the diff, when it resolved to its row's CI and is that CI's
  attribute item: the CI holds exactly the stated values, all from this source, and no other
  source's observation, so every value is confirmed — which the store records as one stamp on the
  row (`ChangeSet.fingerprint_confirms`) instead of each value's observed_at. A class with
  measurements still goes through the diff (its readings).

Relations are checked against one lean read of the active relations out of the report's CIs
(`active_relations_from`: keys only, no objects), and a scope whose statements hash to the digest
its records hold needs no records read (reconcile.staleness).

Everything else takes the full path, and every rule of reconcile applies to it unchanged; the
outcome of a report is the same with the fast path or without (tests/unit/reconcile/
test_fastpath_equivalence.py). A row is written (ChangeSet.fingerprints) only for an item of a
full report whose collector ran completely, identified cleanly (reconcile.identify clean_refs),
whose CI ends up holding exactly its stated values from this source, none late, no other source's
observation; other items of the report lose their row.

The switch: `compute_changes(..., fast_path=False)` or FLEETGRAPH_RECONCILE_FAST_PATH=off.
Changing identification rules or the junk lists (code) must bump FINGERPRINT_FORMAT.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import replace

import msgspec

from cmdb.changes import ItemFingerprint, Provenance, RelationChange
from cmdb.fingerprints import FingerprintStore
from cmdb.model import CI_CLASSES
from cmdb.report import Item, Report
from cmdb.store import AttributeValue, Store
from reconcile.drift import DriftPolicy
from reconcile.identify import Identification
from reconcile.merge import AttributeDiff, RelationDiff, RelationKey, removals_allowed, stated_attributes
from reconcile.precedence import PrecedenceTable
from reconcile.result import AnnotatedChangeSet
from reconcile.rules import JUNK_CHECKED_ATTRIBUTES, WEAK_KINDS
from reconcile.staleness import Staleness

# Bump when what a digest covers, or what the identification rules make of it, changes: every
# stored row then misses once and is written again.
FINGERPRINT_FORMAT = "fleetgraph.fingerprint/1"
FAST_PATH_ENV = "FLEETGRAPH_RECONCILE_FAST_PATH"
_OFF = ("0", "off", "false", "no")
_LOOKUP_LIMIT = 64

_encode = msgspec.msgpack.Encoder().encode
_blake2b = hashlib.blake2b
_MEASURED = {name: c.measurements for name, c in CI_CLASSES.items() if c.measurements}


def fast_path_enabled(store: Store, wanted: bool | None = None) -> bool:
    """`wanted` if given, else the environment switch (on unless FLEETGRAPH_RECONCILE_FAST_PATH
    is 0/off/false/no); never for a store without the fingerprint reads (cmdb.fingerprints)."""
    if wanted is None:
        wanted = os.environ.get(FAST_PATH_ENV, "on").strip().lower() not in _OFF
    return wanted and supports_fast_path(store)


def supports_fast_path(store: object) -> bool:
    """Whether the store has the fingerprint reads (a Protocol check is slow: once per class)."""
    kind = type(store)
    if kind not in _SUPPORTED:
        _SUPPORTED[kind] = isinstance(store, FingerprintStore)
    return _SUPPORTED[kind]


_SUPPORTED: dict[type, bool] = {}


def policy_digest(precedence: PrecedenceTable, drift_policy: DriftPolicy) -> bytes:
    """The configuration a row was computed under: a change of it makes every row miss once."""
    return _encode((FINGERPRINT_FORMAT, precedence.default, sorted(precedence.overrides.items()),
                    sorted(drift_policy.attributes), sorted(drift_policy.sets.items())))


def item_digest(item: Item, prefix: str, salt: bytes) -> bytes:
    """What the source states about the item, as 16 bytes (`prefix`: "<host ci id>/" or "";
    `salt`: the policy digest). FastPath.shortcut has it inline."""
    attributes = item.attributes
    measured = _MEASURED.get(item.class_)
    if measured:
        attributes = {k: v for k, v in attributes.items() if k not in measured}
    data = _encode((salt, item.class_, item.collector, item.identifiers, attributes, prefix))
    return _blake2b(data, digest_size=16).digest()


def fold_confirmations(store: Store, current: dict[str, dict[str, AttributeValue]]) -> None:
    """Put the stamps of whole-CI confirmations (cmdb.fingerprints.Confirmation) into the values
    they cover, so that the full path compares with when a source last stated a value (a late
    report, recency between sources of one rank) whichever path confirmed it."""
    if not current or not supports_fast_path(store):
        return
    for ci_id, stamps in store.confirmations(list(current)).items():
        values = current.get(ci_id, {})
        for stamp in sorted(stamps, key=lambda s: s.confirmed_at):
            folded: Provenance | None = None
            for name, value in values.items():
                prov = value.provenance
                if (prov.source_kind == stamp.source_kind and prov.source_id == stamp.source_id
                        and prov.observed_at <= stamp.confirmed_at):
                    folded = folded or Provenance(stamp.source_kind, stamp.source_id, stamp.report_id,
                                                  stamp.confirmed_at)
                    values[name] = AttributeValue(value.value, folded)


def _stated_names(item: Item) -> Iterable[str]:
    attributes = item.attributes
    if None not in attributes.values() and JUNK_CHECKED_ATTRIBUTES.isdisjoint(attributes):
        return attributes  # the common case: every attribute is stated
    return list(stated_attributes(item))


class FastPath:
    """One report's use of the stored fingerprints of its source (see the module docstring)."""

    def __init__(self, store: Store, report: Report, precedence: PrecedenceTable, drift_policy: DriftPolicy):
        assert supports_fast_path(store)
        self.store: FingerprintStore = store  # type: ignore[assignment]
        self.report = report
        self.items_by_ref = {item.ref: item for item in report.items}
        # A small report (a delta) looks its items up; a large one reads the source's rows in order.
        refs = [item.ref for item in report.items] if len(report.items) <= _LOOKUP_LIMIT else None
        self.stored = store.item_fingerprints(report.source.kind, report.source.id, refs)
        self.salt = _blake2b(policy_digest(precedence, drift_policy), digest_size=16).digest()
        self.digests: dict[str, bytes] = {}  # ref -> digest (of every item identification saw)
        self.known: set[str] = set()  # CIs placed from their row: active (a retired CI has no row)
        self.whole: dict[str, str] = {}  # ci -> ref: confirmed as a whole, not diffed
        self.relations_seen_from: list[str] = []
        self.settled: dict[str, str] = {}  # ci -> ref: not diffed, stated as last time (`whole`, or late)

    # -- identification ---------------------------------------------------------------------------
    def shortcut(self, item: Item, prefix: str) -> str | None:
        """reconcile.identify's shortcut: the row's CI for an item stated as last time, when its
        class has no weak kinds. Records the item's digest for the steps after identification."""
        # item_digest, inlined: this runs for every item of every report
        attributes = item.attributes
        if item.class_ in _MEASURED:
            measured = _MEASURED[item.class_]
            attributes = {k: v for k, v in attributes.items() if k not in measured}
        digest = _blake2b(_encode((self.salt, item.class_, item.collector, item.identifiers, attributes, prefix)),
                          digest_size=16).digest()
        self.digests[item.ref] = digest
        row = self.stored.get(item.ref)
        if row is None or row[0] != digest or item.class_ in WEAK_KINDS:
            return None
        self.known.add(row[1])
        return row[1]

    # -- attributes -------------------------------------------------------------------------------
    def split(self, identification: Identification) -> Identification:
        """Set aside the CIs confirmed as a whole (`self.whole`); the identification the diff is
        to see, with only the other CIs' attribute items."""
        items = self.items_by_ref
        observed = self.report.collected_at
        rest: dict[str, str] = {}
        for ci_id, ref in identification.attribute_ref_of_ci.items():
            row = self.stored.get(ref)
            if (row is not None and row[1] == ci_id and self.digests.get(ref) == row[0]
                    and items[ref].class_ not in _MEASURED):
                self.known.add(ci_id)
                self.settled[ci_id] = ref
                if row[2] <= observed:
                    self.whole[ci_id] = ref
                # else a late report: its source confirmed every value since, so it confirms none
            else:
                rest[ci_id] = ref
        return replace(identification, attribute_ref_of_ci=rest) if len(rest) < len(identification.attribute_ref_of_ci) \
            else identification

    def confirmed_pairs(self) -> list[tuple[str, str]]:
        """(ci, name) of every value of the CIs confirmed as a whole (ChangeSet.confirmed)."""
        items = self.items_by_ref
        return [(ci_id, name) for ci_id, ref in self.whole.items() for name in _stated_names(items[ref])]

    # -- relations --------------------------------------------------------------------------------
    def diff_relations(self, stated: Iterable[RelationKey], new_ids: set[str]) -> RelationDiff:
        """reconcile.merge.diff_relations from a lean read of the active relations out of the
        stated relations' CIs (a relation with an end created here cannot exist yet); and the CIs
        all of whose active relations are seen (ChangeSet.relations_seen_from)."""
        stated = list(stated)
        froms = {key[1] for key in stated if key[1] not in new_ids}
        active = self.store.active_relations_from(froms) if froms else set()
        diff = RelationDiff()
        for key in stated:
            if key in active:
                diff.seen.append(key)
            else:
                diff.added.append(RelationChange(*key, action="add"))
        unseen = {key[1] for key in active.difference(diff.seen)}
        self.relations_seen_from = [ci_id for ci_id in froms if ci_id not in unseen]
        return diff

    # -- what to write ----------------------------------------------------------------------------
    def annotate(self, changes: AnnotatedChangeSet, identification: Identification, attributes: AttributeDiff,
                 current: dict[str, dict[str, AttributeValue]], others: dict, staleness: Staleness) -> None:
        """Fill the change set's fingerprint fields: stamps of the CIs confirmed as a whole, rows
        for items whose CI ends up holding exactly what they state, drops for the rest."""
        report, source = self.report, self.report.source
        changes.fingerprint_confirms = [(ref, ci_id) for ci_id, ref in self.whole.items()]
        changes.relations_seen_from = self.relations_seen_from
        unsettled = set(others) | staleness.stale
        unsettled.update(o.ci_id for o in attributes.observations)
        unsettled.update(o.ci_id for o in attributes.provenance_moves)
        unsettled.update(key[0] for key in attributes.observations_dropped)
        unsettled.update(c.ci_id for c in (*attributes.changes, *attributes.measurements) if c.provenance is not None)
        for ci_id, values in current.items():
            if any(v.provenance.source_kind != source.kind or v.provenance.source_id != source.id
                   or v.provenance.observed_at > report.collected_at for v in values.values()):
                unsettled.add(ci_id)  # another source's value stays, or a newer one: not all stated

        items = self.items_by_ref
        attribute_ref = identification.attribute_ref_of_ci
        full = report.mode == "full"
        for ref, ci_id in identification.ci_of_ref.items():
            if self.settled.get(ci_id) == ref:
                continue
            digest = self.digests.get(ref)
            if (full and digest is not None and ref in identification.clean_refs and attribute_ref.get(ci_id) == ref
                    and ci_id not in unsettled and removals_allowed(report, items[ref])):
                changes.fingerprints.append(ItemFingerprint(ref, digest, ci_id, identification.host_of_ref.get(ref, "")))
            elif ref in self.stored:
                changes.fingerprints_dropped.append(ref)
