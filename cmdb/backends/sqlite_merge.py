"""CI merge, split and undo on the SQLite store (cmdb.operations): the `Store` methods, as a mixin
of SQLiteStore.

Each operation is one write transaction: it checks what it is asked (CIOperationRefused, nothing
written), numbers itself with a `ci_operation` row, does its moves (sqlite_merge_moves,
sqlite_split, sqlite_merge_undo) with history rows stamped {operator, actor, ci-operation-N,
time}, and stores in `ci_operation.moved` the counts of what moved, the CIs it touched and, for a
merge, the journal that undoing it plays backwards. A dry run does all of it and rolls back.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from cmdb.backends import sqlite_split
from cmdb.backends.sqlite_fingerprint import forget_fingerprints
from cmdb.backends.sqlite_merge_moves import journal_cis, plan_merge, write_merge
from cmdb.backends.sqlite_merge_rows import OperationWriter, ci_row
from cmdb.backends.sqlite_merge_undo import undo_merge
from cmdb.backends.sqlite_schema import encode_json, from_micros, json_decode, to_micros
from cmdb.ids import new_ci_id
from cmdb.model import CI_CLASSES
from cmdb.operations import (
    MAX_ACTOR_LENGTH,
    MAX_REASON_LENGTH,
    OPERATOR_SOURCE_KIND,
    CIOperation,
    CIOperationKind,
    CIOperationRefused,
    operation_ref,
)

_OPERATION_COLUMNS = (
    "seq, kind, ci_id, other_ci, actor, reason, at, undone_by, "
    "json_extract(moved, '$.undoes'), json_extract(moved, '$.summary'), "
    "json_extract(moved, '$.dependents')"
)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run, so that it rolls back, carrying the outcome."""

    def __init__(self, operation: CIOperation):
        super().__init__("dry run")
        self.operation = operation


