"""The change set: what reconciling one report does to the store, computed before it is applied.

Reconcile builds a ChangeSet from a report and the store's current state (reads only), it can be
printed as a dry run, and `Store.apply` writes it in one transaction, together with marking the
report reconciled, so a crash leaves either all of it or none of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cmdb.records import DriftAction

JSONValue = Any  # the attribute value types of cmdb.report.AttributeValue


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who said it and when: the source of a value and the time the source observed it."""

    source_kind: str
    source_id: str
    report_id: str | None
    observed_at: datetime


@dataclass(slots=True)
class NewCI:
    ci_id: str  # reconcile allocates ids (cmdb.ids.new_ci_id), so no temporary ids are needed
    ci_class: str


@dataclass(slots=True)
class IdentifierClaim:
    """Bind (class, kind, value) to a CI. Values of dependent classes are already scoped by their
    host CI id ("<host id>/<value>"), so the store keeps one unique key per class+kind+value."""

    ci_id: str
    ci_class: str
    kind: str
    value: str


@dataclass(slots=True)
class AttributeChange:
    """A current value replaced (after=None: removed). Written to the current table and appended
    to history with `before` and `after`."""

    ci_id: str
    name: str
    before: JSONValue
    after: JSONValue
    # None: the change set's provenance. Else the winning observation's, when the new current
    # value is another source's (reconcile.precedence: the winner stopped stating it, and the next
    # source's observation took over); the history row is stamped when it took over.
    provenance: Provenance | None = None


@dataclass(slots=True)
class Observation:
    """One source's latest value of an attribute of a CI (reconcile.precedence). The current
    value's source has its observation in the current value itself; the store keeps the others'."""

    ci_id: str
    name: str
    value: JSONValue
    provenance: Provenance


@dataclass(slots=True)
class RelationChange:
    type: str
    from_ci: str
    to_ci: str
    action: Literal["add", "retire"] = "add"


@dataclass(slots=True)
class SeenMark:
    """One row of the staleness record (reconcile.staleness): what the scope (this change set's
    source, `collector`, `subject`) last saw of a CI (rel_type == "") or of a relation (ci_id is its from
    end). Written as given: missed 0 means stated by this run."""

    collector: str
    subject: str  # the CI the source reported about (the host)
    ci_id: str
    rel_type: str  # "" for a CI
    to_ci: str  # "" for a CI
    missed: int
    last_seen_run: datetime  # the collected_at of the last complete run of the scope that saw it


@dataclass(slots=True)
class ItemFingerprint:
    """The reconcile fast path (reconcile.fastpath): the digest of what this change set's source
    stated about one item (by its ref), and the CI it resolved to (`host_ci`: the host of a
    dependent item, "" for others). Written only when applying the change set leaves the CI
    holding exactly the stated values, all from this source."""

    ref: str
    digest: bytes
    ci_id: str
    host_ci: str = ""


@dataclass(slots=True)
class ScopeDigest:
    """The digest of what a complete run of a scope of this change set's source stated, or None
    when the scope's seen-by rows are not exactly that after the change set (reconcile.staleness)."""

    collector: str
    subject: str
    digest: bytes | None


@dataclass(slots=True)
class DriftEvent:
    """A change of a tracked attribute or set (reconcile.drift) of a CI that already existed.

    `ci_id`/`ci_class`: the CI that changed; for a set change (a package installed, a disk gone)
    the host, with the member in `related_ci`; for an attribute of a dependent CI (a package's
    version) the dependent CI, with its host in `related_ci`. `before`/`after` are the values, or
    for a set change the member's summary (None on the side where it is absent). `drift_id` is
    derived from the report and what changed, so writing the same event twice stores it once.
    `recorded_at` is set by the store."""

    drift_id: str
    ci_id: str
    ci_class: str
    attribute: str  # attribute name, or the set's name ("software", "disks", ...)
    before: JSONValue
    after: JSONValue
    related_ci: str | None
    provenance: Provenance
    recorded_at: datetime | None = None
    # Set by the store from the change set's drift actions (cmdb.records DriftAction): what the
    # event did (authorized, incident, unauthorized_change, recorded) and the record it went to.
    disposition: str | None = None
    record: str | None = None


