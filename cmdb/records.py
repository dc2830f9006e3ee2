"""Records: ITIL change records and incidents, linked to CIs and to the drift that caused them.

The shapes and the two state machines are declared here, once; `reconcile.records` decides what
drift does to them, the store keeps them (with an append-only event log that is also the webhook
outbox), and the API and CLI drive the transitions.

Change records move new -> assess -> authorize -> scheduled -> implement -> review -> closed, or to
cancelled from any open state. A standard change is pre-authorized (new -> scheduled); an emergency
change skips assessment (new -> authorize). A change is *approved* once it leaves authorize for
scheduled, and drift on one of its CIs inside its planned window is then authorized by it.

Incidents move new -> in_progress -> resolved -> closed (resolved may reopen to in_progress; a new
incident may be resolved at once). Priority is the ITIL matrix of impact and urgency, 1 (high)
to 3 (low) each: priority = impact + urgency - 1, so 1 is critical and 5 planning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ChangeType = Literal["standard", "normal", "emergency"]
ChangeState = Literal["new", "assess", "authorize", "scheduled", "implement", "review", "closed", "cancelled"]
IncidentState = Literal["new", "in_progress", "resolved", "closed"]
Verification = Literal["implemented_as_planned", "not_observed", "different_from_plan"]
Disposition = Literal["authorized", "incident", "unauthorized_change", "recorded"]

CHANGE_TYPES: tuple[str, ...] = ("standard", "normal", "emergency")
CHANGE_STATES: tuple[str, ...] = ("new", "assess", "authorize", "scheduled", "implement", "review",
                                  "closed", "cancelled")
CHANGE_OPEN_STATES = frozenset(CHANGE_STATES) - {"closed", "cancelled"}
# Drift inside the window of a change in one of these states is authorized by it.
CHANGE_APPROVED_STATES = frozenset({"scheduled", "implement"})
_CHANGE_FLOW: dict[str, tuple[str, ...]] = {
    "new": ("assess",), "assess": ("authorize",), "authorize": ("scheduled",),
    "scheduled": ("implement",), "implement": ("review",), "review": ("closed",),
}
# Per type, states whose way forward differs from the normal flow: a standard change is
# pre-authorized (it is scheduled at once); an emergency change may go straight to authorization.
_CHANGE_FLOW_BY_TYPE: dict[str, dict[str, tuple[str, ...]]] = {
    "standard": {"new": ("scheduled",)},
    "emergency": {"new": ("authorize", "assess")},
}

INCIDENT_STATES: tuple[str, ...] = ("new", "in_progress", "resolved", "closed")
INCIDENT_OPEN_STATES = frozenset({"new", "in_progress"})
_INCIDENT_FLOW: dict[str, tuple[str, ...]] = {
    "new": ("in_progress", "resolved"), "in_progress": ("resolved",), "resolved": ("closed", "in_progress"),
}
LEVELS: dict[str, int] = {"high": 1, "medium": 2, "low": 3}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}

_NUMBER = re.compile(r"^(CHG|INC)(\d{1,10})$")
MAX_TITLE = 200
MAX_TEXT = 8192


class RecordError(ValueError):
    """A request about a record that cannot be honoured: names the record, the rule, what to do."""

    def __init__(self, message: str, rule: str = "invalid"):
        super().__init__(message)
        self.rule = rule


class RecordNotFound(RecordError):
    def __init__(self, number: str):
        super().__init__(f"no record {number}", "not_found")


def change_number(seq: int) -> str:
    return f"CHG{seq:07d}"


def incident_number(seq: int) -> str:
    return f"INC{seq:07d}"


def parse_number(number: str) -> tuple[Literal["CHG", "INC"], int]:
    """("CHG", 12) from "CHG0000012" (any zero padding, any case); RecordError otherwise."""
    match = _NUMBER.match(number.strip().upper())
    if not match:
        raise RecordError(f"{number[:40]!r} is not a record number: changes are CHGnnnnnnn, incidents INCnnnnnnn",
                          "bad_number")
    return match.group(1), int(match.group(2))  # type: ignore[return-value]


def change_transitions(change_type: str, state: str) -> tuple[str, ...]:
    """The states a change of this type may move to from `state` (cancel from any open state)."""
    if state not in CHANGE_OPEN_STATES:
        return ()
    forward = _CHANGE_FLOW_BY_TYPE.get(change_type, {}).get(state) or _CHANGE_FLOW.get(state, ())
    return forward + ("cancelled",)


def check_change_transition(number: str, change_type: str, state: str, to: str) -> None:
    if to not in CHANGE_STATES:
        raise RecordError(f"unknown change state {to!r}; states: {', '.join(CHANGE_STATES)}", "bad_state")
    allowed = change_transitions(change_type, state)
    if to not in allowed:
        where = f"may go to {', '.join(allowed)}" if allowed else "is final"
        raise RecordError(f"{number} is a {change_type} change in state {state}: it {where}, not {to}",
                          "bad_transition")


def check_incident_transition(number: str, state: str, to: str) -> None:
    if to not in INCIDENT_STATES:
        raise RecordError(f"unknown incident state {to!r}; states: {', '.join(INCIDENT_STATES)}", "bad_state")
    allowed = _INCIDENT_FLOW.get(state, ())
    if to not in allowed:
        where = f"may go to {', '.join(allowed)}" if allowed else "is final"
        raise RecordError(f"{number} is {state}: it {where}, not {to}", "bad_transition")


def priority(impact: int, urgency: int) -> int:
    """ITIL's matrix: 1 critical, 2 high, 3 moderate, 4 low, 5 planning."""
    for name, value in (("impact", impact), ("urgency", urgency)):
        if value not in (1, 2, 3):
            raise RecordError(f"{name} must be 1 (high), 2 (medium) or 3 (low), not {value!r}", "bad_level")
    return impact + urgency - 1