class MergeOperations:
    """The CI operation half of the Store contract for SQLiteStore (a mixin)."""

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def ci_operation_epoch(self) -> int:
        """The seq of the newest CI operation (0: none): reconcile stamps its change sets with it."""
        return self._reader().execute("SELECT COALESCE(max(seq), 0) FROM ci_operation").fetchone()[0]

    def _transaction(self, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------
    def merge_cis(
        self, survivor: str, absorbed: str, actor: str, reason: str | None = None, dry_run: bool = False
    ) -> CIOperation:
        actor, reason = _check_actor(actor), _check_reason(reason)

        def check(conn: sqlite3.Connection) -> str:
            return _check_merge(conn, survivor, absorbed)

        def run(conn: sqlite3.Connection, w: OperationWriter, ci_class: str) -> dict[str, Any]:
            plan = plan_merge(conn, survivor, absorbed, ci_class)
            forget_fingerprints(conn, plan.classes)  # the reconcile fast path's promises about them
            write_merge(conn, plan, w)
            return {"journal": w.journal, "dependents": plan.pairs[1:]}

        return self._operate("merge", survivor, absorbed, actor, reason, dry_run, check, run)

    def split_ci(
        self,
        ci_id: str,
        identifiers: list[tuple[str, str]],
        actor: str,
        reason: str | None = None,
        sources: list[tuple[str, str]] | None = None,
        dry_run: bool = False,
    ) -> CIOperation:
        actor, reason = _check_actor(actor), _check_reason(reason)
        wanted = list(dict.fromkeys((str(k), str(v)) for k, v in identifiers))
        chosen = None if sources is None else [(str(k), str(i)) for k, i in sources]
        new_id = new_ci_id()

        def check(conn: sqlite3.Connection) -> tuple[str, list[tuple[str, str]]]:
            ci_class = _check_operable(conn, ci_id, "split")[1]
            return ci_class, sqlite_split.check_split(conn, ci_id, ci_class, wanted, chosen)

        def run(conn: sqlite3.Connection, w: OperationWriter, checked: tuple[str, list]) -> dict[str, Any]:
            ci_class, moving = checked
            forget_fingerprints(conn, [ci_id])  # with what it hosts
            dependents = sqlite_split.write_split(conn, ci_id, ci_class, new_id, wanted, moving, w)
            return {
                "identifiers": [list(i) for i in wanted],
                "sources": [list(s) for s in moving],
                "moved_dependents": dependents,
            }

        return self._operate("split", ci_id, new_id, actor, reason, dry_run, check, run)

    def undo_ci_operation(
        self, seq: int, actor: str, reason: str | None = None, dry_run: bool = False
    ) -> CIOperation:
        actor, reason = _check_actor(actor), _check_reason(reason)
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise CIOperationRefused(
                f"an operation number is a positive integer, not {seq!r} (see `fleetgraph ci operations`)"
            )
        row = (
            self._reader()
            .execute("SELECT kind, ci_id, other_ci FROM ci_operation WHERE seq = ?", (seq,))
            .fetchone()
        )
        if row is None:
            raise CIOperationRefused(f"there is no CI operation {seq} (see `fleetgraph ci operations`)")
        kind, ci_id, other_ci = row

        def check(conn: sqlite3.Connection) -> tuple[dict[str, Any], str | None]:
            moved = _check_undo(conn, seq)
            return moved, None if kind == "merge" else _check_merge(conn, ci_id, other_ci, undoing=seq)

        def run(
            conn: sqlite3.Connection, w: OperationWriter, checked: tuple[dict[str, Any], str | None]
        ) -> dict[str, Any]:
            moved, ci_class = checked
            if ci_class is None:  # a merge: its journal backwards
                forget_fingerprints(conn, moved.get("cis", ()))
                undo_merge(conn, moved["journal"], seq, w)
                w.involved.update(moved.get("cis", ()))
                return {"undoes": seq}
            plan = plan_merge(conn, ci_id, other_ci, ci_class)  # a split: merged back
            forget_fingerprints(conn, plan.classes)
            write_merge(conn, plan, w)
            return {"undoes": seq, "journal": w.journal, "dependents": plan.pairs[1:]}

        undo_kind: CIOperationKind = "split" if kind == "merge" else "merge"
        return self._operate(undo_kind, ci_id, other_ci, actor, reason, dry_run, check, run, undoes=seq)

    def ci_operations(self, ci_id: str | None = None) -> list[CIOperation]:
        conn = self._reader()
        if ci_id is None:
            rows = conn.execute(f"SELECT {_OPERATION_COLUMNS} FROM ci_operation ORDER BY seq").fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_OPERATION_COLUMNS} FROM ci_operation WHERE ci_id = ? OR other_ci = ? ORDER BY seq",
                (ci_id, ci_id),
            ).fetchall()
        return [_operation(r) for r in rows]

    # -- one operation, one transaction --------------------------------------------------------
    def _operate(
        self,
        kind: CIOperationKind,
        ci_id: str,
        other_ci: str,
        actor: str,
        reason: str | None,
        dry_run: bool,
        check: Callable[[sqlite3.Connection], Any],
        run: Callable[[sqlite3.Connection, OperationWriter, Any], dict[str, Any]],
        undoes: int | None = None,
    ) -> CIOperation:
        """check(conn) refuses or returns what run needs; run(conn, writer, checked) does the moves
        and returns what to store beside the counts (the journal of a merge, ...)."""
        at = datetime.now(timezone.utc)
        at_us = to_micros(at)
        try:
            with self._transaction() as conn:
                checked = check(conn)
                # A split's new CI does not exist yet: the row names the split CI twice until the end.
                seq = conn.execute(
                    "INSERT INTO ci_operation (kind, ci_id, other_ci, actor, reason, moved, at) "
                    "VALUES (?, ?, ?, ?, ?, '{}', ?)",
                    (
                        kind,
                        ci_id,
                        ci_id if kind == "split" and undoes is None else other_ci,
                        actor,
                        reason,
                        at_us,
                    ),
                ).lastrowid
                w = OperationWriter(conn, (OPERATOR_SOURCE_KIND, actor, operation_ref(seq), at_us, at_us))
                extra = run(conn, w, checked)
                w.flush()
                summary = {k: v for k, v in sorted(w.moved.items()) if v}
                dependents = [list(p) for p in extra.get("dependents", ())]
                moved = {
                    **extra,
                    "summary": summary,
                    "dependents": dependents,
                    "cis": sorted(w.involved | journal_cis(extra.get("journal", ())) | {ci_id, other_ci}),
                }
                conn.execute(
                    "UPDATE ci_operation SET other_ci = ?, moved = ? WHERE seq = ?",
                    (other_ci, encode_json(moved), seq),
                )
                if undoes is not None:
                    conn.execute("UPDATE ci_operation SET undone_by = ? WHERE seq = ?", (seq, undoes))
                operation = CIOperation(
                    seq,
                    kind,
                    ci_id,
                    other_ci,
                    actor,
                    reason,
                    at,
                    None,
                    undoes,
                    summary,
                    tuple((a, s) for a, s in dependents),
                    dry_run,
                )
                if dry_run:
                    raise _DryRun(operation)
                return operation
        except _DryRun as done:
            return done.operation


