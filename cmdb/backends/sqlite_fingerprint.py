"""The reconcile fast path on the SQLite store (reconcile.fastpath, cmdb.fingerprints): the reads
(a mixin of SQLiteStore) and the writes `write_change_set` makes inside its transaction.

Table `fingerprint` (sqlite_schema._V10): one row per (source, item ref), see cmdb.fingerprints for
what a row promises. A row is written only from a change set that computed it (ChangeSet.
fingerprints); every write that could break its promise drops it, here:

- a change set that changes a CI's attributes, measurements, observations or state (retire,
  reactivate) drops every source's row of that CI (`before_changes`);
- a CI operation (merge, split, undo) must call `forget_fingerprints` with the CIs it touches,
  before it moves anything; as a safety net for an operation that does not, a row is also ignored
  when an operation recorded after it was written, and after the last `forget_fingerprints`
  (`fingerprint_source.op_floor`), names its CI or its host (`ci_operation.moved.cis`).

A row's stamp (when its source last confirmed the CI as a whole) is its own, or while it is
`grouped`, its source's stamp in `fingerprint_source`. A report that confirms what the group
holds moves that one stamp: its cost is the rows that join or leave the group (frozen at the
group's stamp), not the rows confirmed; when that is more than the confirmed rows (a delta
confirming a few items) they are stamped one by one instead. Dropping a row first *materializes*
its stamp: the values of its CI from its source get the stamp's report id and time
(`observed_at` moves forward only), so nothing is lost of when the source last stated them.
`scope.statement_digest` (the staleness half) is cleared on a scope that saw something retiring,
and on every scope by `forget_fingerprints`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import msgspec

from cmdb.backends.sqlite_schema import from_micros, json_decode, to_micros
from cmdb.changes import ChangeSet
from cmdb.fingerprints import Confirmation, RelationKey, Scope, StoredFingerprint

_json = msgspec.json.Encoder()


def json_list(values: Iterable[Any]) -> str:
    """One JSON array parameter for `json_each`: a set of any size in one statement, no chunks."""
    return _json.encode(list(values)).decode()


# A row's stamp: its source's while it is grouped, else its own.
_STAMP = ("CASE WHEN f.grouped = 1 THEN s.report_id ELSE f.report_id END, "
          "CASE WHEN f.grouped = 1 THEN s.confirmed_at ELSE f.confirmed_at END")
_WITH_STAMP = ("FROM fingerprint f LEFT JOIN fingerprint_source s "
               "ON s.source_kind = f.source_kind AND s.source_id = f.source_id ")

_ROWS_OF_SOURCE = "SELECT ref, digest, ci_id, grouped, confirmed_at FROM fingerprint WHERE source_kind = ? AND source_id = ?"
_MARKS_OF_SOURCE = "SELECT ref, ci_id, host_ci, op_mark FROM fingerprint WHERE source_kind = ? AND source_id = ?"
_ROWS_OF_CIS = (f"SELECT f.ci_id, f.source_kind, f.source_id, {_STAMP}, f.host_ci, "
                f"max(f.op_mark, coalesce(s.op_floor, 0)) {_WITH_STAMP}"
                "WHERE f.ci_id IN (SELECT value FROM json_each(?))")
_OPERATIONS_AFTER = "SELECT seq, ci_id, other_ci, json_extract(moved, '$.cis') FROM ci_operation WHERE seq > ?"
# The active relations out of the listed CIs. CROSS JOIN and `+state` keep the planner on the
# primary key (from_ci first), driven by the list, whatever the size of the table.
_ACTIVE_FROM = ("SELECT r.type, r.from_ci, r.to_ci FROM json_each(?) j CROSS JOIN relationship r "
                "ON r.from_ci = j.value WHERE +r.state = 'active'")
_SCOPE_DIGESTS = ("SELECT collector, subject, statement_digest FROM scope "
                  "WHERE source_kind = ? AND source_id = ? AND statement_digest IS NOT NULL")

_OF_SOURCE = "source_kind = ? AND source_id = ?"
_REFS = "ref IN (SELECT value FROM json_each(?))"
_SOURCE_STAMP = f"SELECT report_id, confirmed_at, op_floor FROM fingerprint_source WHERE {_OF_SOURCE}"
_SET_SOURCE_STAMP = ("INSERT INTO fingerprint_source (source_kind, source_id, report_id, confirmed_at, op_floor) "
                     "VALUES (?, ?, ?, ?, (SELECT coalesce(max(seq), 0) FROM ci_operation)) "
                     "ON CONFLICT (source_kind, source_id) DO UPDATE SET "
                     "report_id = excluded.report_id, confirmed_at = excluded.confirmed_at")
_CONFIRMED_ROWS = f"SELECT ref, ci_id, grouped FROM fingerprint WHERE {_OF_SOURCE} AND {_REFS}"
_GROUP_SIZE = f"SELECT count(*) FROM fingerprint WHERE {_OF_SOURCE} AND grouped = 1"
_ALL_ROWS = f"SELECT ref, ci_id, grouped FROM fingerprint WHERE {_OF_SOURCE}"
# Up to this many confirmations are looked up one by one; more, and the source's rows are read in
# key order (a scan of the source's rows is cheaper than as many lookups).
_LOOKUP_LIMIT = 64
# Rows leaving the group keep the group's stamp as their own.
_FREEZE_OTHERS = ("UPDATE fingerprint SET grouped = 0, report_id = ?3, confirmed_at = ?4 "
                  "WHERE source_kind = ?1 AND source_id = ?2 AND grouped = 1 "
                  "AND ref NOT IN (SELECT value FROM json_each(?5))")
_FREEZE_LISTED = ("UPDATE fingerprint SET grouped = 0, report_id = ?3, confirmed_at = ?4 "
                  "WHERE source_kind = ?1 AND source_id = ?2 AND grouped = 1 "
                  "AND ref IN (SELECT value FROM json_each(?5))")
_JOIN = f"UPDATE fingerprint SET grouped = 1 WHERE {_OF_SOURCE} AND {_REFS}"
# One by one: the stamp moves forward only, the report id with it (as _CONFIRM_ATTR for a value);
# a grouped row leaves the group with this report's stamp. SET expressions read the row as it was.
_CONFIRM_EACH = ("UPDATE fingerprint SET "
                 "report_id = CASE WHEN grouped = 1 OR confirmed_at <= ?2 THEN ?1 ELSE report_id END, "
                 "confirmed_at = CASE WHEN grouped = 1 THEN ?2 ELSE max(confirmed_at, ?2) END, grouped = 0 "
                 "WHERE source_kind = ?3 AND source_id = ?4 AND ref IN (SELECT value FROM json_each(?5))")

_MATERIALIZE = ("UPDATE attribute SET observed_at = ?1, report_id = ?2 "
                "WHERE ci_id = ?3 AND source_kind = ?4 AND source_id = ?5 AND observed_at <= ?1")
_SELECT_FOR_FORGET = f"SELECT f.source_kind, f.source_id, f.ref, f.ci_id, {_STAMP} {_WITH_STAMP}"
_DELETE_ROW = "DELETE FROM fingerprint WHERE source_kind = ? AND source_id = ? AND ref = ?"
_INSERT_ROW = ("INSERT OR REPLACE INTO fingerprint (source_kind, source_id, ref, digest, ci_id, host_ci, "
               "report_id, confirmed_at, op_mark, grouped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_CLEAR_SCOPES_THAT_SAW = ("UPDATE scope SET statement_digest = NULL WHERE statement_digest IS NOT NULL AND id IN "
                          "(SELECT scope_id FROM seen_by WHERE ci_id IN (SELECT value FROM json_each(?)))")
_SET_SCOPE_DIGEST = ("UPDATE scope SET statement_digest = ? "
                     "WHERE source_kind = ? AND source_id = ? AND collector = ? AND subject = ?")


def _voided_by_operations(conn: sqlite3.Connection, since: int) -> list[tuple[int, set[str]]]:
    """(seq, CIs it touched) of the CI operations after `since` (usually none: one empty read)."""
    out = []
    for seq, ci_id, other_ci, cis in conn.execute(_OPERATIONS_AFTER, (since,)):
        touched = {ci_id, other_ci}
        if cis:
            touched.update(json_decode(cis))
        out.append((seq, touched))
    return out


def _void(ops: list[tuple[int, set[str]]], op_mark: int, ci_id: str, host_ci: str) -> bool:
    return any(seq > op_mark and (ci_id in cis or host_ci in cis) for seq, cis in ops)


class FingerprintReads:
    """cmdb.fingerprints.FingerprintStore for SQLiteStore (a mixin)."""

    def _snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def item_fingerprints(self, source_kind: str, source_id: str,
                          refs: Iterable[str] | None = None) -> dict[str, StoredFingerprint]:
        source = (source_kind, source_id)
        with self._snapshot() as conn:
            stamp = conn.execute(_SOURCE_STAMP, source).fetchone()
            if stamp is None:
                return {}
            if refs is None:
                rows = conn.execute(_ROWS_OF_SOURCE, source).fetchall()
            else:
                rows = conn.execute(_ROWS_OF_SOURCE + f" AND {_REFS}", (*source, json_list(refs))).fetchall()
            voided: set[str] = set()
            ops = _voided_by_operations(conn, stamp[2])  # usually none: one empty read
            if ops:
                voided = {ref for ref, ci_id, host, mark in conn.execute(_MARKS_OF_SOURCE, source)
                          if _void(ops, mark, ci_id, host)}
        group_stamp = from_micros(stamp[1])
        times: dict[int, datetime] = {}
        return {ref: (digest, ci_id, group_stamp if grouped else times.get(at) or times.setdefault(at, from_micros(at)))
                for ref, digest, ci_id, grouped, at in rows if ref not in voided}

    def confirmations(self, ci_ids: Iterable[str]) -> dict[str, list[Confirmation]]:
        with self._snapshot() as conn:
            if conn.execute("SELECT 1 FROM fingerprint LIMIT 1").fetchone() is None:
                return {}  # a store the fast path never wrote to (or forced onto the full path)
            rows = conn.execute(_ROWS_OF_CIS, (json_list(dict.fromkeys(ci_ids)),)).fetchall()
            if not rows:
                return {}
            ops = _voided_by_operations(conn, min(r[6] for r in rows))
        out: dict[str, list[Confirmation]] = {}
        for ci_id, kind, source_id, report_id, confirmed_at, host, mark in rows:
            if not _void(ops, mark, ci_id, host):
                out.setdefault(ci_id, []).append(Confirmation(kind, source_id, report_id, from_micros(confirmed_at)))
        return out

    def active_relations_from(self, ci_ids: Iterable[str]) -> set[RelationKey]:
        with self._snapshot() as conn:
            return set(conn.execute(_ACTIVE_FROM, (json_list(dict.fromkeys(ci_ids)),)))

    def scope_digests(self, source_kind: str, source_id: str) -> dict[Scope, bytes]:
        with self._snapshot() as conn:
            return {(collector, subject): digest for collector, subject, digest
                    in conn.execute(_SCOPE_DIGESTS, (source_kind, source_id))}


# -- writes, inside write_change_set's transaction ---------------------------------------------

def _materialize_and_delete(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows (source_kind, source_id, ref, ci_id, report_id, confirmed_at) go, their stamps written
    into the values of their CI from their source first (oldest first, so the newest stays)."""
    if not rows:
        return
    rows = sorted(set(rows), key=lambda r: r[5])
    conn.executemany(_MATERIALIZE, [(at, report_id, ci_id, kind, source_id)
                                    for kind, source_id, _, ci_id, report_id, at in rows])
    conn.executemany(_DELETE_ROW, [r[:3] for r in rows])


