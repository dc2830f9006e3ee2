"""Change records and incidents on the SQLite store (cmdb.records), and the record event log that
is both their audit trail and the webhook outbox.

Every write that changes a record appends its `record_event` in the same transaction, so a
webhook is never announced for a change that rolled back, nor lost for one that committed.
Drift actions (reconcile.records) are applied inside `apply`'s transaction by `apply_drift_actions`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cmdb.backends.sqlite_schema import decode_json, encode_json, from_micros, to_micros
from cmdb.changes import DriftEvent
from cmdb.records import (
    CHANGE_APPROVED_STATES,
    ChangeRecord,
    DriftAction,
    ExpectedOutcome,
    Incident,
    NewChange,
    NewIncident,
    RecordError,
    RecordEvent,
    RecordNotFound,
    change_number,
    check_change_transition,
    check_incident_transition,
    check_window,
    incident_number,
    parse_number,
    priority,
)

_CHANGE_COLUMNS = ("seq, type, state, title, description, planned_start, planned_end, expected, verification, "
                   "verified_at, origin, created_by, created_at, updated_at, approved_by, approved_at, "
                   "drift_ci, drift_attribute")
_INCIDENT_COLUMNS = ("seq, state, title, description, impact, urgency, priority, assignee, resolution, origin, "
                     "created_by, created_at, updated_at, resolved_at, closed_at, drift_ci, drift_attribute")
_BATCH = 500


def _time(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _BATCH):
        yield values[start:start + _BATCH]


def add_event(conn: sqlite3.Connection, record: str, event: str, actor: str, data: dict[str, Any],
              at: datetime) -> None:
    conn.execute("INSERT INTO record_event (record, event, actor, data, at) VALUES (?, ?, ?, ?, ?)",
                 (record, event, actor, encode_json(data), to_micros(at)))


def _links(conn: sqlite3.Connection, number: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cis = tuple(r[0] for r in conn.execute("SELECT ci_id FROM record_ci WHERE record = ? ORDER BY ci_id", (number,)))
    drift = tuple(r[0] for r in conn.execute(
        "SELECT d.id FROM record_drift r JOIN drift d ON d.id = r.drift_id WHERE r.record = ? ORDER BY d.seq",
        (number,)))
    return cis, drift


def _change(conn: sqlite3.Connection, row: tuple) -> ChangeRecord:
    number = change_number(row[0])
    cis, evidence = _links(conn, number)
    expected = tuple(ExpectedOutcome.from_json(e) for e in decode_json(row[7]) or ())
    return ChangeRecord(number, row[1], row[2], row[3], row[4], _time(row[5]), _time(row[6]), expected, row[8],
                        _time(row[9]), row[10], row[11], from_micros(row[12]), from_micros(row[13]), row[14],
                        _time(row[15]), cis, evidence, (row[16], row[17]) if row[16] else None)


def _incident(conn: sqlite3.Connection, row: tuple) -> Incident:
    number = incident_number(row[0])
    cis, drift = _links(conn, number)
    return Incident(number, row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                    from_micros(row[11]), from_micros(row[12]), _time(row[13]), _time(row[14]), cis, drift,
                    (row[15], row[16]) if row[15] else None)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What differs between the two record tables, so reads are written once."""

    table: str
    prefix: str
    columns: str
    decode: Callable[[sqlite3.Connection, tuple], Any]
    number: Callable[[int], str]
    open_sql: str


_CHANGES = _Kind("change_record", "CHG", _CHANGE_COLUMNS, _change, change_number,
                 "state <> 'closed' AND state <> 'cancelled'")
_INCIDENTS = _Kind("incident", "INC", _INCIDENT_COLUMNS, _incident, incident_number,
                   "(state = 'new' OR state = 'in_progress')")


def _fetch(conn: sqlite3.Connection, kind: _Kind, seq: int) -> Any:
    row = conn.execute(f"SELECT {kind.columns} FROM {kind.table} WHERE seq = ?", (seq,)).fetchone()
    if row is None:
        raise RecordNotFound(kind.number(seq))
    return kind.decode(conn, row)


def _lookup(conn: sqlite3.Connection, kind: _Kind, number: str) -> Any:
    try:
        return _fetch(conn, kind, _seq_of(number, kind.prefix))
    except RecordNotFound:
        return None


