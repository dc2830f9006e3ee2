"""The store side of the reconcile fast path (reconcile.fastpath): an optional part of the store
contract. A backend that has these reads (SQLite: cmdb.backends.sqlite_fingerprint) lets reconcile
skip the items a source states exactly as last time; a backend without them is reconciled by the
full path, with the same outcome.

What a stored item fingerprint promises, while it exists (the store drops it when a write breaks
it): the source's item with that ref, stated with that digest, resolved to `ci_id`; every clean
identifier value of the item is bound to that CI; the CI is active, holds exactly the values the
item states, every one from that source, and no other source's observation. Its stamp
(`Confirmation`) is when that source last confirmed the CI as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

RelationKey = tuple[str, str, str]  # (type, from ci, to ci), as reconcile.merge
Scope = tuple[str, str]  # (collector, subject ci), as reconcile.staleness


StoredFingerprint = tuple[bytes, str, datetime]  # (digest, ci id, when its source last confirmed the CI)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A source confirmed every value of a CI (all its own, none changed) with this report, at this
    time. The values' own `observed_at` is the last time reconcile wrote them one by one; the
    later of the two is when the source last stated them."""

    source_kind: str
    source_id: str
    report_id: str | None
    confirmed_at: datetime


@runtime_checkable
class FingerprintStore(Protocol):
    def item_fingerprints(self, source_kind: str, source_id: str,
                          refs: Iterable[str] | None = None) -> dict[str, StoredFingerprint]:
        """{item ref: fingerprint} of the source's items (with `refs`, of those only), leaving out
        those a later CI operation (merge, split) voided."""

    def confirmations(self, ci_ids: Iterable[str]) -> dict[str, list[Confirmation]]:
        """{ci_id: [confirmation, ...]} for the CIs whose values a source confirmed as a whole."""

    def active_relations_from(self, ci_ids: Iterable[str]) -> set[RelationKey]:
        """Every active relationship out of these CIs, as keys (a lean Store.relationships_among)."""

    def scope_digests(self, source_kind: str, source_id: str) -> dict[Scope, bytes]:
        """{(collector, subject): digest} of the source's scopes whose seen-by rows are exactly what
        their last complete run stated (ChangeSet.scope_digests)."""
