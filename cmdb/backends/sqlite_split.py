"""Splitting one CI into two, inside the operation's transaction (sqlite_merge.MergeOperations).

A new CI of the same class takes the identifiers named. What else can be told apart is told apart
by *source*: a staleness scope (source, collector, subject) records what that source saw of the CI
(cmdb.backends.sqlite_staleness). The scopes of the sources that describe the other machine move
to the new CI, and with them the dependent CIs (packages, interfaces, addresses, ...) and the
relations that only those scopes saw: the dependents are re-keyed under the new CI's id. A
dependent or relation also seen by a source that stays is shared and stays.

Attributes do not move: the next report of each machine sets its own through reconcile (the
attribute precedence takes the newest value of each source). Undoing a split merges the new CI
back (sqlite_merge_moves), so the new CI stays in the store, retired, merged into the original.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from cmdb.backends.sqlite_merge_rows import (
    DELETE_REL,
    INSERT_REL,
    OperationWriter,
    chunks,
    identifiers_of,
    move_identifier,
    relations_touching,
)
from cmdb.backends.sqlite_schema import json_decode
from cmdb.operations import OPERATOR_SOURCE_KIND, CIOperationRefused

Source = tuple[str, str]  # (source kind, source id)


def attributed_sources(conn: sqlite3.Connection, ci_id: str, splitting: set[tuple[str, str]]) -> list[Source]:
    """The sources that bound (history `ident.add`) some of the identifiers being split off and none
    of those that stay. Identifiers an operator moved in (a merge) are nobody's."""
    held = {(kind, value) for _, _, kind, value, _ in identifiers_of(conn, [ci_id])}
    bound_by: dict[Source, set[tuple[str, str]]] = defaultdict(set)
    for kind, after, source_kind, source_id in conn.execute(
        "SELECT name, after, source_kind, source_id FROM history WHERE ci_id = ? AND kind = 'ident.add'",
        (ci_id,),
    ):
        identifier = (kind, json_decode(after))
        if identifier in held and source_kind != OPERATOR_SOURCE_KIND:
            bound_by[(source_kind, source_id)].add(identifier)
    return sorted(src for src, bound in bound_by.items() if bound & splitting and not bound - splitting)


def scopes_about(conn: sqlite3.Connection, ci_id: str) -> dict[Source, list[int]]:
    out: dict[Source, list[int]] = defaultdict(list)
    for scope_id, kind, source_id in conn.execute(
        "SELECT id, source_kind, source_id FROM scope WHERE subject = ? ORDER BY id", (ci_id,)
    ):
        out[(kind, source_id)].append(scope_id)
    return dict(out)


