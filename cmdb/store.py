"""The store contract. Every backend (embedded SQLite, graph server) implements `Store` and passes
the same contract suite in tests/contract/.

Writes happen in exactly two places: `put_report` (the durable raw-report log, before the
collector acknowledges) and `apply` (a reconciled change set, in one transaction that also marks
the report reconciled). Everything else reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Literal, Protocol, runtime_checkable

from cmdb.changes import ChangeSet, DriftEvent, Provenance

if TYPE_CHECKING:
    import networkx as nx

    from cmdb.operations import CIOperation
    from cmdb.records import ChangeRecord, ExpectedOutcome, Incident, NewChange, NewIncident, RecordEvent

ReportStatus = Literal["pending", "reconciled", "failed"]
CIState = Literal["active", "retired"]


@dataclass(slots=True)
class StoredReport:
    seq: int  # ingest order; the reconcile worker consumes pending reports by ascending seq
    report_id: str
    source_kind: str
    source_id: str
    received_at: datetime
    collected_at: datetime
    digest: str  # sha256 hex of body
    body: bytes  # the report JSON as received (decompressed)
    status: ReportStatus
    reconciled_at: datetime | None = None
    error: str | None = None


@dataclass(slots=True)
class ReportHead:
    """Who sent a stored report and whether it is a full report or a delta (no body)."""

    source_kind: str
    source_id: str
    mode: str


@dataclass(slots=True)
class PutResult:
    """Outcome of `put_report`. `created` is False when the report_id was already stored; then
    `digest` is the stored body's digest so the caller can tell a replay from a conflict."""

    created: bool
    seq: int
    received_at: datetime
    digest: str


@dataclass(slots=True)
class AttributeValue:
    value: Any
    provenance: Provenance


@dataclass(slots=True)
class ObservedValue:
    """One source's latest value of a CI's attribute (attribute precedence, reconcile.precedence);
    `current`: it is the CI's current value (the winning observation)."""

    name: str
    value: Any
    provenance: Provenance
    current: bool


@dataclass(slots=True)
class Identifier:
    kind: str
    value: str


@dataclass(slots=True)
class CI:
    ci_id: str
    ci_class: str
    state: CIState
    first_seen: datetime
    last_seen: datetime
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    identifiers: list[Identifier] = field(default_factory=list)
    # A CI merged into another (Store.merge_cis) is retired with the survivor's id here.
    merged_into: str | None = None


@dataclass(slots=True)
class Relationship:
    type: str
    from_ci: str
    to_ci: str
    state: CIState
    first_seen: datetime
    last_seen: datetime
    provenance: Provenance


@dataclass(slots=True)
class HistoryRow:
    """One appended change record: {time, actor, report id, ci, related ci, before, after}."""

    seq: int
    ci_id: str
    kind: Literal["ci.create", "attr.set", "attr.unset", "ident.add", "rel.add", "rel.retire",
                  "ci.retire", "ci.reactivate", "ci.merge", "ci.split", "ident.remove"]
    name: str | None  # attribute name, identifier kind or relation type
    before: Any
    after: Any
    related_ci: str | None
    provenance: Provenance
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ScopeKey:
    """A staleness scope: one collector of one source, about one subject (the host CI: the
    Computer an agent reports, a device a scanner reports) (reconcile.staleness)."""

    source_kind: str
    source_id: str
    collector: str
    subject: str


@dataclass(slots=True)
class SeenRecord:
    """A scope saw a CI (rel_type == "") or a relation (ci_id is its from end); `missed` complete
    runs of that scope have not stated it since `last_seen_run`."""

    scope: ScopeKey
    ci_id: str
    rel_type: str
    to_ci: str
    missed: int
    last_seen_run: datetime


@dataclass(slots=True)
class ScopeState:
    """A scope's run stamp (None: never run) and everything it saw that is not retired."""

    scope: ScopeKey
    last_run: datetime | None
    records: list[SeenRecord] = field(default_factory=list)


@dataclass(slots=True)
class TokenInfo:
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    source_id: str | None = None  # an enrolled agent's credential may only write as this source


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """Who a valid token speaks for. `source_id` binds it to one source (an enrolled agent's id):
    such a token may only submit that source's reports. None: not bound."""

    name: str
    role: str
    source_id: str | None = None


@dataclass(slots=True)
class EnrollmentTokenInfo:
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    max_uses: int
    uses: int


@dataclass(frozen=True, slots=True)
class Enrollment:
    """Outcome of `enroll`: the enrollment token that was used, and how many earlier
    credentials of the same source were revoked (re-enrolling rotates the credential)."""

    enrollment_token: str
    revoked_previous: int


