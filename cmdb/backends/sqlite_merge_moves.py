"""Merging one CI into another, inside the operation's transaction (sqlite_merge.MergeOperations).

First the plan (reads only): the pairs (absorbed, survivor) to merge. The first is the pair asked
for. A dependent CI of an absorbed CI (a package, an interface, an address: cmdb.model scopes) has
identifier values scoped by its host ("<absorbed id>/<value>"); under the survivor they read
"<survivor id>/<value>". When the survivor already has a dependent holding one of those, the two
are the same thing seen twice: they are a pair too (the one holding the strongest kind of the
class wins when several collide). The others keep their id and are only re-keyed.

Then the moves, pair by pair, each journalled with what undoing it needs (sqlite_merge_undo):
identifiers, attributes and observations, relations, staleness scopes and their seen-by rows,
shared identifiers, and last the CI rows (the absorbed ones retired with merged_into set).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cmdb.backends.sqlite_merge_rows import (
    DELETE_REL,
    INSERT_REL,
    SELECT_REL,
    AttributeWrites,
    OperationWriter,
    attribute_rows,
    chunks,
    current_of,
    identifier_holder,
    identifiers_of,
    is_measurement,
    move_identifier,
    relations_touching,
    scoped_identifiers,
)
from cmdb.model import CI_CLASSES


@dataclass(slots=True)
class MergePlan:
    pairs: list[tuple[str, str]]  # (absorbed, survivor), the asked-for pair first
    mapping: dict[str, str] = field(default_factory=dict)  # absorbed -> survivor
    rekeyed: list[str] = field(default_factory=list)  # dependents that stay, re-keyed under a survivor
    classes: dict[str, str] = field(default_factory=dict)  # ci id -> class, for the CIs in the plan

    def rekey(self, value: str) -> str:
        """A dependent's identifier value with its host prefix moved to that host's survivor."""
        head, sep, rest = value.partition("/")
        if sep and head in self.mapping:
            return f"{self.mapping[head]}/{rest}"
        return value


def plan_merge(conn: sqlite3.Connection, survivor: str, absorbed: str, ci_class: str) -> MergePlan:
    plan = MergePlan(
        [(absorbed, survivor)], {absorbed: survivor}, classes={absorbed: ci_class, survivor: ci_class}
    )
    queue = deque([(absorbed, survivor)])
    while queue:
        host, target = queue.popleft()
        prefix = f"{host}/"
        scoped: dict[str, list[tuple[str, str, str]]] = {}
        dependent_class: dict[str, str] = {}
        for ci_id, ci_class_, kind, value, _ in scoped_identifiers(conn, host):
            scoped.setdefault(ci_id, []).append((ci_class_, kind, value))
            dependent_class[ci_id] = ci_class_
        for ci_id in sorted(scoped):
            if ci_id in plan.mapping or ci_id in plan.classes:
                continue
            dep_class = dependent_class[ci_id]
            plan.classes[ci_id] = dep_class
            holders: dict[str, str] = {}
            for ci_class_, kind, value in scoped[ci_id]:
                holder = identifier_holder(conn, ci_class_, kind, f"{target}/{value[len(prefix) :]}")
                if holder is not None and holder != ci_id:
                    holders.setdefault(kind, holder)
            if not holders:
                plan.rekeyed.append(ci_id)
                continue
            kinds = CI_CLASSES[dep_class].identifier_kinds
            strongest = min(holders, key=lambda k: kinds.index(k) if k in kinds else len(kinds))
            same = holders[strongest]
            plan.pairs.append((ci_id, same))
            plan.mapping[ci_id] = same
            plan.classes[same] = dep_class
            queue.append((ci_id, same))
    return plan


def write_merge(conn: sqlite3.Connection, plan: MergePlan, w: OperationWriter) -> None:
    """Every move of the plan, in the order undo reverses: identifiers, attributes, relations,
    scopes, seen-by rows, shared identifiers, CI rows."""
    w.involved.update(plan.classes)
    moved_to = _move_identifiers(conn, plan, w)
    writes = AttributeWrites(conn)
    for absorbed, survivor in plan.pairs:
        _merge_attributes(conn, absorbed, survivor, plan.classes[absorbed], w, writes)
    writes.flush()
    relations = _move_relations(conn, plan, w)
    _move_scopes(conn, plan, w)
    _move_seen(conn, plan, relations, w)
    _move_shared(conn, plan, moved_to, w)
    _merge_ci_rows(conn, plan, w)
    w.moved["dependents_merged"] = len(plan.pairs) - 1
    w.moved["dependents_rekeyed"] = len(plan.rekeyed)


def _move_identifiers(
    conn: sqlite3.Connection, plan: MergePlan, w: OperationWriter
) -> list[tuple[str, str, str, str]]:
    """Absorbed CIs give every identifier to their survivor (re-keyed; one the survivor holds
    already is dropped); dependents that stay are re-keyed in place. Returns (class, kind, value,
    ci) of what each survivor now holds."""
    moved_to = []
    owner = dict(plan.mapping)
    owner.update((ci_id, ci_id) for ci_id in plan.rekeyed)
    for ci_id, ci_class, kind, value, first_seen in identifiers_of(conn, owner):
        target = owner[ci_id]
        new = plan.rekey(value)
        if target == ci_id and new == value:
            continue
        if new != value and identifier_holder(conn, ci_class, kind, new) is not None:
            # the survivor's own dependent holds it already (or another absorbed one took it first)
            conn.execute(
                "DELETE FROM identifier WHERE class = ? AND kind = ? AND value = ?", (ci_class, kind, value)
            )
            w.journal.append(["ident", ci_class, kind, value, None, ci_id, None, first_seen])
            w.history(ci_id, "ident.remove", kind, value, None, target if target != ci_id else None)
            w.moved["identifiers_dropped"] += 1
            continue
        move_identifier(conn, ci_class, kind, value, new, target, first_seen)
        w.journal.append(["ident", ci_class, kind, value, new, ci_id, target, first_seen])
        w.history(ci_id, "ident.remove", kind, value, None, target if target != ci_id else None)
        w.history(target, "ident.add", kind, None, new, ci_id if target != ci_id else None)
        w.moved["identifiers_moved" if target != ci_id else "identifiers_rekeyed"] += 1
        if target != ci_id:
            moved_to.append((ci_class, kind, new, target))
    return moved_to


def _merge_attributes(
    conn: sqlite3.Connection,
    absorbed: str,
    survivor: str,
    ci_class: str,
    w: OperationWriter,
    writes: AttributeWrites,
) -> None:
    """Per attribute of the absorbed CI: the survivor lacks it -> its value and observations move;
    the survivor has it -> the survivor's value stays current and the absorbed CI's values are kept
    as observations (one per source: the newer; none from the survivor's current source)."""
    writes.before_reading(absorbed)
    writes.before_reading(survivor)
    mine = attribute_rows(conn, absorbed)
    if not mine:
        return
    theirs = attribute_rows(conn, survivor, mine)
    for name in sorted(mine):
        rows, target = mine[name], theirs.get(name, {})
        w.journal.append(["attrs", absorbed, survivor, name, list(rows.values()), list(target.values())])
        measured = is_measurement(ci_class, name)
        own_current = current_of(rows)
        if own_current is not None and not measured:
            w.history_json(absorbed, "attr.unset", name, own_current[2], None)
        target_current = current_of(target)
        merged = {src: list(r) for src, r in target.items()}
        if target_current is None:
            for src, r in rows.items():
                merged[src] = list(r)
            if own_current is None and merged:  # observations without a current value: the newest leads
                newest = max(merged, key=lambda s: merged[s][4])
                merged[newest][5] = 1
            w.moved["attributes_moved"] += 1
            w.moved["observations_moved"] += len(rows) - 1
            if own_current is not None and not measured:
                w.history_json(survivor, "attr.set", name, None, own_current[2])
        else:
            current_source = (target_current[0], target_current[1])
            for src, r in rows.items():
                kept = src not in merged or (src != current_source and r[4] > merged[src][4])
                if kept:
                    merged[src] = [*r[:5], 0]
                w.moved["attributes_kept_as_observations" if r[5] else "observations_moved"] += kept
                w.moved["observations_dropped"] += not kept
        writes.write(survivor, name, merged.values(), target)
        writes.write(absorbed, name, (), rows)


def _fold(target: tuple, moved: tuple) -> tuple:
    """One relationship from two: active if either is, the earliest first_seen, the latest
    last_seen, the provenance of the later observation."""
    state = "active" if "active" in (target[3], moved[3]) else "retired"
    provenance = moved[6:] if moved[9] > target[9] else target[6:]
    return (*target[:3], state, min(target[4], moved[4]), max(target[5], moved[5]), *provenance)


def _move_relations(conn: sqlite3.Connection, plan: MergePlan, w: OperationWriter) -> list[tuple]:
    """Re-point every relationship (any state) with an absorbed end to the survivor; one that
    exists already under the new key is folded into it, one that would be a self-loop is dropped.
    Returns the rows as they were."""
    rows = relations_touching(conn, plan.mapping)
    mapping = plan.mapping
    for row in rows:
        from_ci, rel_type, to_ci = row[:3]
        new_from, new_to = mapping.get(from_ci, from_ci), mapping.get(to_ci, to_ci)
        conn.execute(DELETE_REL, row[:3])
        if row[3] == "active":
            w.history(from_ci, "rel.retire", rel_type, "active", "retired", to_ci)
        if new_from == new_to:
            w.journal.append(["rel", list(row), None, None])
            w.moved["relations_dropped"] += 1
            continue
        existing = conn.execute(SELECT_REL, (new_from, rel_type, new_to)).fetchone()
        moved = (new_from, rel_type, new_to, *row[3:])
        if existing is None:
            conn.execute(INSERT_REL, moved)
            written, before_state = moved, None
            w.moved["relations_repointed"] += 1
        else:
            written, before_state = _fold(existing, moved), existing[3]
            conn.execute(DELETE_REL, existing[:3])
            conn.execute(INSERT_REL, written)
            w.moved["relations_folded"] += 1
        w.journal.append(
            ["rel", list(row), [new_from, rel_type, new_to], None if existing is None else list(existing)]
        )
        if written[3] == "active" and before_state != "active":
            w.history(new_from, "rel.add", rel_type, before_state, "active", new_to)
    return rows


def _move_scopes(conn: sqlite3.Connection, plan: MergePlan, w: OperationWriter) -> None:
    """A staleness scope about an absorbed CI (a host) is now about its survivor. When the same
    source and collector has a scope about the survivor too, the two are folded: the seen-by rows
    move into the survivor's (one it has already stays), and its run stamp is the later."""
    scopes = []
    for marks, chunk in chunks(plan.mapping):
        scopes += conn.execute(
            f"SELECT id, source_kind, source_id, collector, subject, last_run FROM scope "
            f"WHERE subject IN ({marks}) ORDER BY id",
            chunk,
        ).fetchall()
    for scope_id, kind, source_id, collector, subject, last_run in scopes:
        survivor = plan.mapping[subject]
        target = conn.execute(
            "SELECT id, last_run FROM scope WHERE source_kind = ? AND source_id = ? AND "
            "collector = ? AND subject = ?",
            (kind, source_id, collector, survivor),
        ).fetchone()
        if target is None:
            conn.execute("UPDATE scope SET subject = ? WHERE id = ?", (survivor, scope_id))
            w.journal.append(
                ["scope", scope_id, kind, source_id, collector, subject, survivor, last_run, None, None]
            )
            w.moved["scopes_moved"] += 1
            continue
        target_id, target_run = target
        for key_rest in conn.execute(
            "SELECT ci_id, rel_type, to_ci, last_seen_run, missed FROM seen_by WHERE scope_id = ?",
            (scope_id,),
        ).fetchall():
            _move_seen_row(conn, scope_id, key_rest, target_id, tuple(key_rest[:3]), w)
        conn.execute("UPDATE scope SET last_run = ? WHERE id = ?", (max(last_run, target_run), target_id))
        conn.execute("DELETE FROM scope WHERE id = ?", (scope_id,))
        w.journal.append(
            [
                "scope",
                scope_id,
                kind,
                source_id,
                collector,
                subject,
                survivor,
                last_run,
                target_id,
                target_run,
            ]
        )
        w.moved["scopes_folded"] += 1


def _move_seen_row(
    conn: sqlite3.Connection,
    scope_id: int,
    row: tuple,
    new_scope: int,
    new_key: tuple[str, str, str] | None,
    w: OperationWriter,
) -> None:
    """Move one seen-by row (row: ci_id, rel_type, to_ci, last_seen_run, missed) to a new scope
    and/or key; new_key None drops it. A row already at the new key stays, and this one goes."""
    key, values = tuple(row[:3]), list(row[3:])
    conn.execute(
        "DELETE FROM seen_by WHERE scope_id = ? AND ci_id = ? AND rel_type = ? AND to_ci = ?",
        (scope_id, *key),
    )
    target = (
        None
        if new_key is None
        else conn.execute(
            "SELECT last_seen_run, missed FROM seen_by "
            "WHERE scope_id = ? AND ci_id = ? AND rel_type = ? AND to_ci = ?",
            (new_scope, *new_key),
        ).fetchone()
    )
    if new_key is not None and target is None:
        conn.execute(
            "INSERT INTO seen_by (scope_id, ci_id, rel_type, to_ci, last_seen_run, missed) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (new_scope, *new_key, *values),
        )
        w.moved["seen_records_moved"] += 1
    else:
        w.moved["seen_records_dropped"] += 1
    w.journal.append(
        [
            "seen",
            scope_id,
            list(key),
            new_scope,
            None if new_key is None else list(new_key),
            values,
            None if target is None else list(target),
        ]
    )


def _move_seen(conn: sqlite3.Connection, plan: MergePlan, relations: list[tuple], w: OperationWriter) -> None:
    """Re-key the seen-by rows of absorbed CIs and of the relations re-pointed (self-loops go)."""
    mapping = plan.mapping
    rows: dict[tuple, tuple] = {}
    for marks, chunk in chunks(mapping):
        for row in conn.execute(
            f"SELECT scope_id, ci_id, rel_type, to_ci, last_seen_run, missed FROM seen_by "
            f"WHERE ci_id IN ({marks})",
            chunk,
        ):
            rows[row[:4]] = row
    for from_ci, rel_type, to_ci, *_ in relations:
        if to_ci in mapping and from_ci not in mapping:
            for row in conn.execute(
                "SELECT scope_id, ci_id, rel_type, to_ci, last_seen_run, missed FROM seen_by "
                "WHERE ci_id = ? AND rel_type = ? AND to_ci = ?",
                (from_ci, rel_type, to_ci),
            ):
                rows[row[:4]] = row
    for key in sorted(rows):
        scope_id, ci_id, rel_type, to_ci, *_ = rows[key]
        new_ci, new_to = mapping.get(ci_id, ci_id), mapping.get(to_ci, to_ci) if to_ci else to_ci
        loop = bool(rel_type) and new_ci == new_to
        _move_seen_row(
            conn, scope_id, rows[key][1:], scope_id, None if loop else (new_ci, rel_type, new_to), w
        )


def _move_shared(
    conn: sqlite3.Connection, plan: MergePlan, moved_to: list[tuple[str, str, str, str]], w: OperationWriter
) -> None:
    """Shared-identifier rows of absorbed CIs go to their survivor, unless it holds or shares the
    value already; a survivor's own row for a value it now holds goes too."""
    rows = []
    for marks, chunk in chunks(plan.mapping):
        rows += conn.execute(
            f"SELECT class, kind, value, ci_id, first_seen FROM shared_identifier "
            f"WHERE ci_id IN ({marks}) ORDER BY class, kind, value, ci_id",
            chunk,
        ).fetchall()
    for ci_class, kind, value, ci_id, first_seen in rows:
        survivor, new = plan.mapping[ci_id], plan.rekey(value)
        conn.execute(
            "DELETE FROM shared_identifier WHERE class = ? AND kind = ? AND value = ? AND ci_id = ?",
            (ci_class, kind, value, ci_id),
        )
        holds = identifier_holder(conn, ci_class, kind, new) == survivor
        shares = conn.execute(
            "SELECT 1 FROM shared_identifier WHERE class = ? AND kind = ? AND value = ? AND ci_id = ?",
            (ci_class, kind, new, survivor),
        ).fetchone()
        if holds or shares:
            w.journal.append(["shared", ci_class, kind, value, ci_id, first_seen, None, None])
            w.moved["shared_identifiers_dropped"] += 1
        else:
            conn.execute(
                "INSERT INTO shared_identifier (class, kind, value, ci_id, first_seen) "
                "VALUES (?, ?, ?, ?, ?)",
                (ci_class, kind, new, survivor, first_seen),
            )
            w.journal.append(["shared", ci_class, kind, value, ci_id, first_seen, new, survivor])
            w.moved["shared_identifiers_moved"] += 1
    for ci_class, kind, value, survivor in moved_to:
        row = conn.execute(
            "SELECT first_seen FROM shared_identifier WHERE class = ? AND kind = ? AND value = ? "
            "AND ci_id = ?",
            (ci_class, kind, value, survivor),
        ).fetchone()
        if row is not None:
            conn.execute(
                "DELETE FROM shared_identifier WHERE class = ? AND kind = ? AND value = ? AND ci_id = ?",
                (ci_class, kind, value, survivor),
            )
            w.journal.append(["shared", ci_class, kind, value, survivor, row[0], None, None])
            w.moved["shared_identifiers_dropped"] += 1


def _merge_ci_rows(conn: sqlite3.Connection, plan: MergePlan, w: OperationWriter) -> None:
    """Absorbed CIs retire with merged_into; a survivor keeps the earlier first_seen, and a retired
    survivor dependent that absorbs an active one is active again."""
    for absorbed, survivor in plan.pairs:
        a = conn.execute("SELECT state, merged_into, first_seen FROM ci WHERE id = ?", (absorbed,)).fetchone()
        s = conn.execute("SELECT state, merged_into, first_seen FROM ci WHERE id = ?", (survivor,)).fetchone()
        conn.execute("UPDATE ci SET state = 'retired', merged_into = ? WHERE id = ?", (survivor, absorbed))
        w.journal.append(["ci", absorbed, *a, "retired", survivor, a[2]])
        new_state = "active" if "active" in (a[0], s[0]) else s[0]
        first_seen = min(a[2], s[2])
        conn.execute(
            "UPDATE ci SET state = ?, first_seen = ? WHERE id = ?", (new_state, first_seen, survivor)
        )
        w.journal.append(["ci", survivor, *s, new_state, s[1], first_seen])
        w.history(absorbed, "ci.merge", "merged_into", None, survivor, survivor)
        w.history(survivor, "ci.merge", "absorbed", None, absorbed, absorbed)
        if new_state != s[0]:
            w.history(survivor, "ci.reactivate", None, s[0], new_state)


def journal_cis(journal: list[list[Any]]) -> set[str]:
    """Every CI a journal touches (to tell which later operations overlap)."""
    out: set[str] = set()
    for entry in journal:
        if entry[0] == "ci":
            out.add(entry[1])
        elif entry[0] == "ident":
            out.update(c for c in (entry[5], entry[6]) if c)
    return out
