"""Drift events (reconcile.drift) in SQLiteStore: written inside `apply`'s transaction, read by
CI and time. A CI's events are those where it is the CI that changed or the related CI (the host
of a changed package, the member of a changed set), the way `history` shows relation changes."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Iterable

from cmdb.backends.sqlite_schema import decode_json, encode_json, from_micros, to_micros
from cmdb.changes import DriftEvent, Provenance

_INSERT = ("INSERT INTO drift (id, ci_id, class, attribute, before, after, related_ci, source_kind, "
           "source_id, report_id, observed_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (id) DO NOTHING")
_COLUMNS = ("id, ci_id, class, attribute, before, after, related_ci, source_kind, source_id, report_id, "
            "observed_at, recorded_at, disposition, record")


def _encode(value: Any) -> str | None:
    return None if value is None else encode_json(value)


def write_drift(conn: sqlite3.Connection, events: Iterable[DriftEvent], recorded: int) -> int:
    """Insert the events (an id already stored is skipped); the number written."""
    rows = [(e.drift_id, e.ci_id, e.ci_class, e.attribute, _encode(e.before), _encode(e.after), e.related_ci,
             e.provenance.source_kind, e.provenance.source_id, e.provenance.report_id,
             to_micros(e.provenance.observed_at), recorded) for e in events]
    return conn.executemany(_INSERT, rows).rowcount if rows else 0


class DriftReads:
    """`Store.drift_events` for SQLiteStore (a mixin: the store's file is long enough already)."""

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def drift_events(self, ci_id: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 1000) -> list[DriftEvent]:
        return drift_events(self._reader(), ci_id, since, until, limit)


def drift_events(conn: sqlite3.Connection, ci_id: str | None, since: datetime | None,
                 until: datetime | None, limit: int) -> list[DriftEvent]:
    """Oldest first (observed time, then write order); since/until bound observed_at, inclusive."""
    where: list[str] = []
    params: list[Any] = []
    if ci_id is not None:
        where.append("(ci_id = ? OR related_ci = ?)")
        params += [ci_id, ci_id]
    if since is not None:
        where.append("observed_at >= ?")
        params.append(to_micros(since))
    if until is not None:
        where.append("observed_at <= ?")
        params.append(to_micros(until))
    sql = f"SELECT {_COLUMNS} FROM drift"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY observed_at, seq LIMIT ?"
    params.append(limit)
    return [DriftEvent(r[0], r[1], r[2], r[3], decode_json(r[4]), decode_json(r[5]), r[6],
                       Provenance(r[7], r[8], r[9], from_micros(r[10])), from_micros(r[11]), r[12], r[13])
            for r in conn.execute(sql, params)]
