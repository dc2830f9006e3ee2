"""Undoing a merge: its journal (sqlite_merge_moves) played backwards, inside one transaction.

What the merge moved comes back as it was. What reports wrote after the merge is kept where it
is, with two exceptions that follow the data rather than the CI: a value, observation, seen-by row
or relation that came from the absorbed CI and that a later report of the same source refreshed
goes back to the absorbed CI in its refreshed form, and a relation that came from the absorbed CI
and was retired since comes back retired. Anything reports added to the survivor after the merge
(new dependents, new identifiers) stays with the survivor; the next complete run of the absorbed
machine's sources corrects it through scoped staleness (docs/reconcile.md, "Merge and split").
"""

from __future__ import annotations

import sqlite3
from typing import Any

from cmdb.backends.sqlite_merge_rows import (
    DELETE_REL,
    INSERT_REL,
    SELECT_REL,
    AttributeWrites,
    OperationWriter,
    attribute_rows,
    current_of,
    identifier_holder,
    is_measurement,
    move_identifier,
)
from cmdb.operations import CIOperationRefused


def undo_merge(conn: sqlite3.Connection, journal: list[list[Any]], seq: int, w: OperationWriter) -> None:
    scope_ids: dict[int, int] = {}  # a folded scope made again under another id: old id -> new id
    writes = AttributeWrites(conn)
    classes: dict[str, str] = {}
    for entry in reversed(journal):
        kind = entry[0]
        if kind == "ci":
            _undo_ci(conn, entry, seq, w)
        elif kind == "shared":
            _undo_shared(conn, entry, w)
        elif kind == "seen":
            _undo_seen(conn, entry, scope_ids, w)
        elif kind == "scope":
            _undo_scope(conn, entry, scope_ids, w)
        elif kind == "rel":
            _undo_relation(conn, entry, w)
        elif kind == "attrs":
            _undo_attribute(conn, entry, w, writes, classes)
        elif kind == "ident":
            writes.flush()
            _undo_identifier(conn, entry, seq, w)
        else:
            raise CIOperationRefused(
                f"operation {seq}: its journal has an entry of unknown kind {kind!r}; "
                "it was written by a newer fleetgraph: undo it with that version"
            )
    writes.flush()


def _undo_ci(conn: sqlite3.Connection, entry: list[Any], seq: int, w: OperationWriter) -> None:
    _, ci_id, state, merged_into, first_seen, state_after, merged_after, _first_after = entry
    now = conn.execute("SELECT state, merged_into FROM ci WHERE id = ?", (ci_id,)).fetchone()
    if merged_after is not None and merged_into is None:
        if now is None or now[1] != merged_after:
            raise CIOperationRefused(
                f"CI {ci_id} is no longer merged into {merged_after} as operation {seq} left it "
                f"(merged into {now[1] if now else None}); undo the later operation that moved it first"
            )
        w.history(ci_id, "ci.split", "merged_into", merged_after, None, merged_after)
        w.history(merged_after, "ci.split", "absorbed", ci_id, None, ci_id)
    elif now is not None and now[0] != state:
        w.history(ci_id, "ci.retire" if state == "retired" else "ci.reactivate", None, now[0], state)
    conn.execute(
        "UPDATE ci SET state = ?, merged_into = ?, first_seen = ? WHERE id = ?",
        (state, merged_into, first_seen, ci_id),
    )
    w.involved.add(ci_id)
    if merged_after is not None and merged_into is None:
        w.moved["cis_restored"] += 1


def _undo_shared(conn: sqlite3.Connection, entry: list[Any], w: OperationWriter) -> None:
    _, ci_class, kind, value, ci_id, first_seen, new_value, new_ci = entry
    if new_value is not None:
        conn.execute(
            "DELETE FROM shared_identifier WHERE class = ? AND kind = ? AND value = ? AND ci_id = ?",
            (ci_class, kind, new_value, new_ci),
        )
    conn.execute(
        "INSERT INTO shared_identifier (class, kind, value, ci_id, first_seen) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (ci_class, kind, value, ci_id, first_seen),
    )
    w.moved["shared_identifiers_restored"] += 1


def _undo_seen(
    conn: sqlite3.Connection, entry: list[Any], scope_ids: dict[int, int], w: OperationWriter
) -> None:
    _, scope_id, key, new_scope, new_key, values, target_before = entry
    scope_id, new_scope = scope_ids.get(scope_id, scope_id), scope_ids.get(new_scope, new_scope)
    if new_key is not None and target_before is None:
        # It was moved: it comes back with what later runs wrote on it; gone since (its CI or
        # relation retired), it stays gone.
        now = conn.execute(
            "SELECT last_seen_run, missed FROM seen_by WHERE scope_id = ? AND ci_id = ? AND "
            "rel_type = ? AND to_ci = ?",
            (new_scope, *new_key),
        ).fetchone()
        if now is None:
            return
        conn.execute(
            "DELETE FROM seen_by WHERE scope_id = ? AND ci_id = ? AND rel_type = ? AND to_ci = ?",
            (new_scope, *new_key),
        )
        values = list(now)
    conn.execute(
        "INSERT INTO seen_by (scope_id, ci_id, rel_type, to_ci, last_seen_run, missed) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope_id, ci_id, rel_type, to_ci) DO UPDATE SET "
        "last_seen_run = excluded.last_seen_run, missed = excluded.missed",
        (scope_id, *key, *values),
    )
    w.moved["seen_records_restored"] += 1