def _rows_of(conn: sqlite3.Connection, ci_ids: Iterable[str], with_hosted: bool = False) -> list[tuple]:
    ids = json_list(dict.fromkeys(ci_ids))
    rows = conn.execute(_SELECT_FOR_FORGET + "WHERE f.ci_id IN (SELECT value FROM json_each(?))", (ids,)).fetchall()
    if with_hosted:
        rows += conn.execute(_SELECT_FOR_FORGET + "WHERE f.host_ci <> '' AND f.host_ci IN "
                             "(SELECT value FROM json_each(?))", (ids,)).fetchall()
    return rows


def forget_fingerprints(conn: sqlite3.Connection, ci_ids: Iterable[str]) -> None:
    """Drop the fast-path state that `ci_ids` invalidate, inside the caller's write transaction:
    every source's fingerprint of these CIs and of the items hosted by them (their stamps written
    into the values first), and every scope's statement digest (its next run reads its records).

    Call it from any write outside `Store.apply` that changes a CI's identifiers, attributes,
    observations, state or dependents — a merge, split or undo (with both CIs), before moving
    anything: the next report of each source then takes the full path for them."""
    ids = list(dict.fromkeys(ci_ids))
    if ids:
        _materialize_and_delete(conn, _rows_of(conn, ids, with_hosted=True))
    conn.execute("UPDATE scope SET statement_digest = NULL WHERE statement_digest IS NOT NULL")
    # The operations so far are dealt with: the safety net (item_fingerprints) need not check them.
    conn.execute("UPDATE fingerprint_source SET op_floor = (SELECT coalesce(max(seq), 0) FROM ci_operation)")