EnrollmentRefusal = Literal["unknown", "expired", "revoked", "used_up"]


class EnrollmentRefused(Exception):
    """`enroll` refused the enrollment token; nothing was stored and no use was counted."""

    def __init__(self, reason: EnrollmentRefusal, name: str | None = None):
        what = "enrollment token" if name is None else f"enrollment token {name!r}"
        super().__init__(f"{what}: {reason.replace('_', ' ')}")
        self.reason, self.name = reason, name


@dataclass(slots=True)
class ApplyResult:
    history_rows: int
    created: int


class ReportConflict(Exception):
    """The report_id is already stored with a different body."""


class IdentifierTaken(Exception):
    """`apply` was asked to bind an identifier that another CI holds; nothing was applied."""

    def __init__(self, ci_class: str, kind: str, value: str, held_by: str, claimed_by: str):
        super().__init__(f"{ci_class} identifier {kind}={value!r} belongs to CI {held_by}, "
                         f"so CI {claimed_by} cannot claim it; re-identify the item against the store")
        self.ci_class, self.kind, self.value = ci_class, kind, value
        self.held_by, self.claimed_by = held_by, claimed_by


class ChangeSetStale(Exception):
    """The change set was computed before a CI merge, split or undo that has since committed: it may
    name CIs that no longer stand as it saw them. Nothing was applied; compute it again (transient:
    the reconcile worker retries the report)."""


class ReportNotPending(Exception):
    """`apply(report_seq=...)` named a report that does not exist or is already reconciled;
    nothing was applied (exactly-once: a report's changes are written once)."""