def parse_level(name: str, value: Any) -> int:
    """1, 2, 3 or high/medium/low."""
    if isinstance(value, str) and value.strip().lower() in LEVELS:
        return LEVELS[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2, 3):
        return value
    raise RecordError(f"{name} must be high, medium or low (or 1, 2, 3), not {str(value)[:40]!r}", "bad_level")


@dataclass(frozen=True, slots=True)
class ExpectedOutcome:
    """What a change should leave behind: `attribute` (as a drift event names it: "memory_bytes",
    "os.version", or a set: "software") takes `value` exactly, or a value matching `pattern`
    (a regular expression, searched in the value's text)."""

    attribute: str
    value: Any = None
    pattern: str | None = None

    def matches(self, observed: Any) -> bool:
        if self.pattern is not None:
            return observed is not None and re.search(self.pattern, _text(observed)) is not None
        return observed == self.value or (observed is not None and _text(observed) == _text(self.value))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        else:
            out["value"] = self.value
        return out

    @classmethod
    def from_json(cls, data: Any) -> ExpectedOutcome:
        if not isinstance(data, dict) or not isinstance(data.get("attribute"), str) or not data["attribute"]:
            raise RecordError("an expected outcome is {\"attribute\": NAME, \"value\": V} or "
                              "{\"attribute\": NAME, \"pattern\": REGEX}", "bad_expected")
        unknown = set(data) - {"attribute", "value", "pattern"}
        if unknown:
            raise RecordError(f"expected outcome: unknown keys {sorted(unknown)}", "bad_expected")
        if ("value" in data) == ("pattern" in data):
            raise RecordError(f"expected outcome of {data['attribute']!r}: give exactly one of value or pattern",
                              "bad_expected")
        pattern = data.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or len(pattern) > 512:
                raise RecordError("expected outcome pattern: a regular expression of at most 512 characters",
                                  "bad_expected")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise RecordError(f"expected outcome pattern {pattern[:60]!r}: {exc}", "bad_expected") from None
        return cls(data["attribute"][:128], data.get("value"), pattern)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    number: str
    type: str
    state: str
    title: str
    description: str | None
    planned_start: datetime | None
    planned_end: datetime | None
    expected: tuple[ExpectedOutcome, ...]
    verification: str | None
    verified_at: datetime | None
    origin: str  # manual | drift (an unauthorized-change record opened by drift)
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    cis: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # drift ids (authorized by this change, or that opened it)
    drift_key: tuple[str, str] | None = None

    def window_contains(self, when: datetime) -> bool:
        return (self.planned_start is not None and self.planned_end is not None
                and self.planned_start <= when <= self.planned_end)