def touched_cis(changes: ChangeSet) -> set[str]:
    """The CIs whose attributes, observations or state the change set changes."""
    touched = {c.ci_id for c in changes.attributes}
    touched.update(c.ci_id for c in changes.measurements)
    touched.update(o.ci_id for o in changes.observations)
    touched.update(o.ci_id for o in changes.provenance_moves)
    touched.update(key[0] for key in changes.observations_dropped)
    touched.update(changes.retired)
    touched.update(changes.reactivated)
    return touched - {c.ci_id for c in changes.created}  # a CI created here has no row yet


def _stamp_confirmations(conn: sqlite3.Connection, changes: ChangeSet) -> tuple[set[str], bool]:
    """Move the stamps of the rows the change set confirms (see the module docstring); the CIs
    whose confirmation a stamp now carries, and whether rows written now join the group."""
    prov = changes.provenance
    source = (prov.source_kind, prov.source_id)
    observed = to_micros(prov.observed_at)
    confirms = dict(changes.fingerprint_confirms)
    stamp = conn.execute(_SOURCE_STAMP, source).fetchone()
    if len(confirms) > _LOOKUP_LIMIT:
        rows = conn.execute(_ALL_ROWS, source).fetchall()
        group_size = sum(grouped for _, _, grouped in rows)
    else:
        rows = conn.execute(_CONFIRMED_ROWS, (*source, json_list(confirms))).fetchall() if confirms else []
        group_size = None
    present = {ref: grouped for ref, ci_id, grouped in rows if confirms.get(ref) == ci_id}
    carried = {confirms[ref] for ref in present}
    # Rows rewritten or dropped by this change set leave the group first, with its stamp (they are
    # materialized with it below): only the other rows that leave need a scan.
    going = [f.ref for f in changes.fingerprints] + changes.fingerprints_dropped
    gone_from_group = 0
    if going and stamp is not None:
        gone_from_group = conn.execute(_FREEZE_LISTED, (*source, stamp[0], stamp[1], json_list(going))).rowcount
    if stamp is not None and observed < stamp[1]:  # a late report: a grouped row already has a newer stamp
        late = [ref for ref, grouped in present.items() if not grouped]
        if late:
            conn.execute(_CONFIRM_EACH + " AND grouped = 0", (prov.report_id, observed, *source, json_list(late)))
        return carried, False
    joining = [ref for ref, grouped in present.items() if not grouped]
    if stamp is None:
        leaving = 0
    else:
        if group_size is None:
            group_size = conn.execute(_GROUP_SIZE, source).fetchone()[0]
        else:
            group_size -= gone_from_group
        leaving = group_size - (len(present) - len(joining))
    if stamp is not None and leaving + len(joining) > len(present):
        if present:  # cheaper one by one (a delta confirming a few items of a large group)
            conn.execute(_CONFIRM_EACH, (prov.report_id, observed, *source, json_list(present)))
        return carried, False
    if leaving:
        conn.execute(_FREEZE_OTHERS, (*source, stamp[0], stamp[1], json_list(present)))
    if joining:
        conn.execute(_JOIN, (*source, json_list(joining)))
    conn.execute(_SET_SOURCE_STAMP, (*source, prov.report_id, observed))
    return carried, True


