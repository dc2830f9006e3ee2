"""CI operations: merging two CIs that are one thing, splitting one CI that is two, and undoing either.

Identification gets it wrong sometimes (two CIs for one machine reinstalled without its serial,
one CI for two cloned VMs): an operator fixes it with `Store.merge_cis` and `Store.split_ci`
(`fleetgraph ci merge|split|undo|operations`, docs/reconcile.md "Merge and split"). Every
operation is one transaction, is numbered (`seq`), is written to the history of the CIs it
touched (`ci.merge`, `ci.split`, `ident.remove`, ...), and can be undone once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

CIOperationKind = Literal["merge", "split"]

# The source kind stamped on the history rows an operation writes; the source id is the actor and
# the report id is `operation_ref(seq)`, so a history row leads back to its operation.
OPERATOR_SOURCE_KIND = "operator"

MAX_ACTOR_LENGTH = 128
MAX_REASON_LENGTH = 2000


def operation_ref(seq: int) -> str:
    return f"ci-operation-{seq}"


@dataclass(frozen=True, slots=True)
class CIOperation:
    """One merge or split, as recorded.

    merge: `ci_id` is the survivor and `other_ci` the absorbed CI (retired, `merged_into` set).
    split: `ci_id` is the CI that was split and `other_ci` the CI that took the identifiers.
    An undo is itself an operation (undoing a merge is a split, undoing a split is a merge) whose
    `undoes` names the operation it undid; that one's `undone_by` names it back.
    `moved` counts what moved (identifiers_moved, attributes_moved, relations_repointed,
    dependents_merged, scopes_moved, ...: see docs/reconcile.md). `dry_run`: computed, not stored.
    """

    seq: int
    kind: CIOperationKind
    ci_id: str
    other_ci: str
    actor: str
    reason: str | None
    at: datetime
    undone_by: int | None = None
    undoes: int | None = None
    moved: dict[str, int] = field(default_factory=dict)
    # The dependent CIs merged along with the hosts, as (absorbed, survivor) pairs (merge only).
    dependents: tuple[tuple[str, str], ...] = ()
    dry_run: bool = False


class CIOperationRefused(ValueError):
    """The operation cannot be done as asked; nothing was changed. The message says why and what
    to do instead."""
