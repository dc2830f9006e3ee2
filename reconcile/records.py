"""What drift does to records, and how a change is verified when its window closes.

For each drift event of a change set (reconcile.drift):

1. **Authorized**: one of its CIs (the CI that changed, or its related CI: the host of a package)
   is named by an approved change (scheduled or implementing) whose planned window contains the
   time the drift was observed. The event is attached to that change as evidence.
2. Otherwise the **response policy** (`[reconcile] drift_response`) says what unmatched drift of
   that class and attribute does: open an `incident`, open an `unauthorized_change` record, or
   only `record` the event. Entries are "SELECTOR=RESPONSE", the most specific selector winning:

       "Computer.serial=incident:high"            one attribute (urgency high, medium or low)
       "Computer:SoftwareInstall=unauthorized_change"   a tracked set
       "Computer.*=incident"                      any attribute or set of a class
       "*=incident"                               everything else

   A record opened by drift is keyed by (CI, attribute): while it is open, further drift of the
   same CI and attribute is appended to it instead of opening another (deduplication).

An incident's impact comes from the graph: high when a business service is impacted if the CI
fails, medium when another host is, low otherwise; its urgency from the policy entry.

`verify_change` compares a change whose window has closed with its expected outcome, from the
drift it collected as evidence: implemented_as_planned, different_from_plan, or not_observed.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb.changes import DriftEvent
from cmdb.config import DEFAULT_DRIFT_RESPONSE
from cmdb.model import CI_CLASSES, REL_TYPES
from cmdb.records import LEVELS, ChangeRecord, DriftAction
from cmdb.store import Store
from reconcile.drift import set_name

RESPONSES = ("incident", "unauthorized_change", "record")
_SELECTOR = re.compile(r"^(?:\*|[A-Z][A-Za-z]*(?:\.\*|\.[a-z][a-z0-9_.]*|:[A-Z][A-Za-z]*)?)$")
_IMPACT_HOSTS = frozenset(name for name, c in CI_CLASSES.items() if not c.is_dependent)
_MAX_IMPACT_WALK = 500


@dataclass(frozen=True, slots=True)
class Response:
    action: str  # incident | unauthorized_change | record
    urgency: int = 2


@dataclass(frozen=True, slots=True)
class DriftResponsePolicy:
    """Selector -> response; `lookup(class, attribute)` picks the most specific."""

    exact: Mapping[tuple[str, str], Response] = field(default_factory=dict)
    by_class: Mapping[str, Response] = field(default_factory=dict)
    default: Response = Response("incident")

    @classmethod
    def from_config(cls, entries: Iterable[str]) -> DriftResponsePolicy:
        exact: dict[tuple[str, str], Response] = {}
        by_class: dict[str, Response] = {}
        default = Response("record")
        for raw in entries:
            selector, sep, answer = (p.strip() for p in raw.partition("="))
            if not sep or not _SELECTOR.match(selector):
                raise ValueError(f"reconcile.drift_response entry {raw!r}: expected SELECTOR=RESPONSE, the "
                                 "selector \"Class.attribute\", \"HostClass:MemberClass\", \"Class.*\" or \"*\"")
            action, _, urgency = (p.strip() for p in answer.partition(":"))
            if action not in RESPONSES:
                raise ValueError(f"reconcile.drift_response entry {raw!r}: response {action!r} is not one of "
                                 f"{', '.join(RESPONSES)}")
            if urgency and urgency not in LEVELS:
                raise ValueError(f"reconcile.drift_response entry {raw!r}: urgency {urgency!r} is not high, "
                                 "medium or low")
            response = Response(action, LEVELS[urgency] if urgency else 2)
            if selector == "*":
                default = response
                continue
            ci_class = re.split(r"[.:]", selector, maxsplit=1)[0]
            if ci_class not in CI_CLASSES:
                raise ValueError(f"reconcile.drift_response entry {raw!r}: unknown class {ci_class!r}")
            if selector.endswith(".*"):
                by_class[ci_class] = response
            elif ":" in selector:
                member = selector.partition(":")[2]
                if member not in CI_CLASSES:
                    raise ValueError(f"reconcile.drift_response entry {raw!r}: unknown class {member!r}")
                exact[(ci_class, set_name(member))] = response
            else:
                exact[(ci_class, selector.partition(".")[2])] = response
        return cls(exact, by_class, default)

    def lookup(self, ci_class: str, attribute: str) -> Response:
        return self.exact.get((ci_class, attribute)) or self.by_class.get(ci_class) or self.default


DEFAULT_RESPONSE_POLICY = DriftResponsePolicy.from_config(DEFAULT_DRIFT_RESPONSE)


def decide_drift_actions(events: list[DriftEvent], store: Store,
                         policy: DriftResponsePolicy = DEFAULT_RESPONSE_POLICY) -> list[DriftAction]:
    """One DriftAction per event (reads the store: approved changes, labels, impact)."""
    if not events:
        return []
    approved = _approved_changes(events, store)
    impacts: dict[str, int] = {}
    labels = _labels(store, {e.ci_id for e in events})
    actions: list[DriftAction] = []
    for event in events:
        ci_ids = {event.ci_id} | ({event.related_ci} if event.related_ci else set())
        change = next((c for c in approved.get(event.provenance.observed_at, ())
                       if ci_ids & set(c.cis)), None)
        if change is not None:
            actions.append(DriftAction(event.drift_id, "authorized", change=change.number))
            continue
        response = policy.lookup(event.ci_class, event.attribute)
        if response.action == "record":
            actions.append(DriftAction(event.drift_id, "recorded"))
            continue
        if event.ci_id not in impacts:
            impacts[event.ci_id] = impact_of(store, event.ci_id)
        label = labels.get(event.ci_id) or f"{event.ci_class} {event.ci_id[:12]}"
        verb = "unauthorized change" if response.action == "unauthorized_change" else "unexpected change"
        actions.append(DriftAction(event.drift_id, response.action,  # type: ignore[arg-type]
                                   ci_id=event.ci_id, attribute=event.attribute,
                                   title=f"{verb} of {event.attribute} on {label}"[:200],
                                   impact=impacts[event.ci_id], urgency=response.urgency,
                                   cis=(event.related_ci,) if event.related_ci else ()))
    return actions


def _approved_changes(events: list[DriftEvent], store: Store) -> dict[datetime, list[ChangeRecord]]:
    by_time: dict[datetime, set[str]] = {}
    for e in events:
        by_time.setdefault(e.provenance.observed_at, set()).update(
            c for c in (e.ci_id, e.related_ci) if c is not None)
    return {at: store.approved_changes_for(ci_ids, at) for at, ci_ids in by_time.items()}


def _labels(store: Store, ci_ids: set[str]) -> dict[str, str]:
    current = store.current_attributes(ci_ids)
    out: dict[str, str] = {}
    for ci_id, attrs in current.items():
        for name in ("fqdn", "hostname", "sysname", "name", "package"):
            if isinstance(attrs.get(name), str):
                out[ci_id] = attrs[name]
                break
    return out


def impact_of(store: Store, ci_id: str) -> int:
    """1 (high) if a BusinessService is impacted when this CI fails, 2 (medium) if another host
    is (a VM it hosts, a CI depending on it), 3 (low) otherwise. A bounded walk of the
    relationships by the model's impact rules (cmdb.graph.impacted_by does the same on networkx)."""
    seen = {ci_id}
    queue = deque([ci_id])
    other_host = False
    while queue and len(seen) < _MAX_IMPACT_WALK:
        current = queue.popleft()
        for rel in store.relationships(current, "both"):
            if rel.state != "active":
                continue
            rule = REL_TYPES.get(rel.type)
            impact = rule.impact if rule else "none"
            if rel.from_ci == current and impact in ("from_to", "both"):
                nxt = rel.to_ci
            elif rel.to_ci == current and impact in ("to_from", "both"):
                nxt = rel.from_ci
            else:
                continue
            if nxt in seen:
                continue
            seen.add(nxt)
            ci = store.get_ci(nxt)
            if ci is None or ci.state != "active":
                continue
            if ci.ci_class == "BusinessService":
                return 1
            if ci.ci_class in _IMPACT_HOSTS:
                other_host = True
            queue.append(nxt)
    return 2 if other_host else 3