def _list(conn: sqlite3.Connection, kind: _Kind, state: str | None, ci_id: str | None, open_only: bool,
          limit: int) -> list[Any]:
    where: list[str] = []
    params: list[Any] = []
    if state is not None:
        where.append("state = ?")
        params.append(state)
    if open_only:
        where.append(kind.open_sql)
    if ci_id is not None:
        where.append(f"'{kind.prefix}' || printf('%07d', seq) IN (SELECT record FROM record_ci WHERE ci_id = ?)")
        params.append(ci_id)
    sql = f"SELECT {kind.columns} FROM {kind.table}" + (" WHERE " + " AND ".join(where) if where else "")
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall()
    return [kind.decode(conn, r) for r in rows]


def _seq_of(number: str, prefix: str) -> int:
    kind, seq = parse_number(number)
    if kind != prefix:
        what = "a change (CHG...)" if prefix == "CHG" else "an incident (INC...)"
        raise RecordError(f"{number} is not {what}", "bad_number")
    return seq


def _check_cis(conn: sqlite3.Connection, ci_ids: Iterable[str]) -> list[str]:
    wanted = sorted(set(ci_ids))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in conn.execute(f"SELECT id FROM ci WHERE id IN ({marks})", chunk))
    missing = [c for c in wanted if c not in found]
    if missing:
        raise RecordError(f"unknown CI {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                          "unknown_ci")
    return wanted


def _link_cis(conn: sqlite3.Connection, number: str, ci_ids: Iterable[str]) -> int:
    return conn.executemany("INSERT INTO record_ci (record, ci_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            [(number, c) for c in ci_ids]).rowcount


def apply_drift_actions(conn: sqlite3.Connection, actions: Iterable[DriftAction], events: list[DriftEvent],
                        now: datetime) -> None:
    """Inside `apply`: link each drift event to its change, or to the open record of its (CI,
    attribute) (opening one if there is none: the partial unique indexes keep it one), and stamp
    the event's disposition."""
    by_id = {e.drift_id: e for e in events}
    now_us = to_micros(now)
    for action in actions:
        event = by_id.get(action.drift_id)
        if event is None:
            continue
        number: str | None = None
        summary = {"drift_id": event.drift_id, "ci_id": event.ci_id, "attribute": event.attribute,
                   "before": event.before, "after": event.after, "source": event.provenance.source_kind}
        if action.disposition == "authorized" and action.change:
            number = action.change
            if _link_drift(conn, number, event.drift_id, "evidence"):
                add_event(conn, number, "evidence_attached", "reconcile", summary, now)
        elif action.disposition in ("incident", "unauthorized_change"):
            number = _open_drift_record(conn, action, event, now_us, now, summary)
        conn.execute("UPDATE drift SET disposition = ?, record = ? WHERE id = ?",
                     (action.disposition, number, event.drift_id))


def _link_drift(conn: sqlite3.Connection, number: str, drift_id: str, role: str) -> bool:
    return conn.execute("INSERT INTO record_drift (record, drift_id, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (number, drift_id, role)).rowcount == 1


def _open_drift_record(conn: sqlite3.Connection, action: DriftAction, event: DriftEvent, now_us: int,
                       now: datetime, summary: dict[str, Any]) -> str:
    ci_id, attribute = action.ci_id or event.ci_id, action.attribute or event.attribute
    if action.disposition == "incident":
        row = conn.execute("SELECT seq FROM incident WHERE drift_ci = ? AND drift_attribute = ? "
                           "AND (state = 'new' OR state = 'in_progress')", (ci_id, attribute)).fetchone()
        if row is None:
            seq = conn.execute(
                "INSERT INTO incident (state, title, impact, urgency, priority, origin, drift_ci, drift_attribute, "
                "created_by, created_at, updated_at) VALUES ('new', ?, ?, ?, ?, 'drift', ?, ?, 'reconcile', ?, ?)",
                (action.title or f"unexpected change of {attribute}", action.impact, action.urgency,
                 priority(action.impact, action.urgency), ci_id, attribute, now_us, now_us)).lastrowid
            number = incident_number(seq)
            _link_cis(conn, number, (ci_id, *action.cis))
            add_event(conn, number, "opened", "reconcile",
                      {"kind": "incident", "title": action.title, "impact": action.impact,
                       "urgency": action.urgency, "priority": priority(action.impact, action.urgency),
                       "cis": sorted({ci_id, *action.cis}), "drift": summary}, now)
        else:
            number = incident_number(row[0])
            conn.execute("UPDATE incident SET updated_at = ? WHERE seq = ?", (now_us, row[0]))
            _link_cis(conn, number, action.cis)
            add_event(conn, number, "drift_attached", "reconcile", summary, now)
    else:
        row = conn.execute("SELECT seq FROM change_record WHERE drift_ci = ? AND drift_attribute = ? "
                           "AND state <> 'closed' AND state <> 'cancelled'", (ci_id, attribute)).fetchone()
        if row is None:
            seq = conn.execute(
                "INSERT INTO change_record (type, state, title, origin, drift_ci, drift_attribute, created_by, "
                "created_at, updated_at) VALUES ('emergency', 'review', ?, 'drift', ?, ?, 'reconcile', ?, ?)",
                (action.title or f"unauthorized change of {attribute}", ci_id, attribute, now_us, now_us)).lastrowid
            number = change_number(seq)
            _link_cis(conn, number, (ci_id, *action.cis))
            add_event(conn, number, "opened", "reconcile",
                      {"kind": "unauthorized_change", "title": action.title, "cis": sorted({ci_id, *action.cis}),
                       "drift": summary}, now)
        else:
            number = change_number(row[0])
            conn.execute("UPDATE change_record SET updated_at = ? WHERE seq = ?", (now_us, row[0]))
            _link_cis(conn, number, action.cis)
            add_event(conn, number, "drift_attached", "reconcile", summary, now)
    _link_drift(conn, number, event.drift_id, "cause")
    return number


class RecordStore:
    """The record half of the Store contract for SQLiteStore (a mixin)."""

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- changes ------------------------------------------------------------------------------
    def create_change(self, new: NewChange, now: datetime | None = None) -> ChangeRecord:
        new.check()
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            cis = _check_cis(conn, new.cis)
            now_us = to_micros(now)
            seq = conn.execute(
                "INSERT INTO change_record (type, state, title, description, planned_start, planned_end, expected, "
                "origin, created_by, created_at, updated_at) VALUES (?, 'new', ?, ?, ?, ?, ?, 'manual', ?, ?, ?)",
                (new.type, new.title.strip(), new.description, _micros(new.planned_start), _micros(new.planned_end),
                 encode_json([e.to_json() for e in new.expected]) if new.expected else None, new.created_by,
                 now_us, now_us)).lastrowid
            number = change_number(seq)
            _link_cis(conn, number, cis)
            add_event(conn, number, "created", new.created_by,
                      {"type": new.type, "title": new.title.strip(), "cis": cis,
                       "planned_start": new.planned_start.isoformat() if new.planned_start else None,
                       "planned_end": new.planned_end.isoformat() if new.planned_end else None,
                       "expected": [e.to_json() for e in new.expected]}, now)
            return self._get_change(conn, seq)

    def _get_change(self, conn: sqlite3.Connection, seq: int) -> ChangeRecord:
        return _fetch(conn, _CHANGES, seq)

    def get_change(self, number: str) -> ChangeRecord | None:
        return _lookup(self._reader(), _CHANGES, number)

    def list_changes(self, state: str | None = None, ci_id: str | None = None, open_only: bool = False,
                     limit: int = 100) -> list[ChangeRecord]:
        return _list(self._reader(), _CHANGES, state, ci_id, open_only, limit)

    def transition_change(self, number: str, to: str, actor: str, note: str | None = None,
                          now: datetime | None = None) -> ChangeRecord:
        seq = _seq_of(number, "CHG")
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            change = self._get_change(conn, seq)
            check_change_transition(change.number, change.type, change.state, to)
            if to in CHANGE_APPROVED_STATES and change.origin == "manual" and change.planned_start is None:
                raise RecordError(f"{change.number} has no planned window: set planned_start and planned_end "
                                  "before scheduling it (drift is authorized only inside the window)", "no_window")
            approving = to == "scheduled"
            conn.execute("UPDATE change_record SET state = ?, updated_at = ?, approved_by = COALESCE(?, approved_by), "
                         "approved_at = COALESCE(?, approved_at) WHERE seq = ?",
                         (to, to_micros(now), actor if approving else None, to_micros(now) if approving else None,
                          seq))
            add_event(conn, change.number, "transitioned", actor,
                      {"from": change.state, "to": to, "note": note, "approved": approving}, now)
            return self._get_change(conn, seq)

    def update_change(self, number: str, actor: str, now: datetime | None = None, *,
                      planned_start: datetime | None = None, planned_end: datetime | None = None,
                      add_cis: Iterable[str] = (), expected: tuple[ExpectedOutcome, ...] | None = None
                      ) -> ChangeRecord:
        """Plan a change: its window, CIs and expected outcome, while it is not yet approved."""
        seq = _seq_of(number, "CHG")
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            change = self._get_change(conn, seq)
            if change.state not in ("new", "assess", "authorize"):
                raise RecordError(f"{change.number} is {change.state}: its plan can change only before it is "
                                  "approved (new, assess, authorize)", "bad_state")
            start = planned_start if planned_start is not None else change.planned_start
            end = planned_end if planned_end is not None else change.planned_end
            check_window(start, end)
            cis = _check_cis(conn, add_cis)
            conn.execute("UPDATE change_record SET planned_start = ?, planned_end = ?, expected = ?, updated_at = ? "
                         "WHERE seq = ?",
                         (_micros(start), _micros(end),
                          encode_json([e.to_json() for e in (expected if expected is not None else change.expected)])
                          if (expected or change.expected) else None, to_micros(now), seq))
            _link_cis(conn, change.number, cis)
            add_event(conn, change.number, "updated", actor,
                      {"planned_start": start.isoformat() if start else None,
                       "planned_end": end.isoformat() if end else None, "added_cis": cis,
                       "expected": [e.to_json() for e in expected] if expected is not None else None}, now)
            return self._get_change(conn, seq)

    def approved_changes_for(self, ci_ids: Iterable[str], at: datetime) -> list[ChangeRecord]:
        """Approved changes (scheduled or implementing) naming one of these CIs whose planned window
        contains `at`."""
        conn = self._reader()
        wanted = sorted(set(ci_ids))
        seqs: set[int] = set()
        at_us = to_micros(at)
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            seqs.update(r[0] for r in conn.execute(
                f"SELECT DISTINCT c.seq FROM record_ci r JOIN change_record c ON r.record = "
                f"'CHG' || printf('%07d', c.seq) WHERE r.ci_id IN ({marks}) AND r.record LIKE 'CHG%' "
                "AND (c.state = 'scheduled' OR c.state = 'implement') AND c.planned_start <= ? "
                "AND c.planned_end >= ?", (*chunk, at_us, at_us)))
        return [self._get_change(conn, s) for s in sorted(seqs)]

    def changes_due_for_verification(self, now: datetime) -> list[ChangeRecord]:
        conn = self._reader()
        rows = conn.execute(f"SELECT {_CHANGE_COLUMNS} FROM change_record WHERE verification IS NULL "
                            "AND origin = 'manual' AND (state = 'scheduled' OR state = 'implement' OR state = 'review') "
                            "AND planned_end < ? ORDER BY seq", (to_micros(now),)).fetchall()
        return [_change(conn, r) for r in rows]

    def record_verification(self, number: str, verification: str, detail: dict[str, Any],
                            now: datetime | None = None) -> ChangeRecord:
        seq = _seq_of(number, "CHG")
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            done = conn.execute("UPDATE change_record SET verification = ?, verified_at = ?, updated_at = ? "
                                "WHERE seq = ? AND verification IS NULL",
                                (verification, to_micros(now), to_micros(now), seq)).rowcount
            if done:
                add_event(conn, change_number(seq), "verified", "reconcile",
                          {"verification": verification, **detail}, now)
            return self._get_change(conn, seq)

    # -- incidents -----------------------------------------------------------------------------
    def create_incident(self, new: NewIncident, now: datetime | None = None) -> Incident:
        new.check()
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            cis = _check_cis(conn, new.cis)
            now_us = to_micros(now)
            seq = conn.execute(
                "INSERT INTO incident (state, title, description, impact, urgency, priority, origin, created_by, "
                "created_at, updated_at) VALUES ('new', ?, ?, ?, ?, ?, 'manual', ?, ?, ?)",
                (new.title.strip(), new.description, new.impact, new.urgency, priority(new.impact, new.urgency),
                 new.created_by, now_us, now_us)).lastrowid
            number = incident_number(seq)
            _link_cis(conn, number, cis)
            add_event(conn, number, "opened", new.created_by,
                      {"kind": "incident", "title": new.title.strip(), "impact": new.impact,
                       "urgency": new.urgency, "priority": priority(new.impact, new.urgency), "cis": cis}, now)
            return self._get_incident(conn, seq)

    def _get_incident(self, conn: sqlite3.Connection, seq: int) -> Incident:
        return _fetch(conn, _INCIDENTS, seq)

    def get_incident(self, number: str) -> Incident | None:
        return _lookup(self._reader(), _INCIDENTS, number)

    def list_incidents(self, state: str | None = None, ci_id: str | None = None, open_only: bool = False,
                       limit: int = 100) -> list[Incident]:
        return _list(self._reader(), _INCIDENTS, state, ci_id, open_only, limit)

    def count_open_incidents(self) -> int:
        return self._reader().execute(
            "SELECT count(*) FROM incident WHERE state = 'new' OR state = 'in_progress'").fetchone()[0]

    def update_incident(self, number: str, actor: str, now: datetime | None = None, *, state: str | None = None,
                        impact: int | None = None, urgency: int | None = None, assignee: str | None = None,
                        resolution: str | None = None, note: str | None = None) -> Incident:
        seq = _seq_of(number, "INC")
        now = now or datetime.now(UTC)
        with self._transaction() as conn:
            incident = self._get_incident(conn, seq)
            changes: dict[str, Any] = {}
            if state is not None and state != incident.state:
                check_incident_transition(incident.number, incident.state, state)
                if state == "resolved" and not (resolution or incident.resolution):
                    raise RecordError(f"resolving {incident.number} needs a resolution (what was done)",
                                      "missing_resolution")
                changes["state"] = state
            new_impact = impact if impact is not None else incident.impact
            new_urgency = urgency if urgency is not None else incident.urgency
            if (new_impact, new_urgency) != (incident.impact, incident.urgency):
                changes.update(impact=new_impact, urgency=new_urgency, priority=priority(new_impact, new_urgency))
            if assignee is not None and assignee != incident.assignee:
                changes["assignee"] = assignee[:128]
            if resolution is not None and resolution != incident.resolution:
                changes["resolution"] = resolution[:8192]
            if not changes and note is None:
                return incident
            now_us = to_micros(now)
            stamps = {"resolved": "resolved_at", "closed": "closed_at"}
            if changes.get("state") in stamps:
                changes[stamps[changes["state"]]] = now_us
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(f"UPDATE incident SET {sets}, updated_at = ? WHERE seq = ?",
                             (*changes.values(), now_us, seq))
            data = {k: v for k, v in changes.items() if not k.endswith("_at")}
            if "state" in data:
                data["from"] = incident.state
            add_event(conn, incident.number, "transitioned" if "state" in changes else "updated", actor,
                      {**data, "note": note}, now)
            return self._get_incident(conn, seq)

    # -- events and webhook cursors --------------------------------------------------------------
    def record_events(self, after_seq: int = 0, limit: int = 100, record: str | None = None) -> list[RecordEvent]:
        conn = self._reader()
        if record is not None:
            rows = conn.execute("SELECT seq, record, event, actor, data, at FROM record_event WHERE record = ? "
                                "AND seq > ? ORDER BY seq LIMIT ?", (record, after_seq, limit))
        else:
            rows = conn.execute("SELECT seq, record, event, actor, data, at FROM record_event WHERE seq > ? "
                                "ORDER BY seq LIMIT ?", (after_seq, limit))
        return [RecordEvent(r[0], r[1], r[2], r[3], decode_json(r[4]), from_micros(r[5])) for r in rows]

    def webhook_state(self, url: str) -> tuple[int, int, int, str | None, int]:
        """(delivered_seq, attempts, next_attempt_at micros, last_error, dead_letters) of an endpoint;
        a new endpoint starts after the events already stored (it is not sent the past)."""
        with self._transaction() as conn:
            row = conn.execute("SELECT delivered_seq, attempts, next_attempt_at, last_error, dead_letters "
                               "FROM webhook_endpoint WHERE url = ?", (url,)).fetchone()
            if row is None:
                last = conn.execute("SELECT COALESCE(max(seq), 0) FROM record_event").fetchone()[0]
                conn.execute("INSERT INTO webhook_endpoint (url, delivered_seq) VALUES (?, ?)", (url, last))
                return last, 0, 0, None, 0
            return row[0], row[1], row[2], row[3], row[4]

    def webhook_delivered(self, url: str, seq: int, dead: bool = False) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE webhook_endpoint SET delivered_seq = max(delivered_seq, ?), attempts = 0, "
                         "next_attempt_at = 0, dead_letters = dead_letters + ? WHERE url = ?",
                         (seq, 1 if dead else 0, url))

    def webhook_failed(self, url: str, error: str, next_attempt_at: datetime) -> int:
        with self._transaction() as conn:
            row = conn.execute("UPDATE webhook_endpoint SET attempts = attempts + 1, next_attempt_at = ?, "
                               "last_error = ? WHERE url = ? RETURNING attempts",
                               (to_micros(next_attempt_at), error[:500], url)).fetchone()
            return row[0] if row else 0