@runtime_checkable
class Store(Protocol):
    # Exceptions of this backend that mean "try again later" (busy, locked, unreachable), as
    # opposed to a change set the store refuses: the reconcile worker retries on these and never
    # marks a report failed because of them.
    transient_errors: tuple[type[BaseException], ...]

    # -- the raw-report log ---------------------------------------------------------------
    def put_report(self, report_id: str, source_kind: str, source_id: str,
                   collected_at: datetime, body: bytes, mode: str = "full") -> PutResult:
        """Store a raw report durably (committed and synced) before returning. Idempotent on
        report_id: a second put of the same id stores nothing and returns created=False."""

    def report_head(self, report_id: str) -> ReportHead | None:
        """Source and mode of a stored report, without its body (a delta's base check)."""

    def get_report(self, report_id: str) -> StoredReport | None: ...

    def pending_reports(self, limit: int = 100, max_bytes: int | None = None) -> list[StoredReport]:
        """Pending reports in ascending seq order (oldest first): at most `limit`, and no more
        bodies than fit in `max_bytes` (but always the oldest one)."""

    def mark_report_failed(self, seq: int, error: str) -> None: ...

    def count_reports(self, status: ReportStatus | None = None) -> int: ...

    # -- reads reconcile needs (batched: one call per report, not per item) ----------------
    def resolve_identifiers(self, ci_class: str, kind: str, values: Iterable[str]) -> dict[str, str]:
        """{value: ci_id} for the values bound to a CI of that class."""

    def shared_identifiers(self, ci_class: str, kind: str, values: Iterable[str]) -> dict[str, set[str]]:
        """{value: ids of the *active* CIs recorded as sharing it} for the values some active CI
        other than their holder also states (ChangeSet.shared_identifiers); others are left out."""

    def current_attributes(self, ci_ids: Iterable[str]) -> dict[str, dict[str, AttributeValue]]: ...

    def other_observations(self, ci_ids: Iterable[str]) -> dict[str, dict[str, list[AttributeValue]]]:
        """{ci_id: {name: [observation, ...]}}: the latest value of each attribute from each source
        other than the current value's (whose observation the current value is), for the CIs that
        have any. Written by `apply` (ChangeSet.observations / observations_dropped)."""

    def identifiers_of(self, ci_ids: Iterable[str]) -> dict[str, list[Identifier]]: ...

    def find_by_attribute(self, ci_class: str, name: str, values: Iterable[Any]) -> dict[Any, list[str]]:
        """{value: [ci_id, ...]} of active CIs of the class whose current attribute `name` equals
        the value (JSON equality). Used to resolve references (an address to the CI holding it)."""

    def relationships_among(self, ci_ids: Iterable[str]) -> list[Relationship]:
        """Active relationships with `from_ci` in ci_ids (the relations a report could re-state)."""

    # -- reads of scoped staleness (reconcile.staleness), batched like the ones above ---------
    def scope_states(self, source_kind: str, source_id: str, scopes: Iterable[tuple[str, str]],
                     records_for: Iterable[str] | None = None) -> dict[tuple[str, str], ScopeState]:
        """{(collector, subject): ScopeState} for each one named (last_run None: never run), with
        its seen records only for the collectors in `records_for` (None: all) — a delta's
        unchanged sections need their scope's stamp, not a record per item."""

    def seen_records(self, ci_ids: Iterable[str]) -> list[SeenRecord]:
        """Every scope's records of the CIs and of the relations from them."""

    def retired_among(self, ci_ids: Iterable[str]) -> dict[str, datetime]:
        """{ci_id: last_seen} of the retired CIs among ci_ids."""

    def relationships_touching(self, ci_ids: Iterable[str]) -> list[Relationship]:
        """Active relationships with either end in ci_ids."""

    # -- the one write path of reconcile --------------------------------------------------
    def apply(self, changes: ChangeSet, report_seq: int | None = None) -> ApplyResult:
        """Write the change set in one transaction; with report_seq, mark that report
        reconciled in the same transaction (exactly-once reconcile). Raises IdentifierTaken or
        ReportNotPending (and writes nothing) when the change set cannot apply as a whole."""

    # -- queries ----------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> CI | None: ...

    def find_ci_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """CI ids starting with prefix (for the CLI's short ids)."""

    def list_cis(self, ci_class: str | None = None, attributes: dict[str, Any] | None = None,
                 state: CIState | None = "active", limit: int = 100, offset: int = 0) -> list[CI]:
        """CIs (with attributes) filtered by class and attribute equality, ordered by id."""

    def count_cis(self, state: CIState | None = "active") -> dict[str, int]:
        """{class: count}."""

    def count_relationships(self, state: CIState | None = "active") -> dict[str, int]:
        """{type: count}."""

    def relationships(self, ci_id: str, direction: Literal["out", "in", "both"] = "both",
                      type: str | None = None) -> list[Relationship]: ...

    def history(self, ci_id: str, name: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int = 1000) -> list[HistoryRow]:
        """Change records of a CI in seq order; name filters attribute/identifier/relation name."""

    def observations(self, ci_id: str) -> list[ObservedValue]:
        """Every source's latest value of each attribute of the CI, winners (current=True) and
        losers, ordered by name, the current value first, then newest first."""

    def ci_as_of(self, ci_id: str, when: datetime) -> CI | None:
        """The CI as it stood at `when` (observed time), rebuilt from history; None if it did not
        exist yet."""

    def drift_events(self, ci_id: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 1000) -> list[DriftEvent]:
        """Drift events (reconcile.drift, written by `apply` from ChangeSet.drift), oldest first by
        observed time; with ci_id, those where it is the CI that changed or the related CI (a
        set member, a dependent CI's host). since/until bound observed_at, both inclusive."""

    def graph(self) -> nx.MultiDiGraph:
        """The active relationships as a networkx graph (nodes: CI ids with `ci_class`)."""

    # -- records: change records and incidents (cmdb.records) ----------------------------------
    # Every write appends a RecordEvent in its transaction (the audit trail and webhook outbox).
    # Errors are cmdb.records.RecordError (bad transition, unknown CI, ...), nothing written.
    def create_change(self, new: NewChange, now: datetime | None = None) -> ChangeRecord: ...

    def get_change(self, number: str) -> ChangeRecord | None: ...

    def list_changes(self, state: str | None = None, ci_id: str | None = None, open_only: bool = False,
                     limit: int = 100) -> list[ChangeRecord]:
        """Newest first."""

    def transition_change(self, number: str, to: str, actor: str, note: str | None = None,
                          now: datetime | None = None) -> ChangeRecord:
        """Move a change along its state machine (cmdb.records); leaving authorize for scheduled
        approves it (approved_by/at), and needs a planned window."""

    def update_change(self, number: str, actor: str, now: datetime | None = None, *,
                      planned_start: datetime | None = None, planned_end: datetime | None = None,
                      add_cis: Iterable[str] = (), expected: tuple[ExpectedOutcome, ...] | None = None
                      ) -> ChangeRecord:
        """Plan a change (window, CIs, expected outcome) before it is approved."""

    def approved_changes_for(self, ci_ids: Iterable[str], at: datetime) -> list[ChangeRecord]:
        """Approved changes naming one of these CIs whose planned window contains `at`."""

    def changes_due_for_verification(self, now: datetime) -> list[ChangeRecord]:
        """Approved manual changes whose window has closed and that are not verified yet."""

    def record_verification(self, number: str, verification: str, detail: dict[str, Any],
                            now: datetime | None = None) -> ChangeRecord: ...

    def create_incident(self, new: NewIncident, now: datetime | None = None) -> Incident: ...

    def get_incident(self, number: str) -> Incident | None: ...

    def list_incidents(self, state: str | None = None, ci_id: str | None = None, open_only: bool = False,
                       limit: int = 100) -> list[Incident]:
        """Newest first."""

    def count_open_incidents(self) -> int: ...

    def update_incident(self, number: str, actor: str, now: datetime | None = None, *, state: str | None = None,
                        impact: int | None = None, urgency: int | None = None, assignee: str | None = None,
                        resolution: str | None = None, note: str | None = None) -> Incident: ...

    def record_events(self, after_seq: int = 0, limit: int = 100, record: str | None = None) -> list[RecordEvent]:
        """Record events in write order, after `after_seq`."""

    def webhook_state(self, url: str) -> tuple[int, int, int, str | None, int]:
        """(delivered_seq, attempts, next_attempt_at micros, last_error, dead_letters) of a webhook
        endpoint, registered (from the newest event on) when first asked."""

    def webhook_delivered(self, url: str, seq: int, dead: bool = False) -> None: ...

    def webhook_failed(self, url: str, error: str, next_attempt_at: datetime) -> int:
        """Count a failed attempt; the endpoint's attempts so far."""

    # -- CI merge and split (cmdb.operations; SQLite: cmdb.backends.sqlite_merge) ----------------
    # Each is one transaction and raises cmdb.operations.CIOperationRefused (nothing changed) when
    # it cannot be done as asked. With dry_run, the outcome is computed and nothing is stored.
    def merge_cis(self, survivor: str, absorbed: str, actor: str, reason: str | None = None,
                  dry_run: bool = False) -> CIOperation:
        """Merge `absorbed` into `survivor` (two active CIs of one non-dependent class): its
        identifiers, attributes (the survivor's value stays, the other is kept as an observation),
        relations, dependent CIs (re-keyed under the survivor, or merged into the survivor's same
        dependent), staleness scopes and shared identifiers move; it is retired with merged_into."""

    def split_ci(self, ci_id: str, identifiers: list[tuple[str, str]], actor: str, reason: str | None = None,
                 sources: list[tuple[str, str]] | None = None, dry_run: bool = False) -> CIOperation:
        """A new CI of the same class takes these (kind, value) identifiers of `ci_id`, and the
        staleness scopes of `sources` ((kind, id); None: the sources that bound only identifiers
        being split off) with the dependent CIs and relations only those scopes saw."""

    def undo_ci_operation(self, seq: int, actor: str, reason: str | None = None,
                          dry_run: bool = False) -> CIOperation:
        """Undo operation `seq` (a merge is split back out as it was, a split merged back),
        recorded as a new operation. Refused for an undo, an operation already undone, or one
        a later operation on the same CIs depends on (undo that one first)."""

    def ci_operations(self, ci_id: str | None = None) -> list[CIOperation]:
        """Operations in seq order; with ci_id, those where it is ci_id or other_ci."""

    # -- API tokens (hashed; the plain token is never stored) ---------------------------
    def add_token(self, token_hash: str, name: str, role: str,
                  expires_at: datetime | None = None) -> None: ...

    def token_role(self, token_hash: str, now: datetime) -> tuple[str, str] | None:
        """(name, role) of a valid (not revoked, not expired) token, else None."""

    def token_principal(self, token_hash: str, now: datetime) -> TokenPrincipal | None:
        """Name, role and source binding of a valid (not revoked, not expired) token, else None."""

    def revoke_token(self, name: str) -> int: ...

    def list_tokens(self) -> list[TokenInfo]:
        """Every token (never its hash), newest first."""

    # -- agent enrollment (one-time enrollment tokens, hashed like API tokens) --------------
    def add_enrollment_token(self, token_hash: str, name: str, max_uses: int = 1,
                             expires_at: datetime | None = None) -> None:
        """Store an enrollment token good for `max_uses` enrollments. ValueError when a live
        (not revoked) enrollment token has this name or the hash is already stored."""

    def list_enrollment_tokens(self) -> list[EnrollmentTokenInfo]:
        """Every enrollment token (never its hash), newest first."""

    def revoke_enrollment_token(self, name: str) -> int: ...

    def enroll(self, enrollment_hash: str, now: datetime, token_hash: str, name: str, role: str,
               source_id: str) -> Enrollment:
        """Redeem one use of a valid enrollment token and store a new API token bound to
        `source_id`, revoking that source's earlier credentials, all in one transaction: of
        concurrent calls for the last use exactly one succeeds. Raises EnrollmentRefused (unknown,
        expired, revoked, used up) or ValueError (a live token is named `name`); then nothing
        is stored and no use is counted."""

    def close(self) -> None: ...