@dataclass(slots=True)
class ChangeSet:
    provenance: Provenance
    created: list[NewCI] = field(default_factory=list)
    identifiers: list[IdentifierClaim] = field(default_factory=list)
    attributes: list[AttributeChange] = field(default_factory=list)
    # New readings of measurement attributes (cmdb.model CIClass.measurements): the current value
    # is replaced, with provenance, and no history row is written (after=None: reading gone).
    measurements: list[AttributeChange] = field(default_factory=list)
    # (ci_id, name) whose value the report confirmed unchanged: provenance observed_at refreshed.
    confirmed: list[tuple[str, str]] = field(default_factory=list)
    # Attribute precedence (reconcile.precedence). Observations of sources other than the current
    # value's: upserted (a newer stored one is kept), and dropped by (ci_id, name, source_kind,
    # source_id) when that source wins or no longer states the attribute. `provenance_moves`: the
    # current value stays and now comes from this observation (another source won with the same
    # value): its provenance is replaced, no history.
    observations: list[Observation] = field(default_factory=list)
    observations_dropped: list[tuple[str, str, str, str]] = field(default_factory=list)
    provenance_moves: list[Observation] = field(default_factory=list)
    relations: list[RelationChange] = field(default_factory=list)
    # (type, from, to) of existing relations the report saw again: last_seen refreshed.
    relations_seen: list[tuple[str, str, str]] = field(default_factory=list)
    # CIs every active relation out of which is in relations_seen (the fast path knows): a store
    # may refresh them CI by CI rather than relation by relation.
    relations_seen_from: list[str] = field(default_factory=list)
    # every CI the report saw (new or existing): last_seen refreshed.
    seen: list[str] = field(default_factory=list)
    # Scoped staleness (reconcile.staleness). CIs retired (`ci.retire`; their seen-by rows go) and
    # retired CIs stated again (`ci.reactivate`); relations retire through `relations`.
    retired: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    # (collector, subject) scopes of this source whose complete (or unchanged) run this is: the
    # scope's run stamp moves to observed_at. Rows of the scope with missed 0 count as seen then.
    scope_runs: list[tuple[str, str]] = field(default_factory=list)
    seen_marks: list[SeenMark] = field(default_factory=list)
    # Weak identifier values (a hostname, an FQDN) a CI states while another CI holds them: recorded
    # as shared (`Store.shared_identifiers`), so they stop matching weakly. Not history.
    shared_identifiers: list[IdentifierClaim] = field(default_factory=list)
    # Changes of tracked attributes and sets of existing CIs (reconcile.drift), written with the rest.
    drift: list[DriftEvent] = field(default_factory=list)
    # What each drift event does to records (reconcile.records): authorized by a change, or an
    # incident / unauthorized-change record opened or appended to; written in the same transaction.
    drift_actions: list[DriftAction] = field(default_factory=list)
    # The newest CI operation (merge, split, undo) when the change set was computed: `apply` refuses
    # it (cmdb.store.ChangeSetStale) if another has committed since. None: not checked.
    operation_epoch: int | None = None
    # The fast path (reconcile.fastpath). `fingerprints`: rows to write for this source, stamped
    # with this change set's provenance. `fingerprint_confirms`: (ref, ci_id) of items whose CI this
    # report confirmed as a whole (every value unchanged, all from this source): the store moves the
    # row's stamp instead of each value's observed_at, so their pairs in `confirmed` are not written
    # one by one. `fingerprints_dropped`: refs of this source whose rows go. Any CI whose attributes,
    # observations or state this change set changes loses every source's row (the store does that).
    fingerprints: list[ItemFingerprint] = field(default_factory=list)
    fingerprint_confirms: list[tuple[str, str]] = field(default_factory=list)
    fingerprints_dropped: list[str] = field(default_factory=list)
    scope_digests: list[ScopeDigest] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when applying would record no history (only last-seen stamps would move)."""
        return not (self.created or self.identifiers or self.attributes or self.relations
                    or self.retired or self.reactivated)

    def summary(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "identifiers": len(self.identifiers),
            "attribute_changes": len(self.attributes),
            "confirmed": len(self.confirmed),
            "measurements": len(self.measurements),
            "observations": len(self.observations),
            "relations_added": sum(1 for r in self.relations if r.action == "add"),
            "relations_retired": sum(1 for r in self.relations if r.action == "retire"),
            "relations_seen": len(self.relations_seen),
            "seen": len(self.seen),
            "retired": len(self.retired),
            "reactivated": len(self.reactivated),
            "seen_marks": len(self.seen_marks),
            "drift": len(self.drift),
        }
