"""Identification: which CI each item of a report is, and which identifiers to bind to it.

Reads are batched per report, never per item: one `resolve_identifiers` call per (class, kind),
and one `identifiers_of` call for the candidates that exclusive kinds must be checked against.
Items are resolved in two passes, parents first: non-dependent items (Computer, Software, ...),
then dependent ones (Interface, IPAddress, SoftwareInstall, ...), whose keys are scoped by the id
of their host CI ("<host ci id>/<value>"), the first non-dependent CI up their scope relations.
Within a pass items are taken in report order; a value claimed by an earlier item of the same
report counts as bound, so two items with one key resolve to one CI.

The policy is data in `reconcile.rules`: a weak key (WEAK_KINDS) matches only when unique on both
sides, which costs one `shared_identifiers` read per (class, weak kind) with bound values; a key
with other spellings (EQUIVALENT_SPELLINGS: a byte-swapped UUID) looks them up in the same
`resolve_identifiers` call; a source barred from creating a class (BARRED_FROM_CREATING) has its
unmatched items of that class skipped, and the items scoped by them with them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

from cmdb.changes import IdentifierClaim, NewCI
from cmdb.ids import new_ci_id
from cmdb.model import CI_CLASSES
from cmdb.report import Item, Report
from cmdb.store import Store
from reconcile.result import ConflictReason, IdentifierConflict, SkippedItem
from reconcile.rules import IdentificationRule, may_create, rules_for

# How far up scope relations a dependent item may be from its host (IP -> interface -> host is 2).
MAX_SCOPE_DEPTH = 8

KeyedRules = list[tuple[IdentificationRule, tuple[str, ...]]]
Shortcut = Callable[[Item, str], "str | None"]  # (item, key prefix) -> its CI, known without its keys
Bindings = dict[tuple[str, str], dict[str, str]]  # (class, kind) -> {value: ci id} in the store
Shared = dict[tuple[str, str], dict[str, set[str]]]  # (class, weak kind) -> {value: active sharers}


@dataclass(slots=True)
class Identification:
    ci_of_ref: dict[str, str] = field(default_factory=dict)
    # The item whose attributes count for a CI (the first of the report that resolved to it).
    attribute_ref_of_ci: dict[str, str] = field(default_factory=dict)
    created: list[NewCI] = field(default_factory=list)
    claims: list[IdentifierClaim] = field(default_factory=list)
    conflicts: list[IdentifierConflict] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    # weak values an item's CI states while another CI holds them (ChangeSet.shared_identifiers)
    shared: list[IdentifierClaim] = field(default_factory=list)
    host_of_ref: dict[str, str] = field(default_factory=dict)  # dependent ref -> host CI id
    # Refs identified cleanly: every clean key value bound (or claimed now) by their CI itself, in
    # that spelling, at least one, no note and not a duplicate (reconcile.fastpath's premise).
    clean_refs: set[str] = field(default_factory=set)

    @property
    def new_ci_ids(self) -> set[str]:
        return {c.ci_id for c in self.created}

    def resolved_ci_ids(self) -> list[str]:
        return list(dict.fromkeys(self.ci_of_ref.values()))


def scope_parent_index(report: Report) -> dict[tuple[str, str, str], str]:
    """(rel type, end the dependent is at, dependent ref) -> the ref at the other end (first wins)."""
    index: dict[tuple[str, str, str], str] = {}
    for rel in report.relations:
        index.setdefault((rel.type, "from", rel.from_), rel.to)
        index.setdefault((rel.type, "to", rel.to), rel.from_)
    return index


def find_host_ref(item: Item, items_by_ref: dict[str, Item],
                  parents: dict[tuple[str, str, str], str]) -> str | None:
    """The ref of the non-dependent item a dependent item hangs off, walking up scope relations
    (an IP is scoped by the host, not by the interface, so it survives an interface rename)."""
    current = item
    for _ in range(MAX_SCOPE_DEPTH):
        ci_class = CI_CLASSES[current.class_]
        if not ci_class.is_dependent:
            return current.ref
        parent_ref = next((parents[key] for s in ci_class.scope
                           if (key := (s.rel_type, s.dependent_end, current.ref)) in parents), None)
        if parent_ref is None or parent_ref not in items_by_ref or items_by_ref[parent_ref].reference:
            return None  # a reference is not a host: it is never identified (reconcile.references)
        current = items_by_ref[parent_ref]
    return None


class IdentifierResolver:
    """Resolves items to CI ids against the store plus the claims made earlier in this report."""

    def __init__(self, store: Store, outcome: Identification, source_kind: str = "agent"):
        self.store = store
        self.outcome = outcome
        self.source_kind = source_kind
        # Per batch: the active sharers of bound weak values, and how many items state each value.
        self.shared: Shared = {}
        self.stated: Counter[tuple[str, str, str]] = Counter()
        # (class, kind, value) -> ci id, for values claimed by this report (not in the store yet)
        self.claimed_here: dict[tuple[str, str, str], str] = {}
        self.claimed_by_ci: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    def identify_batch(self, items: list[tuple[Item, str]], new_hosts: set[str],
                       shortcut: Shortcut | None = None) -> None:
        """Resolve (item, key prefix) pairs. Scoped keys of a host created by this report
        (`new_hosts`) cannot be in the store yet, so they are not looked up. `shortcut(item,
        prefix)` names the CI of an item known without its keys (reconcile.fastpath: only for
        classes without weak kinds, whose every key value the CI holds), or None."""
        known_ci = {}
        if shortcut is not None:
            known_ci = {i: ci_id for i, (item, prefix) in enumerate(items)
                        if (ci_id := shortcut(item, prefix)) is not None}
        keyed = [(item, self._keyed_rules(item, prefix)) for i, (item, prefix) in enumerate(items)
                 if i not in known_ci]
        bound = self._read_bindings(keyed, new_hosts)
        self.shared = self._read_shared(keyed, bound)
        self.stated = Counter((item.class_, rule.kind, v) for item, rules in keyed
                              for rule, values in rules if rule.weak for v in values)
        known = self._read_candidate_identifiers(keyed, bound)
        unknown = iter(keyed)
        for i, (item, _) in enumerate(items):  # report order, so the first item of a CI stays first
            if i in known_ci:
                self._place(item, known_ci[i], clean=True)
            else:
                self._identify_item(*next(unknown), bound, known)

    @staticmethod
    def _keyed_rules(item: Item, prefix: str) -> KeyedRules:
        if not prefix:
            return [(rule, rule.key_values(item)) for rule in rules_for(item.class_)]
        return [(rule, tuple(prefix + v for v in rule.key_values(item))) for rule in rules_for(item.class_)]

    def _read_bindings(self, keyed: list[tuple[Item, KeyedRules]],
                       new_hosts: set[str]) -> Bindings:
        wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        for item, rules in keyed:
            for rule, values in rules:
                lookup = [v for v in values if not new_hosts or v.partition("/")[0] not in new_hosts]
                if rule.equivalents:
                    lookup += [e for v in lookup for e in rule.equivalents(v)]
                wanted[(item.class_, rule.kind)].update(lookup)
        return {(ci_class, kind): (self.store.resolve_identifiers(ci_class, kind, sorted(values))
                                   if values else {})
                for (ci_class, kind), values in wanted.items()}

    def _read_shared(self, keyed: list[tuple[Item, KeyedRules]], bound: Bindings) -> Shared:
        """The active sharers of the weak values of the batch that are bound to a CI."""
        wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        for item, rules in keyed:
            for rule, values in rules:
                if rule.weak and (lookup := bound.get((item.class_, rule.kind))):
                    wanted[(item.class_, rule.kind)].update(v for v in values if v in lookup)
        return {(ci_class, kind): self.store.shared_identifiers(ci_class, kind, sorted(values))
                for (ci_class, kind), values in wanted.items() if values}

    def _read_candidate_identifiers(self, keyed: list[tuple[Item, KeyedRules]], bound: Bindings,
                                    ) -> dict[str, dict[str, set[str]]]:
        """Identifiers of every CI a weaker rule could pick for an item that carries an exclusive
        kind: the exclusive check needs them, and one read covers the whole report."""
        candidates: set[str] = set()
        for item, rules in keyed:
            if not any(rule.exclusive and values for rule, values in rules):
                continue
            for rule, values in rules:
                lookup = bound.get((item.class_, rule.kind), {})
                candidates.update(lookup[v] for v in _with_equivalents(rule, values) if v in lookup)
        if not candidates:
            return {}
        known: dict[str, dict[str, set[str]]] = {}
        for ci_id, identifiers in self.store.identifiers_of(sorted(candidates)).items():
            by_kind: dict[str, set[str]] = defaultdict(set)
            for identifier in identifiers:
                by_kind[identifier.kind].add(identifier.value)
            known[ci_id] = by_kind
        return known

    def _owner(self, ci_class: str, kind: str, value: str, bound: Bindings) -> str | None:
        owner = bound.get((ci_class, kind), {}).get(value)
        return owner or self.claimed_here.get((ci_class, kind, value))

    def _rule_owner(self, ci_class: str, rule: IdentificationRule, value: str, bound: Bindings) -> str | None:
        """The CI holding the value, else one holding another spelling of it (exact spelling first)."""
        owner = self._owner(ci_class, rule.kind, value, bound)
        if owner is None and rule.equivalents:
            owner = next((o for e in rule.equivalents(value)
                          if (o := self._owner(ci_class, rule.kind, e, bound))), None)
        return owner

    def _weak_unique(self, ci_class: str, kind: str, value: str, owner: str) -> bool:
        """Unique on both sides: one item of the report states it, and no active CI but its holder."""
        if self.stated[(ci_class, kind, value)] > 1:
            return False
        return not (self.shared.get((ci_class, kind), {}).get(value, set()) - {owner})

    def _identify_item(self, item: Item, rules: KeyedRules, bound: Bindings,
                       known: dict[str, dict[str, set[str]]]) -> None:
        refused: list[tuple[ConflictReason, str, str, str]] = []  # (reason, other ci, kind, values)
        ci_id = self._match_first_rule(item, rules, bound, known, refused)
        outcome = self.outcome
        if ci_id is None and not may_create(self.source_kind, item.class_):
            why = "".join(f"; {kind}={values!r}: {reason}" for reason, _, kind, values in refused)
            outcome.skipped.append(SkippedItem(
                item.ref, item.class_, f"matched no CI, and a {self.source_kind} report may not create a "
                                       f"{item.class_}: it only enriches CIs it matches uniquely{why}"))
            return
        if ci_id is None:
            ci_id = new_ci_id()
            outcome.created.append(NewCI(ci_id, item.class_))
        outcome.conflicts += [IdentifierConflict(reason, item.ref, item.class_, ci_id, other, kind, values)
                              for reason, other, kind, values in refused]
        placed_first = self._place(item, ci_id, clean=not refused)
        clean = self._claim_unbound(item, ci_id, rules, bound)
        if not (placed_first and clean and not refused):
            outcome.clean_refs.discard(item.ref)

    def _place(self, item: Item, ci_id: str, clean: bool) -> bool:
        """Record that the item is the CI; False when an earlier item of the report already was."""
        outcome = self.outcome
        outcome.ci_of_ref[item.ref] = ci_id
        if ci_id in outcome.attribute_ref_of_ci:
            outcome.conflicts.append(IdentifierConflict("duplicate_item", item.ref, item.class_, ci_id))
            return False
        outcome.attribute_ref_of_ci[ci_id] = item.ref
        if clean:
            outcome.clean_refs.add(item.ref)
        return True

    def _match_first_rule(self, item: Item, rules: KeyedRules, bound: Bindings,
                          known: dict[str, dict[str, set[str]]],
                          refused: list[tuple[ConflictReason, str, str, str]]) -> str | None:
        """The CI of the first rule that points at exactly one CI not contradicted by a stronger
        exclusive kind; the candidates it passed over are noted in `refused`."""
        for position, (rule, values) in enumerate(rules):
            if len(values) == 1:  # the common case, without building the owner set
                owner = self._rule_owner(item.class_, rule, values[0], bound)
                owned = [(values[0], owner)] if owner else []
            else:
                owned = [(v, o) for v in values if (o := self._rule_owner(item.class_, rule, v, bound))]
            if rule.weak and owned:
                ambiguous = [(v, o) for v, o in owned if not self._weak_unique(item.class_, rule.kind, v, o)]
                if ambiguous:
                    refused.append(("weak_key_not_unique", ambiguous[0][1], rule.kind,
                                    ", ".join(v for v, _ in ambiguous)))
                    owned = [pair for pair in owned if pair not in ambiguous]
            owners = list(dict.fromkeys(o for _, o in owned))
            if not owners:
                continue
            if len(owners) > 1:
                refused.append(("ambiguous_match", owners[0], rule.kind, ", ".join(values)))
                continue
            candidate = owners[0]
            contradicted = self._contradicting_rule(candidate, rules[:position], known)
            if contradicted is not None:
                refused.append(("candidate_contradicted", candidate, rule.kind, ", ".join(values)))
                continue
            return candidate
        return None

    def _contradicting_rule(self, candidate: str, stronger: KeyedRules,
                            known: dict[str, dict[str, set[str]]]) -> IdentificationRule | None:
        """The first stronger exclusive rule on which the item and the candidate both have values
        and share none (a different serial or UUID: a different machine)."""
        for rule, values in stronger:
            if not (rule.exclusive and values):
                continue
            theirs = known.get(candidate, {}).get(rule.kind, set()) | self.claimed_by_ci[candidate][rule.kind]
            if theirs and theirs.isdisjoint(_with_equivalents(rule, values)):
                return rule
        return None

    def _claim_unbound(self, item: Item, ci_id: str, rules: KeyedRules, bound: Bindings) -> bool:
        """Bind every clean identifier of the item that is bound to nothing; never steal one. A value
        whose other spelling the CI holds is not claimed; a weak value another CI holds is shared.
        True when the CI holds (or now claims) every value, in that spelling, and there is one."""
        clean = any(values for _, values in rules)
        for rule, values in rules:
            for value in values:
                owner = self._owner(item.class_, rule.kind, value, bound)
                if owner is None and rule.equivalents and ci_id == self._rule_owner(
                        item.class_, rule, value, bound):
                    clean = False
                    continue  # the CI holds the same key spelt the other way
                if owner is None:
                    self.outcome.claims.append(IdentifierClaim(ci_id, item.class_, rule.kind, value))
                    self.claimed_here[(item.class_, rule.kind, value)] = ci_id
                    self.claimed_by_ci[ci_id][rule.kind].add(value)
                elif owner != ci_id:
                    self.outcome.conflicts.append(IdentifierConflict(
                        "identifier_bound_elsewhere", item.ref, item.class_, ci_id, owner, rule.kind, value))
                    if rule.weak and ci_id not in self.shared.get((item.class_, rule.kind), {}).get(value, ()):
                        self.outcome.shared.append(IdentifierClaim(ci_id, item.class_, rule.kind, value))
                    clean = False
        return clean


def _with_equivalents(rule: IdentificationRule, values: tuple[str, ...]) -> tuple[str, ...]:
    if not rule.equivalents:
        return values
    return values + tuple(e for v in values for e in rule.equivalents(v))


def identify_items(store: Store, report: Report, shortcut: Shortcut | None = None) -> Identification:
    """Resolve every item of the report to an existing CI or a new one (reads only). `shortcut`:
    see IdentifierResolver.identify_batch."""
    outcome = Identification()
    resolver = IdentifierResolver(store, outcome, report.source.kind)
    # References (Item.reference) point at CIs the source does not own: they are never identified
    # here (no CI, no claim, no attributes); reconcile.references resolves the relations to them.
    roots = [item for item in report.items if not item.reference and not CI_CLASSES[item.class_].is_dependent]
    resolver.identify_batch([(item, "") for item in roots], new_hosts=set(), shortcut=shortcut)

    items_by_ref = {item.ref: item for item in report.items}
    parents = scope_parent_index(report)
    dependents: list[tuple[Item, str]] = []
    for item in report.items:
        if item.reference or not CI_CLASSES[item.class_].is_dependent:
            continue
        host_ref = find_host_ref(item, items_by_ref, parents)
        host_id = outcome.ci_of_ref.get(host_ref) if host_ref else None
        if host_id is None and host_ref is not None:
            outcome.skipped.append(SkippedItem(
                item.ref, item.class_, f"its host {host_ref} was not placed on a CI (skipped)"))
            continue
        if host_id is None:
            scopes = " or ".join(f"{s.rel_type} ({s.dependent_end} end)"
                                 for s in CI_CLASSES[item.class_].scope)
            outcome.skipped.append(SkippedItem(
                item.ref, item.class_, f"no host in the report: a {item.class_} needs a {scopes} relation "
                                       "leading to a non-dependent item"))
            continue
        outcome.host_of_ref[item.ref] = host_id
        dependents.append((item, f"{host_id}/"))
    resolver.identify_batch(dependents, new_hosts=outcome.new_ci_ids, shortcut=shortcut)
    return outcome