@dataclass(frozen=True, slots=True)
class Incident:
    number: str
    state: str
    title: str
    description: str | None
    impact: int
    urgency: int
    priority: int
    assignee: str | None
    resolution: str | None
    origin: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    cis: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()  # drift ids that caused it
    drift_key: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """One event of a record (created, transitioned, updated, drift_attached, verified): the
    records' audit trail, and what webhooks deliver (`event_id` is their idempotency key)."""

    seq: int
    record: str
    event: str
    actor: str
    data: dict[str, Any]
    at: datetime

    @property
    def event_id(self) -> str:
        return f"evt-{self.seq}"


@dataclass(frozen=True, slots=True)
class NewChange:
    type: str
    title: str
    created_by: str
    description: str | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    expected: tuple[ExpectedOutcome, ...] = ()
    cis: tuple[str, ...] = ()

    def check(self) -> None:
        if self.type not in CHANGE_TYPES:
            raise RecordError(f"unknown change type {self.type!r}; types: {', '.join(CHANGE_TYPES)}", "bad_type")
        _check_text("title", self.title, MAX_TITLE, required=True)
        _check_text("description", self.description, MAX_TEXT)
        check_window(self.planned_start, self.planned_end)
        if len(self.cis) > 10_000:
            raise RecordError("a change may name at most 10000 CIs", "too_many")


@dataclass(frozen=True, slots=True)
class NewIncident:
    title: str
    created_by: str
    impact: int = 2
    urgency: int = 2
    description: str | None = None
    cis: tuple[str, ...] = ()

    def check(self) -> None:
        _check_text("title", self.title, MAX_TITLE, required=True)
        _check_text("description", self.description, MAX_TEXT)
        priority(self.impact, self.urgency)
        if len(self.cis) > 10_000:
            raise RecordError("an incident may name at most 10000 CIs", "too_many")


def check_window(start: datetime | None, end: datetime | None) -> None:
    if (start is None) != (end is None):
        raise RecordError("a planned window needs both planned_start and planned_end", "bad_window")
    if start is not None and end is not None:
        if start.tzinfo is None or end.tzinfo is None:
            raise RecordError("planned_start and planned_end must carry a timezone", "bad_window")
        if end <= start:
            raise RecordError("planned_end must be after planned_start", "bad_window")


def _check_text(name: str, value: str | None, limit: int, required: bool = False) -> None:
    if value is None:
        if required:
            raise RecordError(f"{name} is required", "missing")
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecordError(f"{name} must be non-empty text", "bad_text")
    if len(value) > limit:
        raise RecordError(f"{name} is longer than {limit} characters", "too_long")


@dataclass(slots=True)
class DriftAction:
    """What reconcile decided for one drift event (reconcile.records), written by `apply` in the
    change set's transaction: `authorized` attaches it to `change` as evidence; `incident` and
    `unauthorized_change` attach it to the open record of its (CI, attribute), or open one with
    `title`, `impact`, `urgency`; `recorded` only stores the event."""

    drift_id: str
    disposition: Disposition
    change: str | None = None
    ci_id: str | None = None
    attribute: str | None = None
    title: str | None = None
    impact: int = 2
    urgency: int = 2
    cis: tuple[str, ...] = field(default_factory=tuple)
