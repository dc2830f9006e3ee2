"""What reconcile hands back: the change set, plus the notes it left for people and for later rules.

`conflicts` is where identification says "I did not do what the identifiers alone suggested, and
why" (an identifier bound to another CI, a clone refused, an ambiguous MAC set). Clone and reinstall
handling (issue #5) builds on these notes; nothing here is written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmdb.changes import ChangeSet

ConflictReason = Literal[
    # the item carries a clean identifier already bound to another CI: it was not stolen
    "identifier_bound_elsewhere",
    # the item's values of one kind (e.g. its MACs) are bound to several CIs: that rule matched none
    "ambiguous_match",
    # a weaker rule pointed at a CI whose serial/UUID differs from the item's: refused (clone, reused name)
    "candidate_contradicted",
    # two items of one report resolved to the same CI: the first item's attributes count
    "duplicate_item",
    # a weak key (hostname, FQDN: reconcile.rules WEAK_KINDS) held by several CIs or stated by
    # several items of the report: that rule matched nothing
    "weak_key_not_unique",
]


@dataclass(frozen=True, slots=True)
class IdentifierConflict:
    reason: ConflictReason
    item_ref: str
    ci_class: str
    ci_id: str  # the CI the item resolved to
    other_ci_id: str | None = None  # the CI that holds the identifier / the refused candidate
    kind: str | None = None
    value: str | None = None

    def describe(self) -> str:
        what = f"{self.kind}={self.value!r}" if self.kind else ""
        return {
            "identifier_bound_elsewhere": f"{self.ci_class} {self.item_ref}: {what} is bound to "
                                          f"{self.other_ci_id}, not claimed for {self.ci_id}",
            "ambiguous_match": f"{self.ci_class} {self.item_ref}: {self.kind} values match several CIs "
                               f"(one is {self.other_ci_id}); not identified by {self.kind}, "
                               f"resolved to {self.ci_id}",
            "candidate_contradicted": f"{self.ci_class} {self.item_ref}: {what} points at "
                                      f"{self.other_ci_id}, whose serial/UUID differs; refused, "
                                      f"resolved to {self.ci_id}",
            "duplicate_item": f"{self.ci_class} {self.item_ref}: resolved to {self.ci_id} like an "
                              f"earlier item of the report; its attributes are ignored",
            "weak_key_not_unique": f"{self.ci_class} {self.item_ref}: {what} is a weak key held by "
                                   f"several CIs (one is {self.other_ci_id}) or stated by several "
                                   f"items; not identified by it, resolved to {self.ci_id}",
        }[self.reason]


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An item reconcile could not place (e.g. a dependent CI with no host in the report)."""

    item_ref: str
    ci_class: str
    reason: str


@dataclass(slots=True)
class AnnotatedChangeSet(ChangeSet):
    """A ChangeSet (what `Store.apply` writes) with reconcile's notes, which it does not write."""

    conflicts: list[IdentifierConflict] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    ci_of_ref: dict[str, str] = field(default_factory=dict)  # item ref -> the CI it resolved to