@dataclass(frozen=True, slots=True)
class Verification:
    result: str  # implemented_as_planned | different_from_plan | not_observed
    detail: dict[str, Any]


def verify_change(change: ChangeRecord, evidence: list[DriftEvent]) -> Verification:
    """Compare a change whose window has closed with what was observed in it."""
    observed = [{"attribute": e.attribute, "ci_id": e.ci_id, "after": e.after} for e in evidence]
    if not change.expected:
        result = "implemented_as_planned" if evidence else "not_observed"
        return Verification(result, {"evidence": len(evidence), "observed": observed[:50]})
    outcomes: list[dict[str, Any]] = []
    for expected in change.expected:
        seen = [e for e in evidence if e.attribute == expected.attribute]
        if any(expected.matches(e.after) for e in seen):
            state = "as_planned"
        elif seen:
            state = "different"
        else:
            state = "not_observed"
        outcomes.append({**expected.to_json(), "result": state, "observed": [e.after for e in seen][:10]})
    states = {o["result"] for o in outcomes}
    if states == {"as_planned"}:
        result = "implemented_as_planned"
    elif "different" in states or ("as_planned" in states and "not_observed" in states):
        result = "different_from_plan"
    else:
        result = "not_observed"
    return Verification(result, {"evidence": len(evidence), "outcomes": outcomes})


def verify_due_changes(store: Store, now: datetime) -> list[ChangeRecord]:
    """Verify every approved change whose window closed before `now`; the changes verified."""
    done: list[ChangeRecord] = []
    for change in store.changes_due_for_verification(now):
        evidence: dict[str, DriftEvent] = {}  # the change's evidence, once each (a CI's and its host's)
        wanted = set(change.evidence)
        for ci_id in change.cis:
            for e in store.drift_events(ci_id, change.planned_start, change.planned_end, limit=10_000):
                if e.drift_id in wanted:
                    evidence.setdefault(e.drift_id, e)
        events = list(evidence.values())
        verdict = verify_change(change, events)
        done.append(store.record_verification(change.number, verdict.result, verdict.detail, now))
    return done