def _undo_scope(
    conn: sqlite3.Connection, entry: list[Any], scope_ids: dict[int, int], w: OperationWriter
) -> None:
    _, scope_id, kind, source_id, collector, subject, survivor, last_run, target_id, target_run = entry
    if target_id is None:
        conn.execute("UPDATE scope SET subject = ? WHERE id = ?", (subject, scope_id))
    else:
        # Folded into the survivor's scope: made again (under its old id when that is free), and
        # the survivor's stamp goes back unless a run moved it since.
        taken = conn.execute("SELECT 1 FROM scope WHERE id = ?", (scope_id,)).fetchone()
        cur = conn.execute(
            "INSERT INTO scope (id, source_kind, source_id, collector, subject, last_run) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (None if taken else scope_id, kind, source_id, collector, subject, last_run),
        )
        scope_ids[scope_id] = cur.lastrowid
        conn.execute(
            "UPDATE scope SET last_run = ? WHERE id = ? AND last_run = ?",
            (target_run, target_id, max(last_run, target_run)),
        )
    w.moved["scopes_restored"] += 1


def _undo_relation(conn: sqlite3.Connection, entry: list[Any], w: OperationWriter) -> None:
    _, old, new_key, target_before = entry
    restored = tuple(old)
    if new_key is not None:
        now = conn.execute(SELECT_REL, new_key).fetchone()
        if target_before is None:
            if now is not None:
                conn.execute(DELETE_REL, new_key)
                restored = (*old[:3], *now[3:])  # as later reports left it (retired, seen later)
        else:
            conn.execute(DELETE_REL, new_key)
            conn.execute(INSERT_REL, tuple(target_before))
        after = None if target_before is None else target_before[3]
        if now is not None and now[3] == "active" and after != "active":
            w.history(new_key[0], "rel.retire", new_key[1], "active", after or "retired", new_key[2])
    conn.execute(DELETE_REL, restored[:3])
    conn.execute(INSERT_REL, restored)
    if restored[3] == "active":
        w.history(restored[0], "rel.add", restored[1], None, "active", restored[2])
    w.moved["relations_restored"] += 1


def _undo_attribute(
    conn: sqlite3.Connection,
    entry: list[Any],
    w: OperationWriter,
    writes: AttributeWrites,
    classes: dict[str, str],
) -> None:
    """One attribute of an absorbed CI: the values of the sources that described only the
    absorbed CI go back to it (as they are now, refreshed or not), the survivor's own values stay,
    and a value of the absorbed CI that the merge kept in place of the survivor's older one from
    the same source gives that one back."""
    _, absorbed, survivor, name, theirs_rows, survivor_rows = entry
    mine = {(r[0], r[1]): r for r in theirs_rows}
    before = {(r[0], r[1]): r for r in survivor_rows}
    writes.before_reading(survivor, name)
    now = attribute_rows(conn, survivor, [name]).get(name, {})
    back: dict[tuple[str, str], list[Any]] = {}
    stays = {src: list(r) for src, r in now.items()}
    for src, row in mine.items():
        if src in before:
            back[src] = list(row)
            if src in now and _same(now[src], row) and not _same(before[src], row):
                stays[src] = [*before[src][:5], now[src][5]]
        elif src in now:
            back[src] = list(now[src])
            del stays[src]
    if stays and current_of(stays) is None:
        original = current_of(before)
        lead = (original[0], original[1]) if original and (original[0], original[1]) in stays else None
        lead = lead or max(stays, key=lambda s: stays[s][4])
        stays[lead][5] = 1
    if back:
        original = current_of(mine)
        lead = (original[0], original[1]) if original and (original[0], original[1]) in back else None
        lead = lead or max(back, key=lambda s: back[s][4])
        for src, row in back.items():
            row[5] = int(src == lead)
    if absorbed not in classes:
        classes[absorbed] = conn.execute("SELECT class FROM ci WHERE id = ?", (absorbed,)).fetchone()[0]
    measured = is_measurement(classes[absorbed], name)
    was, will = current_of(now), current_of(stays)
    if not measured:
        if back:
            w.history_json(absorbed, "attr.set", name, None, current_of(back)[2])
        if (was and was[2]) != (will and will[2]):
            w.history_json(
                survivor, "attr.set" if will else "attr.unset", name, was and was[2], will and will[2]
            )
    writes.write(survivor, name, stays.values(), now)
    writes.write(absorbed, name, back.values(), {})
    w.moved["attributes_restored"] += bool(back)


def _same(a: list[Any], b: list[Any]) -> bool:
    """Same observation: value, report and time (not where it sits, current or not)."""
    return a[2] == b[2] and a[3] == b[3] and a[4] == b[4]


def _undo_identifier(conn: sqlite3.Connection, entry: list[Any], seq: int, w: OperationWriter) -> None:
    _, ci_class, kind, old, new, from_ci, to_ci, first_seen = entry
    if new is not None and identifier_holder(conn, ci_class, kind, new) == to_ci:
        conn.execute(
            "DELETE FROM identifier WHERE class = ? AND kind = ? AND value = ?", (ci_class, kind, new)
        )
        w.history(to_ci, "ident.remove", kind, new, None, from_ci if to_ci != from_ci else None)
    holder = identifier_holder(conn, ci_class, kind, old)
    if holder is not None and holder != from_ci:
        raise CIOperationRefused(
            f"{ci_class} identifier {kind}={old!r} has been bound to CI {holder} since operation {seq}, "
            f"so it cannot go back to CI {from_ci}; split it off CI {holder} first (fleetgraph ci split)"
        )
    if holder is None:
        move_identifier(conn, ci_class, kind, old, old, from_ci, first_seen)
        w.history(from_ci, "ident.add", kind, None, old, to_ci if to_ci not in (None, from_ci) else None)
    w.moved["identifiers_restored"] += 1
