"""The staleness reads of the SQLite store (reconcile.staleness): scopes, seen-by rows, CI states.

Each is a handful of statements per report whatever its size: one per scope, and chunked
`IN (...)` lists for sets of CIs. A row of `seen_by` with missed = 0 was last seen at its scope's
`last_run` (see sqlite_schema._V4), so the read puts that stamp in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from cmdb.backends.sqlite_schema import from_micros
from cmdb.store import Relationship, ScopeKey, ScopeState, SeenRecord

InChunks = Callable[[Iterable[str]], Iterator[tuple[str, list[str]]]]

_RECORD = ("SELECT s.source_kind, s.source_id, s.collector, s.subject, b.ci_id, b.rel_type, b.to_ci, b.missed, "
           "CASE WHEN b.missed = 0 THEN s.last_run ELSE b.last_seen_run END "
           "FROM seen_by b JOIN scope s ON s.id = b.scope_id ")


def _record(row: tuple, scopes: dict[tuple[str, ...], ScopeKey]) -> SeenRecord:
    kind, source_id, collector, subject, ci_id, rel_type, to_ci, missed, last = row
    scope = scopes.get(row[:4])
    if scope is None:
        scope = scopes[row[:4]] = ScopeKey(kind, source_id, collector, subject)
    return SeenRecord(scope, ci_id, rel_type, to_ci, missed, from_micros(last))


def scope_states(conn: sqlite3.Connection, source_kind: str, source_id: str,
                 wanted: Iterable[tuple[str, str]],
                 records_for: Iterable[str] | None = None) -> dict[tuple[str, str], ScopeState]:
    with_records = None if records_for is None else set(records_for)
    out: dict[tuple[str, str], ScopeState] = {}
    scopes: dict[tuple[str, ...], ScopeKey] = {}
    for collector, subject in dict.fromkeys(wanted):
        key = scopes[(source_kind, source_id, collector, subject)] = ScopeKey(source_kind, source_id, collector,
                                                                             subject)
        row = conn.execute("SELECT id, last_run FROM scope WHERE source_kind = ? AND source_id = ? "
                           "AND collector = ? AND subject = ?", (source_kind, source_id, collector, subject)).fetchone()
        if row is None:
            out[(collector, subject)] = ScopeState(key, None)
            continue
        records = [] if with_records is not None and collector not in with_records else [
            _record(r, scopes) for r in conn.execute(_RECORD + "WHERE b.scope_id = ?", (row[0],))]
        out[(collector, subject)] = ScopeState(key, from_micros(row[1]), records)
    return out


def seen_records(conn: sqlite3.Connection, ci_ids: Iterable[str], in_chunks: InChunks) -> list[SeenRecord]:
    scopes: dict[tuple[str, ...], ScopeKey] = {}
    out: dict[tuple, SeenRecord] = {}  # chunks are padded with repeats: keep each row once
    for marks, chunk in in_chunks(ci_ids):
        for row in conn.execute(_RECORD + f"WHERE b.ci_id IN ({marks})", chunk):
            out[row[:7]] = _record(row, scopes)
    return list(out.values())


def retired_among(conn: sqlite3.Connection, ci_ids: Iterable[str], in_chunks: InChunks) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for marks, chunk in in_chunks(ci_ids):
        out.update((ci_id, from_micros(last_seen)) for ci_id, last_seen in conn.execute(
            f"SELECT id, last_seen FROM ci WHERE id IN ({marks}) AND state = 'retired'", chunk))
    return out


def relationships_touching(conn: sqlite3.Connection, ci_ids: Iterable[str], in_chunks: InChunks,
                           columns: str, make: Callable[[tuple], Relationship]) -> list[Relationship]:
    found: dict[tuple[str, str, str], Relationship] = {}
    for marks, chunk in in_chunks(ci_ids):
        for end in ("from_ci", "to_ci"):
            for row in conn.execute(
                    f"SELECT {columns} FROM relationship WHERE {end} IN ({marks}) AND state = 'active'", chunk):
                rel = make(row)
                found.setdefault((rel.type, rel.from_ci, rel.to_ci), rel)
    return list(found.values())