def before_changes(conn: sqlite3.Connection, changes: ChangeSet) -> tuple[set[str], bool]:
    """Move the stamps of whole-CI confirmations, drop the rows the change set breaks, clear the
    statement digests of scopes that saw what retires. Runs before the change set's own writes.
    Returns the CIs whose confirmation a stamp now carries (their `confirmed` pairs need no
    row-by-row write), and whether the rows it writes join their source's group."""
    prov = changes.provenance
    source = (prov.source_kind, prov.source_id)
    carried, grouped = set(), False
    if changes.fingerprint_confirms or changes.fingerprints:
        carried, grouped = _stamp_confirmations(conn, changes)

    touched = touched_cis(changes)
    rows = _rows_of(conn, touched) if touched else []
    refs = [f.ref for f in changes.fingerprints] + changes.fingerprints_dropped
    if refs:
        rows += conn.execute(_SELECT_FOR_FORGET + "WHERE f.source_kind = ? AND f.source_id = ? AND f.ref IN "
                             "(SELECT value FROM json_each(?))", (*source, json_list(refs))).fetchall()
    _materialize_and_delete(conn, rows)

    gone = set(changes.retired) | {r.from_ci for r in changes.relations if r.action == "retire"}
    if gone:
        conn.execute(_CLEAR_SCOPES_THAT_SAW, (json_list(gone),))
    return carried - touched, grouped


def after_changes(conn: sqlite3.Connection, changes: ChangeSet, grouped: bool) -> None:
    """Write the change set's fingerprints and scope digests (after its scope rows exist)."""
    prov = changes.provenance
    source = (prov.source_kind, prov.source_id)
    if changes.fingerprints:
        observed = to_micros(prov.observed_at)
        mark = conn.execute("SELECT coalesce(max(seq), 0) FROM ci_operation").fetchone()[0]
        conn.executemany(_INSERT_ROW, [(*source, f.ref, f.digest, f.ci_id, f.host_ci, prov.report_id, observed,
                                        mark, int(grouped)) for f in changes.fingerprints])
    if changes.scope_digests:
        conn.executemany(_SET_SCOPE_DIGEST, [(d.digest, *source, d.collector, d.subject)
                                             for d in changes.scope_digests])
