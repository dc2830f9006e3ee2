"""The one collector interface, and the Contribution every collector returns.

A collector is a small object with a `name`, an `is_enabled(ctx)` probe and `collect(ctx)`. It
returns a Contribution: report items and relations, keyed by local refs. Several collectors may
describe the same item (the Computer, ref "computer", gets identifiers and attributes from the
hardware, os and network collectors); the report builder merges contributions by ref.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.context import Context

COMPUTER_REF = "computer"


@dataclass
class Contribution:
    """Items (class, ref, identifiers, attributes) and relations (from ref, type, to ref).

    None values are dropped on the way in: unknown is absent, never "" or a placeholder. The
    builder stamps each item with the collector's name; collectors do not set it themselves.
    """

    items: dict[str, ContributedItem] = field(default_factory=dict)
    relations: list[tuple[str, str, str]] = field(default_factory=list)
    # Attributes of relations[i], for the relations that have any (e.g. DEPENDS_ON's remote_port).
    relation_attributes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, class_: str, ref: str, identifiers: Mapping[str, Any] | None = None,
            attributes: Mapping[str, Any] | None = None, *, reference: bool = False) -> str:
        """Add an item (or merge into the item already under `ref`); returns the ref. A
        `reference` points at a CI this source does not own (see cmdb.report.Item.reference)."""
        item = self.items.get(ref)
        if item is None:
            item = self.items[ref] = ContributedItem(class_, ref, reference=reference)
        elif item.class_ != class_:
            raise ValueError(f"ref {ref!r} is already a {item.class_}, cannot also be a {class_}")
        else:
            item.reference = item.reference and reference
        item.identifiers.update(present(identifiers or {}))
        item.attributes.update(present(attributes or {}))
        return ref

    def computer(self, identifiers: Mapping[str, Any] | None = None,
                 attributes: Mapping[str, Any] | None = None) -> str:
        """Contribute identifiers/attributes to the Computer this report describes."""
        return self.add("Computer", COMPUTER_REF, identifiers, attributes)

    def relate(self, from_ref: str, rel_type: str, to_ref: str,
               attributes: Mapping[str, Any] | None = None) -> None:
        """Add a relation once; two relations between the same refs differ by their attributes."""
        edge = (from_ref, rel_type, to_ref)
        attrs = present(attributes or {})
        key = (*edge, repr(sorted(attrs.items()))) if attrs else edge
        if key not in self._edges:
            self._edges.add(key)
            if attrs:
                self.relation_attributes[len(self.relations)] = attrs
            self.relations.append(edge)

    def __post_init__(self) -> None:
        self._edges: set[tuple[str, ...]] = set(self.relations)


@dataclass
class ContributedItem:
    class_: str
    ref: str
    identifiers: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    reference: bool = False


def present(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without the unknown ones (None, "", empty lists)."""
    return {k: v for k, v in values.items() if v is not None and v != "" and v != []}


class Collector(Protocol):
    """Every agent collector. `name` is the key of its status in the report (e.g. "hardware",
    "software.dpkg"); `is_enabled` is a cheap probe (is dpkg-query there?); `collect` raises
    on failure, and the builder records that as the collector's status."""

    name: str
    # Optional `annotates = True`: the collector only adds attributes to items other collectors
    # own (e.g. licenses on dpkg's packages); it never speaks for those items' completeness.
    # Optional `prepare(ctx)`: called before any collector runs (agent.builder.prepare_collectors)
    # to start independent slow work that collect() then picks up (agent.background).

    def is_enabled(self, ctx: Context) -> bool: ...

    def collect(self, ctx: Context) -> Contribution: ...
