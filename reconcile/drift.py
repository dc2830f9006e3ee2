"""Drift: a change of a tracked attribute or set of a CI that already existed, read off a change set.

The policy is data (`DriftPolicy`), built from the `[reconcile]` option `drift_tracked`, whose
entries are one of:

    "Class.attribute"          a tracked attribute, e.g. "Computer.memory_bytes", "SoftwareInstall.version"
    "HostClass:MemberClass"    a tracked set: the MemberClass CIs hanging off a HostClass CI through
                               the member class's scope relation (cmdb.model), e.g.
                               "Computer:SoftwareInstall" (INSTALLED_ON), "Computer:Disk" (HAS_DISK)

`detect_drift` turns a change set into `DriftEvent`s (cmdb.changes), with no store read except
for the class and summary of a set member that retired without being in the report (a package
that is gone: staleness retires it and its relation). What is drift:

- a changed (set, replaced, removed) value of a tracked attribute of a CI the change set did not
  create: a new machine is not drift, and neither is its first report;
- a tracked-set relation added or retired where the host existed before (a package installed,
  a disk gone, a listening service back again after a retirement); the event is on the host,
  named after the set ("software", "disks", ...), its before/after the member's summary;
- never a measurement (cmdb.model CIClass.measurements): readings are not configuration.

Reconciling the same report again yields an empty change set, hence no drift; and an event's id is
derived from the report and what changed, so the store keeps one copy even if it is written twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cmdb.changes import ChangeSet, DriftEvent, Provenance
from cmdb.config import DEFAULT_DRIFT_TRACKED
from cmdb.model import CI_CLASSES, REL_TYPES
from cmdb.report import Item, Report
from cmdb.store import Store

# The name of a tracked set, by member class (others: the class in snake case, plural).
SET_NAMES: dict[str, str] = {
    "SoftwareInstall": "software", "Service": "services", "Disk": "disks",
    "MemoryModule": "memory_modules", "PCIDevice": "pci_devices", "Interface": "interfaces",
    "IPAddress": "ip_addresses", "FileSystem": "filesystems", "OperatingSystem": "operating_systems",
}
# Attributes that name a set member for people, in this order, after its identifiers.
SUMMARY_ATTRIBUTES = ("name", "version", "arch", "protocol", "port", "model", "serial", "size_bytes",
                      "capacity_bytes", "slot", "vendor", "mount", "mac")

_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_.]*$")
_HOST_PREFIX = re.compile(r"^[0-9a-f]{32}/")
_FORMS = ("expected \"Class.attribute\" (e.g. \"Computer.memory_bytes\") or \"HostClass:MemberClass\" "
          "(e.g. \"Computer:SoftwareInstall\")")

# rel type -> {end the member is at ("from" | "to"): member classes} (cmdb.model scopes)
_MEMBER_ENDS: dict[str, dict[str, set[str]]] = {}
for _cls in CI_CLASSES.values():
    for _scope in _cls.scope:
        _MEMBER_ENDS.setdefault(_scope.rel_type, {}).setdefault(_scope.dependent_end, set()).add(_cls.name)


def set_name(member_class: str) -> str:
    return SET_NAMES.get(member_class) or re.sub(r"(?<!^)(?=[A-Z])", "_", member_class).lower() + "s"


def _known_class(name: str, entry: str) -> str:
    if name not in CI_CLASSES:
        hint = f" ({name} is a relation type: name the member class)" if name in REL_TYPES else ""
        raise ValueError(f"reconcile.drift_tracked entry {entry!r}: unknown class {name!r}{hint} "
                         f"(classes: {', '.join(CI_CLASSES)})")
    return name


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """What drifts: tracked (class, attribute) pairs and tracked sets {(host class, member class): name}."""

    attributes: frozenset[tuple[str, str]] = frozenset()
    sets: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, tracked: Iterable[str]) -> DriftPolicy:
        """From `[reconcile] drift_tracked`; ValueError names the entry that is wrong and why."""
        attributes: set[tuple[str, str]] = set()
        sets: dict[tuple[str, str], str] = {}
        for raw in tracked:
            entry = raw.strip()
            if ":" in entry:
                host, _, member = (p.strip() for p in entry.partition(":"))
                _known_class(host, entry)
                _known_class(member, entry)
                if CI_CLASSES[host].is_dependent:
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r}: {host} is a dependent class; "
                                     "a set hangs off a host class such as Computer or NetworkDevice")
                if not CI_CLASSES[member].is_dependent:
                    members = ", ".join(c.name for c in CI_CLASSES.values() if c.is_dependent)
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r}: {member} does not hang off "
                                     f"a host; a set's members are one of {members}")
                key = (host, member)
                if key in sets:
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r} is listed twice")
                sets[key] = set_name(member)
            elif "." in entry:
                ci_class, _, name = entry.partition(".")
                _known_class(ci_class, entry)
                if not _ATTRIBUTE.match(name):
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r}: {name!r} is not an attribute "
                                     "name (lower-case letters, digits, '_' and '.', starting with a letter)")
                if name in CI_CLASSES[ci_class].measurements:
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r}: {name} is a measurement of "
                                     f"{ci_class} (a reading, which never drifts); remove it")
                if (ci_class, name) in attributes:
                    raise ValueError(f"reconcile.drift_tracked entry {entry!r} is listed twice")
                attributes.add((ci_class, name))
            else:
                raise ValueError(f"reconcile.drift_tracked entry {raw!r}: {_FORMS}")
        return cls(frozenset(attributes), sets)

    @property
    def is_empty(self) -> bool:
        return not (self.attributes or self.sets)


DEFAULT_DRIFT_POLICY = DriftPolicy.from_config(DEFAULT_DRIFT_TRACKED)


def drift_id(provenance: Provenance, ci_id: str, attribute: str, related_ci: str | None) -> str:
    """Derived from the report and what changed: the same event written twice is one event."""
    key = "\0".join((provenance.source_kind, provenance.source_id, provenance.report_id or "",
                     provenance.observed_at.isoformat(), ci_id, attribute, related_ci or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class _Context:
    """What the detector knows about the CIs of a change set: classes and items from the report
    (lazily indexed), then the store for CIs the report did not carry (retired set members)."""

    def __init__(self, changes: ChangeSet, report: Report | None, store: Store | None):
        self.changes, self.report, self.store = changes, report, store
        self.created = {c.ci_id: c.ci_class for c in changes.created}
        self._items: dict[str, Item] | None = None
        self._hosts: dict[str, str] | None = None
        self._fetched: dict[str, Any] = {}

    def items(self) -> dict[str, Item]:
        if self._items is None:
            self._items = {}
            ci_of_ref: dict[str, str] = getattr(self.changes, "ci_of_ref", {}) or {}
            if self.report is not None:
                for item in self.report.items:
                    ci_id = ci_of_ref.get(item.ref)
                    if ci_id is not None and ci_id not in self._items and not item.reference:
                        self._items[ci_id] = item
        return self._items

    def fetched(self, ci_id: str) -> Any:
        if ci_id not in self._fetched:
            self._fetched[ci_id] = self.store.get_ci(ci_id) if self.store is not None else None
        return self._fetched[ci_id]

    def class_of(self, ci_id: str) -> str | None:
        if ci_id in self.created:
            return self.created[ci_id]
        item = self.items().get(ci_id)
        if item is not None:
            return item.class_
        ci = self.fetched(ci_id)
        return None if ci is None else ci.ci_class

    def host_of(self, ci_id: str, ci_class: str) -> str | None:
        """The host of a dependent CI, through its scope relation in the report."""
        if self._hosts is None:
            self._hosts = {}
            ci_of_ref: dict[str, str] = getattr(self.changes, "ci_of_ref", {}) or {}
            if self.report is not None:
                refs = {i.ref: i.class_ for i in self.report.items}
                for rel in self.report.relations:
                    for end, member_ref, host_ref in (("from", rel.from_, rel.to), ("to", rel.to, rel.from_)):
                        if refs.get(member_ref) in _MEMBER_ENDS.get(rel.type, {}).get(end, ()):
                            member, host = ci_of_ref.get(member_ref), ci_of_ref.get(host_ref)
                            if member and host:
                                self._hosts.setdefault(member, host)
        return self._hosts.get(ci_id)

    def summary(self, ci_id: str) -> dict[str, Any]:
        """The member's identifiers and naming attributes, e.g. {"package": "deb:bash:amd64",
        "name": "bash", "version": "5.2.15-2"}."""
        item = self.items().get(ci_id)
        if item is not None:
            identifiers = {k: v for k, v in item.identifiers.items() if not isinstance(v, list)}
            attributes = item.attributes
        else:
            ci = self.fetched(ci_id)
            if ci is None:
                return {}
            identifiers = {i.kind: _HOST_PREFIX.sub("", i.value) for i in ci.identifiers}
            attributes = {name: a.value for name, a in ci.attributes.items()}
        out = dict(sorted(identifiers.items()))
        out.update((name, attributes[name]) for name in SUMMARY_ATTRIBUTES
                   if name in attributes and name not in out and attributes[name] is not None)
        return out


def detect_drift(changes: ChangeSet, report: Report | None = None, store: Store | None = None,
                 policy: DriftPolicy = DEFAULT_DRIFT_POLICY) -> list[DriftEvent]:
    """The drift events of a change set (see the module docstring). `report` is the report the
    change set was computed from (classes and members are read from it); `store` is asked only
    about set members the report does not carry."""
    if policy.is_empty or not (changes.attributes or changes.relations):
        return []
    ctx = _Context(changes, report, store)
    prov = changes.provenance
    events: dict[str, DriftEvent] = {}

    def emit(ci_id: str, ci_class: str, attribute: str, before: Any, after: Any, related: str | None,
             provenance: Provenance) -> None:
        event_id = drift_id(provenance, ci_id, attribute, related)
        events.setdefault(event_id, DriftEvent(event_id, ci_id, ci_class, attribute, before, after,
                                               related, provenance))

    tracked_classes = {c for c, _ in policy.attributes}
    for change in changes.attributes:
        if change.ci_id in ctx.created or change.before == change.after:
            continue
        ci_class = ctx.class_of(change.ci_id)
        if ci_class not in tracked_classes or (ci_class, change.name) not in policy.attributes:
            continue
        host = ctx.host_of(change.ci_id, ci_class) if CI_CLASSES[ci_class].is_dependent else None
        emit(change.ci_id, ci_class, change.name, change.before, change.after, host,
             change.provenance or prov)

    if policy.sets:
        for rel in changes.relations:
            for end, member_classes in _MEMBER_ENDS.get(rel.type, {}).items():
                member, host = (rel.from_ci, rel.to_ci) if end == "from" else (rel.to_ci, rel.from_ci)
                if host in ctx.created:
                    continue  # a new host: its first members are not drift
                member_class = ctx.class_of(member)
                if member_class not in member_classes:
                    continue
                host_class = ctx.class_of(host)
                name = policy.sets.get((host_class, member_class)) if host_class else None
                if name is None:
                    continue
                summary = ctx.summary(member)
                before, after = (None, summary) if rel.action == "add" else (summary, None)
                emit(host, host_class, name, before, after, member, prov)
    return list(events.values())