def write_split(
    conn: sqlite3.Connection,
    ci_id: str,
    ci_class: str,
    new_id: str,
    identifiers: list[tuple[str, str]],
    sources: list[Source],
    w: OperationWriter,
) -> list[str]:
    """Create `new_id` and move to it the identifiers, the scopes of `sources` and what only those
    scopes saw. Returns the dependent CIs that moved."""
    # Seen as part of the CI for as long as the CI was: the new one takes its first and last seen.
    conn.execute(
        "INSERT INTO ci (id, class, state, first_seen, last_seen) SELECT ?, ?, 'active', first_seen, "
        "last_seen FROM ci WHERE id = ?",
        (new_id, ci_class, ci_id),
    )
    w.history(new_id, "ci.create", None, None, ci_class)
    w.history(ci_id, "ci.split", "split_off", None, new_id, new_id)
    w.history(new_id, "ci.split", "split_from", None, ci_id, ci_id)
    firsts = {(kind, value): first for _, _, kind, value, first in identifiers_of(conn, [ci_id])}
    for kind, value in identifiers:
        move_identifier(conn, ci_class, kind, value, value, new_id, firsts[(kind, value)])
        w.history(ci_id, "ident.remove", kind, value, None, new_id)
        w.history(new_id, "ident.add", kind, None, value, ci_id)
        w.moved["identifiers_moved"] += 1

    about = scopes_about(conn, ci_id)
    moving_scopes = sorted(scope for src in sources for scope in about.get(src, ()))
    for marks, chunk in chunks(moving_scopes):
        conn.execute(f"UPDATE scope SET subject = ? WHERE id IN ({marks})", (new_id, *chunk))
    w.moved["scopes_moved"] = len(moving_scopes)
    moving = set(moving_scopes)

    # Who saw what: {(ci, rel type, to): scopes}, for the records of the moving scopes.
    seen: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for marks, chunk in chunks(moving_scopes):
        for key in conn.execute(
            f"SELECT ci_id, rel_type, to_ci FROM seen_by WHERE scope_id IN ({marks})", chunk
        ):
            seen[key] = set()
    for key in list(seen):
        seen[key] = {
            r[0]
            for r in conn.execute(
                "SELECT scope_id FROM seen_by WHERE ci_id = ? AND rel_type = ? AND to_ci = ?", key
            )
        }
    prefix = f"{ci_id}/"
    candidates = sorted(key[0] for key, scopes in seen.items() if not key[1] and scopes <= moving)
    dependents = sorted(
        {c for c, _, _, value, _ in identifiers_of(conn, candidates) if value.startswith(prefix)}
    )
    for dep, dep_class, kind, value, first_seen in identifiers_of(conn, dependents):
        if value.startswith(prefix):
            new_value = f"{new_id}/{value[len(prefix) :]}"
            move_identifier(conn, dep_class, kind, value, new_value, dep, first_seen)
            w.history(dep, "ident.remove", kind, value, None)
            w.history(dep, "ident.add", kind, None, new_value)
    w.moved["dependents_moved"] = len(dependents)
    w.involved.update([ci_id, new_id, *dependents])

    moving_deps = set(dependents)
    for row in relations_touching(conn, [ci_id]):
        from_ci, rel_type, to_ci = row[:3]
        other = to_ci if from_ci == ci_id else from_ci
        scopes = seen.get((from_ci, rel_type, to_ci))
        if other not in moving_deps and not (scopes and scopes <= moving):
            continue
        new_key = (new_id if from_ci == ci_id else from_ci, rel_type, new_id if to_ci == ci_id else to_ci)
        conn.execute(DELETE_REL, row[:3])
        conn.execute(INSERT_REL, (*new_key, *row[3:]))
        if row[3] == "active":
            w.history(from_ci, "rel.retire", rel_type, "active", "retired", to_ci)
            w.history(new_key[0], "rel.add", rel_type, None, "active", new_key[2])
        w.moved["relations_repointed"] += 1
        cur = conn.execute(
            "UPDATE seen_by SET ci_id = ?, to_ci = ? WHERE ci_id = ? AND rel_type = ? AND to_ci = ?",
            (new_key[0], new_key[2], from_ci, rel_type, to_ci),
        )
        w.moved["seen_records_moved"] += cur.rowcount
    return dependents


def check_split(
    conn: sqlite3.Connection,
    ci_id: str,
    ci_class: str,
    identifiers: list[tuple[str, str]],
    sources: list[Source] | None,
) -> list[Source]:
    """Refuse a split that cannot be done as asked; the sources whose scopes move."""
    if not identifiers:
        raise CIOperationRefused(
            "name at least one identifier to split off, as KIND=VALUE "
            "(see `fleetgraph ci show ID` for the CI's identifiers)"
        )
    held = {(kind, value) for _, _, kind, value, _ in identifiers_of(conn, [ci_id])}
    for kind, value in identifiers:
        if (kind, value) not in held:
            have = ", ".join(f"{k}={v}" for k, v in sorted(held)) or "none"
            raise CIOperationRefused(
                f"CI {ci_id} has no identifier {kind}={value} (it has: {have}); name identifiers the CI holds"
            )
    if held <= set(identifiers):
        raise CIOperationRefused(
            f"splitting off every identifier of CI {ci_id} would leave it none to be "
            "recognised by: leave at least one identifier on it"
        )
    about = scopes_about(conn, ci_id)
    if sources is None:
        return [src for src in attributed_sources(conn, ci_id, set(identifiers)) if src in about]
    for src in sources:
        if src not in about:
            known = ", ".join(f"{k}:{i}" for k, i in sorted(about)) or "none"
            raise CIOperationRefused(
                f"source {src[0]}:{src[1]} has no staleness scope about CI {ci_id} (sources that do: {known})"
            )
    return sorted(set(sources))
