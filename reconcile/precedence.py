"""Attribute precedence: which source's value of an attribute is the CI's current value.

Every source keeps its own latest value of each attribute it states (an *observation*); the
current value is the winning observation:

1. the source kind earlier in the attribute's priority order wins (default: agent > ssh > ocs >
   fusion > snmp > nmap; a kind not listed ranks after every listed one);
2. between equal ranks (two kinds both unlisted, or two sources of one kind, e.g. two SSH
   scanners), the most recently observed value wins;
3. on a full tie the incumbent (the current value's source) stays, so nothing flaps.

The table is data: `PrecedenceTable(default=..., overrides={"location": (...), "NetworkDevice.model":
(...)})`, built from the `[reconcile]` options `source_priority` and `attribute_priority` by
`PrecedenceTable.from_config`. An override names an attribute, or a class and an attribute (the
class-specific one is preferred), and gives the whole order for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

SOURCE_KINDS = ("agent", "ssh", "ocs", "fusion", "snmp", "nmap")  # cmdb.report's source kinds
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = ("agent", "ssh", "ocs", "fusion", "snmp", "nmap")


def _check_order(order: Iterable[str], where: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in order if k.strip())
    unknown = [k for k in kinds if k not in SOURCE_KINDS]
    if unknown:
        raise ValueError(f"{where}: unknown source kind(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(SOURCE_KINDS)})")
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise ValueError(f"{where}: source kind(s) listed twice: {', '.join(twice)}")
    if not kinds:
        raise ValueError(f"{where}: name at least one source kind, e.g. agent>ssh>snmp")
    return kinds


@dataclass(frozen=True, slots=True)
class PrecedenceTable:
    default: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY
    # "name" or "Class.name" -> the whole priority order of that attribute
    overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _ranks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", _check_order(self.default, "reconcile.source_priority"))
        checked = {key: _check_order(order, f"reconcile.attribute_priority {key}")
                   for key, order in self.overrides.items()}
        object.__setattr__(self, "overrides", checked)

    @classmethod
    def from_config(cls, source_priority: Iterable[str], attribute_priority: Iterable[str] = ()) -> PrecedenceTable:
        """From the `[reconcile]` options: `source_priority` a list of kinds, best first;
        `attribute_priority` entries "ATTRIBUTE=KIND>KIND>..." or "Class.ATTRIBUTE=KIND>...".
        ValueError names the entry that is wrong."""
        overrides: dict[str, tuple[str, ...]] = {}
        for entry in attribute_priority:
            key, sep, order = entry.partition("=")
            key = key.strip()
            if not sep or not key or key.count(".") > 1:
                raise ValueError(f"reconcile.attribute_priority: {entry!r} is not ATTRIBUTE=KIND>KIND>... "
                                 "(e.g. 'location=snmp>agent' or 'NetworkDevice.model=snmp>ssh')")
            if key in overrides:
                raise ValueError(f"reconcile.attribute_priority: {key!r} is given twice")
            overrides[key] = tuple(order.split(">"))
        return cls(tuple(source_priority), overrides)

    def order(self, name: str, ci_class: str | None = None) -> tuple[str, ...]:
        """The priority order of source kinds for this attribute (of this class), best first."""
        if self.overrides:
            if ci_class is not None and f"{ci_class}.{name}" in self.overrides:
                return self.overrides[f"{ci_class}.{name}"]
            if name in self.overrides:
                return self.overrides[name]
        return self.default

    def ranks(self, name: str, ci_class: str | None = None) -> dict[str, int]:
        """{source kind: rank} (lower wins); a kind not in it ranks len(order)."""
        key = (name, ci_class) if self.overrides else None
        ranks = self._ranks.get(key)
        if ranks is None:
            ranks = self._ranks[key] = {kind: i for i, kind in enumerate(self.order(name, ci_class))}
        return ranks

    def rank(self, source_kind: str, name: str, ci_class: str | None = None) -> int:
        ranks = self.ranks(name, ci_class)
        return ranks.get(source_kind, len(ranks))

    def beats(self, kind: str, observed_at: datetime, other_kind: str, other_observed_at: datetime,
              name: str, ci_class: str | None = None) -> bool:
        """True when (kind, observed_at) strictly beats the other observation (rank, then recency)."""
        ranks = self.ranks(name, ci_class)
        mine, theirs = ranks.get(kind, len(ranks)), ranks.get(other_kind, len(ranks))
        return mine < theirs or (mine == theirs and observed_at > other_observed_at)


DEFAULT_PRECEDENCE = PrecedenceTable()
