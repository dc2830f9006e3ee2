"""Writing a ChangeSet into the SQLite store, inside the transaction `SQLiteStore.apply` opens.

Each part of the change set is one `executemany` of a simple keyed statement: the per-row cost
stays in SQLite's C code. History rows are written by INSERT ... SELECT against the current
row, so `before` is what the store really held and a change that changes nothing (a value set to
what it already is, an active relation added again) records nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from cmdb.backends import sqlite_fingerprint
from cmdb.backends.sqlite_drift import write_drift
from cmdb.backends.sqlite_records import apply_drift_actions
from cmdb.backends.sqlite_schema import encode_json, from_micros, to_micros
from cmdb.changes import AttributeChange, ChangeSet, IdentifierClaim, Provenance
from cmdb.store import ApplyResult, ChangeSetStale, IdentifierTaken, ReportNotPending

_HISTORY_COLUMNS = ("INSERT INTO history (ci_id, kind, name, before, after, related_ci, "
                    "source_kind, source_id, report_id, observed_at, recorded_at) ")

# Parameters ?1.. are the row's own; the provenance tail is always the last five.
_INSERT_CI = "INSERT INTO ci (id, class, state, first_seen, last_seen) VALUES (?, ?, 'active', ?, ?)"
_HISTORY_ROW = _HISTORY_COLUMNS + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

_INSERT_IDENTIFIER = "INSERT INTO identifier (class, kind, value, ci_id, first_seen) VALUES (?, ?, ?, ?, ?)"
_INSERT_SHARED_IDENTIFIER = ("INSERT INTO shared_identifier (class, kind, value, ci_id, first_seen) "
                             "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")

_HISTORY_ATTR_SET = _HISTORY_COLUMNS + (
    "SELECT ?1, 'attr.set', ?2, b, ?3, NULL, ?4, ?5, ?6, ?7, ?8 "
    "FROM (SELECT (SELECT value FROM attribute WHERE ci_id = ?1 AND name = ?2) AS b) WHERE b IS NOT ?3")
_INSERT_ATTR = ("INSERT INTO attribute (ci_id, name, value, source_kind, source_id, report_id, observed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
_UPSERT_ATTR = (
    "INSERT INTO attribute (ci_id, name, value, source_kind, source_id, report_id, observed_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ci_id, name) DO UPDATE SET "
    "value = excluded.value, source_kind = excluded.source_kind, source_id = excluded.source_id, "
    "report_id = excluded.report_id, observed_at = excluded.observed_at")
_HISTORY_ATTR_UNSET = _HISTORY_COLUMNS + (
    "SELECT ci_id, 'attr.unset', name, value, NULL, NULL, ?3, ?4, ?5, ?6, ?7 "
    "FROM attribute WHERE ci_id = ?1 AND name = ?2")
_DELETE_ATTR = "DELETE FROM attribute WHERE ci_id = ? AND name = ?"
# A late report (observed before the current value's observation) does not move the stamp back.
_CONFIRM_ATTR = ("UPDATE attribute SET observed_at = ?1, report_id = ?2 "
                 "WHERE ci_id = ?3 AND name = ?4 AND observed_at <= ?1")

# Attribute precedence (reconcile.precedence): other sources' observations, never moved back in time.
_UPSERT_OBSERVATION = (
    "INSERT INTO observation (ci_id, name, source_kind, source_id, value, report_id, observed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ci_id, name, source_kind, source_id) DO UPDATE SET "
    "value = excluded.value, report_id = excluded.report_id, observed_at = excluded.observed_at "
    "WHERE excluded.observed_at >= observation.observed_at")
_DELETE_OBSERVATION = "DELETE FROM observation WHERE ci_id = ? AND name = ? AND source_kind = ? AND source_id = ?"
_MOVE_PROVENANCE = ("UPDATE attribute SET source_kind = ?3, source_id = ?4, report_id = ?5, observed_at = ?6 "
                    "WHERE ci_id = ?1 AND name = ?2")

_HISTORY_REL_ADD = _HISTORY_COLUMNS + (
    "SELECT ?1, 'rel.add', ?2, '\"' || s || '\"', '\"active\"', ?3, ?5, ?6, ?7, ?4, ?8 "
    "FROM (SELECT (SELECT state FROM relationship WHERE from_ci = ?1 AND type = ?2 AND to_ci = ?3) AS s) "
    "WHERE s IS NOT 'active'")
_INSERT_REL = (
    "INSERT INTO relationship (from_ci, type, to_ci, state, first_seen, last_seen, "
    "source_kind, source_id, report_id, observed_at) VALUES (?1, ?2, ?3, 'active', ?4, ?4, ?5, ?6, ?7, ?4)")
_UPSERT_REL = _INSERT_REL + (
    " ON CONFLICT (from_ci, type, to_ci) DO UPDATE SET state = 'active', "
    "last_seen = max(last_seen, excluded.last_seen), source_kind = excluded.source_kind, "
    "source_id = excluded.source_id, report_id = excluded.report_id, observed_at = excluded.observed_at")
_HISTORY_REL_RETIRE = _HISTORY_COLUMNS + (
    "SELECT from_ci, 'rel.retire', type, '\"active\"', '\"retired\"', to_ci, ?5, ?6, ?7, ?4, ?8 "
    "FROM relationship WHERE from_ci = ?1 AND type = ?2 AND to_ci = ?3 AND state = 'active'")
_RETIRE_REL = ("UPDATE relationship SET state = 'retired' "
               "WHERE from_ci = ?1 AND type = ?2 AND to_ci = ?3 AND state = 'active'")
_SEE_REL = "UPDATE relationship SET last_seen = max(last_seen, ?1) WHERE from_ci = ?2 AND type = ?3 AND to_ci = ?4"
# Set-based forms for long lists (a JSON array parameter): the per-row cost stays in SQLite. `+state`
# keeps the planner on the primary key (from_ci first) rather than the state index.
_SEE_CIS = "UPDATE ci SET last_seen = max(last_seen, ?1) WHERE id IN (SELECT value FROM json_each(?2))"
_SEE_RELS_FROM = ("UPDATE relationship SET last_seen = max(last_seen, ?1) "
                  "WHERE from_ci IN (SELECT value FROM json_each(?2)) AND +state = 'active'")

# Scoped staleness (reconcile.staleness): scope stamps, seen-by rows, CI state changes.
_UPSERT_SCOPE = ("INSERT INTO scope (source_kind, source_id, collector, subject, last_run) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_kind, source_id, collector, subject) DO UPDATE SET "
                 "last_run = max(last_run, excluded.last_run)")
_UPSERT_SEEN = (
    "INSERT INTO seen_by (scope_id, ci_id, rel_type, to_ci, last_seen_run, missed) "
    "VALUES ((SELECT id FROM scope WHERE source_kind = ?1 AND source_id = ?2 AND collector = ?3 "
    "AND subject = ?9), ?4, ?5, ?6, ?7, ?8) ON CONFLICT (scope_id, ci_id, rel_type, to_ci) DO UPDATE SET "
    "last_seen_run = excluded.last_seen_run, missed = excluded.missed")
_HISTORY_CI_STATE = _HISTORY_COLUMNS + (
    "SELECT id, ?2, NULL, '\"' || state || '\"', ?3, NULL, ?4, ?5, ?6, ?7, ?8 "
    "FROM ci WHERE id = ?1 AND state IS NOT ?9")
_SET_CI_STATE = "UPDATE ci SET state = ?2 WHERE id = ?1 AND state IS NOT ?2"
_UNSEE_CI = "DELETE FROM seen_by WHERE ci_id = ? AND rel_type = '' AND to_ci = ''"
_UNSEE_REL = "DELETE FROM seen_by WHERE ci_id = ? AND rel_type = ? AND to_ci = ?"

_MARK_RECONCILED = ("UPDATE report SET status = 'reconciled', reconciled_at = ?, error = NULL "
                    "WHERE seq = ? AND status IN ('pending', 'failed')")

_CLAIM_CHUNK = 500
_json_list = sqlite_fingerprint.json_list


def write_change_set(conn: sqlite3.Connection, changes: ChangeSet, report_seq: int | None) -> ApplyResult:
    """Write `changes` on `conn`, which must be inside a write transaction the caller commits or
    rolls back: any exception here leaves the transaction to be rolled back whole."""
    prov = changes.provenance
    observed = to_micros(prov.observed_at)
    recorded = to_micros(datetime.now(timezone.utc))
    # The provenance tail of every history row: source_kind, source_id, report_id, observed, recorded.
    tail = (prov.source_kind, prov.source_id, prov.report_id, observed, recorded)
    history = 0

    if changes.operation_epoch is not None:
        newest = conn.execute("SELECT COALESCE(max(seq), 0) FROM ci_operation").fetchone()[0]
        if newest != changes.operation_epoch:
            raise ChangeSetStale(f"CI operation {newest} committed after this change set was computed "
                                 f"(at operation {changes.operation_epoch}): compute it again")
    if report_seq is not None:
        if conn.execute(_MARK_RECONCILED, (recorded, report_seq)).rowcount != 1:
            row = conn.execute("SELECT status FROM report WHERE seq = ?", (report_seq,)).fetchone()
            state = "does not exist" if row is None else f"is {row[0]}"
            raise ReportNotPending(f"report seq {report_seq} {state}; only a pending or failed report "
                                   "can be applied")

    # The fast path's rows (sqlite_fingerprint): stamps of whole-CI confirmations move, rows this
    # change set breaks go (their stamps written into the values first), before anything else.
    confirmed_whole, fingerprints_grouped = sqlite_fingerprint.before_changes(conn, changes)

    if changes.created:
        conn.executemany(_INSERT_CI, [(c.ci_id, c.ci_class, observed, observed) for c in changes.created])
        cur = conn.executemany(_HISTORY_ROW, [(c.ci_id, "ci.create", None, None, encode_json(c.ci_class), None,
                                               *tail) for c in changes.created])
        history += cur.rowcount

    if changes.identifiers:
        history += _claim_identifiers(conn, changes.identifiers, observed, tail)
    if changes.shared_identifiers:
        conn.executemany(_INSERT_SHARED_IDENTIFIER, [(c.ci_class, c.kind, c.value, c.ci_id, observed)
                                                     for c in changes.shared_identifiers])

    created = {c.ci_id for c in changes.created}
    if changes.attributes:
        # One change per (ci, name), the last one given: its `after` is the value to end with.
        last = {(c.ci_id, c.name): c for c in changes.attributes}
        # A CI created here has no current values to compare with or replace: plain inserts. A
        # change with its own provenance (another source's observation took over) is written
        # with it; its history row is stamped when it took over (never before this report).
        fresh, sets, unsets = [], [], []
        for (ci_id, name), c in last.items():
            row_tail = tail if c.provenance is None else _tail_of(c.provenance, observed, recorded)
            if c.after is None:
                unsets.append((ci_id, name, *row_tail))
            else:
                (fresh if ci_id in created else sets).append((ci_id, name, encode_json(c.after), row_tail))
        if fresh:
            history += conn.executemany(_HISTORY_ROW, [(ci_id, "attr.set", name, None, value, None, *t)
                                                       for ci_id, name, value, t in fresh]).rowcount
            conn.executemany(_INSERT_ATTR, [(ci_id, name, value, *_attr_stamp(c_tail, last[ci_id, name]))
                                            for ci_id, name, value, c_tail in fresh])
        if sets:
            history += conn.executemany(_HISTORY_ATTR_SET, [(ci_id, name, value, *t)
                                                            for ci_id, name, value, t in sets]).rowcount
            conn.executemany(_UPSERT_ATTR, [(ci_id, name, value, *_attr_stamp(t, last[ci_id, name]))
                                            for ci_id, name, value, t in sets])
        if unsets:
            history += conn.executemany(_HISTORY_ATTR_UNSET, unsets).rowcount
            conn.executemany(_DELETE_ATTR, [u[:2] for u in unsets])

    if changes.measurements:
        # Readings: the current value moves with its provenance; history is for changes.
        last = {(c.ci_id, c.name): c for c in changes.measurements}
        conn.executemany(_UPSERT_ATTR, [(ci_id, name, encode_json(c.after), *_attr_stamp(tail, c))
                                        for (ci_id, name), c in last.items() if c.after is not None])
        conn.executemany(_DELETE_ATTR, [key for key, c in last.items() if c.after is None])

    if changes.observations_dropped:
        conn.executemany(_DELETE_OBSERVATION, list(dict.fromkeys(changes.observations_dropped)))
    if changes.observations:
        conn.executemany(_UPSERT_OBSERVATION, [
            (o.ci_id, o.name, o.provenance.source_kind, o.provenance.source_id, encode_json(o.value),
             o.provenance.report_id, to_micros(o.provenance.observed_at)) for o in changes.observations])
    if changes.provenance_moves:
        conn.executemany(_MOVE_PROVENANCE, [
            (m.ci_id, m.name, m.provenance.source_kind, m.provenance.source_id, m.provenance.report_id,
             to_micros(m.provenance.observed_at)) for m in changes.provenance_moves])

    if changes.confirmed:
        # A CI confirmed as a whole is carried by its fingerprint's stamp, not row by row.
        confirmed = changes.confirmed if not confirmed_whole else [
            pair for pair in changes.confirmed if pair[0] not in confirmed_whole]
        conn.executemany(_CONFIRM_ATTR, [(observed, prov.report_id, ci_id, name) for ci_id, name in confirmed])

    if changes.relations:
        # One action per relation, the last one given.
        actions = {(r.from_ci, r.type, r.to_ci): r.action for r in changes.relations}
        adds = [(*key, observed, *tail[:3], recorded) for key, action in actions.items() if action == "add"]
        retires = [(*key, observed, *tail[:3], recorded) for key, action in actions.items() if action == "retire"]
        # A relation with an end created here cannot exist yet: plain inserts.
        fresh_adds = [a for a in adds if a[0] in created or a[2] in created]
        adds = [a for a in adds if a[0] not in created and a[2] not in created]
        if fresh_adds:
            history += conn.executemany(_HISTORY_ROW, [(a[0], "rel.add", a[1], None, '"active"', a[2], *tail)
                                                       for a in fresh_adds]).rowcount
            conn.executemany(_INSERT_REL, [a[:7] for a in fresh_adds])
        if adds:
            history += conn.executemany(_HISTORY_REL_ADD, adds).rowcount
            conn.executemany(_UPSERT_REL, [a[:7] for a in adds])
        if retires:
            history += conn.executemany(_HISTORY_REL_RETIRE, retires).rowcount
            conn.executemany(_RETIRE_REL, [r[:3] for r in retires])

    if changes.relations_seen:
        by_ci = set(changes.relations_seen_from)
        if by_ci:  # every active relation out of these CIs was seen: one statement for them all
            conn.execute(_SEE_RELS_FROM, (observed, _json_list(by_ci)))
        conn.executemany(_SEE_REL, [(observed, from_ci, type_, to_ci)
                                    for type_, from_ci, to_ci in changes.relations_seen if from_ci not in by_ci])
    if changes.seen:
        conn.execute(_SEE_CIS, (observed, _json_list(dict.fromkeys(changes.seen))))

    history += _write_staleness(conn, changes, observed, tail)
    sqlite_fingerprint.after_changes(conn, changes, fingerprints_grouped)
    if changes.drift:
        write_drift(conn, changes.drift, recorded)
        if changes.drift_actions:
            apply_drift_actions(conn, changes.drift_actions, changes.drift, from_micros(recorded))
    return ApplyResult(history_rows=history, created=len(changes.created))


def _tail_of(prov: Provenance, observed: int, recorded: int) -> tuple:
    """The history tail of a change to another source's observation: its source and report,
    stamped when it became current (this change set's time, or its own if that is later)."""
    return (prov.source_kind, prov.source_id, prov.report_id, max(to_micros(prov.observed_at), observed), recorded)


def _attr_stamp(tail: tuple, change: AttributeChange) -> tuple:
    """The provenance columns of the current value: the change set's, or the observation's own."""
    prov = change.provenance
    if prov is None:
        return tail[:4]
    return (prov.source_kind, prov.source_id, prov.report_id, to_micros(prov.observed_at))


def _write_staleness(conn: sqlite3.Connection, changes: ChangeSet, observed: int, tail: tuple) -> int:
    """Scope stamps and seen-by rows, then CI state changes with their history rows; the seen-by
    rows of what retires go (a CI or relation stated again starts a fresh record)."""
    source = tail[:2]
    if changes.scope_runs:
        conn.executemany(_UPSERT_SCOPE, [(*source, *scope, observed) for scope in dict.fromkeys(changes.scope_runs)])
    if changes.seen_marks:
        conn.executemany(_UPSERT_SEEN, [(*source, m.collector, m.ci_id, m.rel_type, m.to_ci,
                                         to_micros(m.last_seen_run), m.missed, m.subject)
                                        for m in changes.seen_marks])
    history = 0
    for ci_ids, state in ((changes.reactivated, "active"), (changes.retired, "retired")):
        if ci_ids:
            ids = list(dict.fromkeys(ci_ids))
            kind = "ci.reactivate" if state == "active" else "ci.retire"
            history += conn.executemany(_HISTORY_CI_STATE, [(ci_id, kind, f'"{state}"', *tail, state)
                                                            for ci_id in ids]).rowcount
            conn.executemany(_SET_CI_STATE, [(ci_id, state) for ci_id in ids])
    if changes.retired:
        conn.executemany(_UNSEE_CI, [(ci_id,) for ci_id in dict.fromkeys(changes.retired)])
    retired_relations = [(r.from_ci, r.type, r.to_ci) for r in changes.relations if r.action == "retire"]
    if retired_relations:
        conn.executemany(_UNSEE_REL, retired_relations)
    return history


def _claim_identifiers(conn: sqlite3.Connection, claims: list[IdentifierClaim], observed: int,
                       tail: tuple) -> int:
    """Bind the claimed identifiers; a key another CI holds fails the whole apply (the UNIQUE
    key is the backstop, this check names the culprit). Re-claiming one's own key is a no-op."""
    wanted: dict[tuple[str, str, str], str] = {}
    for c in claims:
        key = (c.ci_class, c.kind, c.value)
        holder = wanted.setdefault(key, c.ci_id)
        if holder != c.ci_id:
            raise IdentifierTaken(c.ci_class, c.kind, c.value, holder, c.ci_id)

    by_group: dict[tuple[str, str], list[str]] = {}
    for ci_class, kind, value in wanted:
        by_group.setdefault((ci_class, kind), []).append(value)
    held: dict[tuple[str, str, str], str] = {}
    for (ci_class, kind), values in by_group.items():
        for start in range(0, len(values), _CLAIM_CHUNK):
            chunk = values[start:start + _CLAIM_CHUNK]
            marks = ",".join("?" * len(chunk))
            for value, ci_id in conn.execute(
                    f"SELECT value, ci_id FROM identifier WHERE class = ? AND kind = ? AND value IN ({marks})",
                    (ci_class, kind, *chunk)):
                held[(ci_class, kind, value)] = ci_id

    new = []
    for key, ci_id in wanted.items():
        holder = held.get(key)
        if holder is None:
            new.append((*key, ci_id))
        elif holder != ci_id:
            raise IdentifierTaken(*key, holder, ci_id)
    if not new:
        return 0
    conn.executemany(_INSERT_IDENTIFIER, [(*n, observed) for n in new])
    conn.executemany(_HISTORY_ROW, [(ci_id, "ident.add", kind, None, encode_json(value), None, *tail)
                                    for _, kind, value, ci_id in new])
    return len(new)