# -- checks ------------------------------------------------------------------------------------


def _check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise CIOperationRefused("name who does this (--actor NAME): an operation is recorded with its actor")
    actor = actor.strip()
    if len(actor) > MAX_ACTOR_LENGTH or _has_control(actor):
        raise CIOperationRefused(
            f"the actor must be a name of at most {MAX_ACTOR_LENGTH} printable characters"
        )
    return actor


def _check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON_LENGTH or _has_control(reason.replace("\n", " ").replace("\t", " ")):
        raise CIOperationRefused(
            f"the reason must be text of at most {MAX_REASON_LENGTH} characters, without control characters"
        )
    return reason.strip()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


def _check_operable(conn: sqlite3.Connection, ci_id: str, what: str) -> tuple[str, str]:
    """(id, class) of an active, unmerged, non-dependent CI; refused otherwise."""
    row = ci_row(conn, ci_id)
    if row is None:
        raise CIOperationRefused(f"there is no CI {ci_id}")
    _, ci_class, state, merged_into, _ = row
    if merged_into is not None:
        raise CIOperationRefused(
            f"CI {ci_id} was merged into {merged_into}: it cannot be {what}d; "
            f"undo that merge first (fleetgraph ci operations {ci_id})"
        )
    if state != "active":
        raise CIOperationRefused(f"CI {ci_id} is retired: only active CIs can be {what}d")
    if CI_CLASSES[ci_class].is_dependent:
        raise CIOperationRefused(
            f"CI {ci_id} is a {ci_class}, a dependent CI identified within its host: "
            f"{what} the hosts instead (their matching dependents merge with them)"
        )
    return ci_id, ci_class


def _check_merge(conn: sqlite3.Connection, survivor: str, absorbed: str, undoing: int | None = None) -> str:
    if survivor == absorbed:
        raise CIOperationRefused(f"cannot merge CI {survivor} into itself: name two different CIs")
    try:
        _, survivor_class = _check_operable(conn, survivor, "merge")
        _, absorbed_class = _check_operable(conn, absorbed, "merge")
    except CIOperationRefused as exc:
        if undoing is None:
            raise
        raise CIOperationRefused(f"operation {undoing} cannot be undone: {exc}") from None
    if survivor_class != absorbed_class:
        raise CIOperationRefused(
            f"CI {survivor} is a {survivor_class} and CI {absorbed} a {absorbed_class}: "
            "only CIs of one class can be merged"
        )
    return survivor_class


def _check_undo(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    """The operation's stored `moved`, when it can be undone now; refused with why otherwise."""
    kind, undone_by, moved_text = conn.execute(
        "SELECT kind, undone_by, moved FROM ci_operation WHERE seq = ?", (seq,)
    ).fetchone()
    moved = json_decode(moved_text)
    if undone_by is not None:
        raise CIOperationRefused(f"operation {seq} was undone already, by operation {undone_by}")
    if moved.get("undoes") is not None:
        again = "merge" if kind == "merge" else "split"
        raise CIOperationRefused(
            f"operation {seq} is the undo of operation {moved['undoes']}: to do that "
            f"{moved['undoes']} again, run `fleetgraph ci {again}` again"
        )
    if kind == "merge" and "journal" not in moved:
        raise CIOperationRefused(f"operation {seq} has no journal to undo it with")
    mine = set(moved.get("cis", ()))
    later = conn.execute(
        "SELECT seq, kind, undone_by, moved FROM ci_operation WHERE seq > ? ORDER BY seq DESC", (seq,)
    ).fetchall()
    for other, other_kind, other_undone, other_moved in later:
        details = json_decode(other_moved)
        target = details.get("undoes")
        if other_undone is not None or (target is not None and target > seq):
            continue  # undone since, or the undo of an operation after this one: they cancel out
        overlap = mine & set(details.get("cis", ()))
        if overlap:
            raise CIOperationRefused(
                f"operation {other} ({other_kind}) came after operation {seq} and touched "
                f"CI {sorted(overlap)[0]}: undo operation {other} first"
            )
    return moved


def _operation(row: tuple) -> CIOperation:
    seq, kind, ci_id, other_ci, actor, reason, at, undone_by, undoes, summary, dependents = row
    return CIOperation(
        seq,
        kind,
        ci_id,
        other_ci,
        actor,
        reason,
        from_micros(at),
        undone_by,
        undoes,
        json_decode(summary) if summary else {},
        tuple((a, s) for a, s in json_decode(dependents)) if dependents else (),
    )
