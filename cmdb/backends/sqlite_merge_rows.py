"""Shared pieces of the CI operations (sqlite_merge): the operation's writer (history rows stamped
with the operator, the undo journal, the counts of what moved) and the row reads they all need.

Everything here runs inside the operation's write transaction. Values are bound as parameters;
the only text put into SQL is `?` placeholders and names from cmdb.model (relation types).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cmdb.backends.sqlite_schema import encode_json
from cmdb.model import CI_CLASSES

_HISTORY_ROW = (
    "INSERT INTO history (ci_id, kind, name, before, after, related_ci, "
    "source_kind, source_id, report_id, observed_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CHUNK = 500

REL_COLUMNS = (
    "from_ci, type, to_ci, state, first_seen, last_seen, source_kind, source_id, report_id, observed_at"
)
INSERT_REL = f"INSERT INTO relationship ({REL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
DELETE_REL = "DELETE FROM relationship WHERE from_ci = ? AND type = ? AND to_ci = ?"
SELECT_REL = f"SELECT {REL_COLUMNS} FROM relationship WHERE from_ci = ? AND type = ? AND to_ci = ?"

# The (class, kind) keys whose values are scoped by a host id (cmdb.changes.IdentifierClaim).
_SCOPED_KEYS = tuple(
    (c.name, kind) for c in CI_CLASSES.values() if c.is_dependent for kind in c.identifier_kinds
)


def chunks(values: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), _CHUNK):
        chunk = distinct[start : start + _CHUNK]
        yield ",".join("?" * len(chunk)), chunk


@dataclass(slots=True)
class OperationWriter:
    """History rows of one operation, its undo journal and its counts. `tail` is the provenance
    columns of every history row: (operator, actor, operation ref, at, at)."""

    conn: sqlite3.Connection
    tail: tuple[str, str, str, int, int]
    journal: list[list[Any]] = field(default_factory=list)
    moved: Counter[str] = field(default_factory=Counter)
    involved: set[str] = field(default_factory=set)
    _history: list[tuple] = field(default_factory=list)

    @property
    def at(self) -> int:
        return self.tail[3]

    def history(
        self, ci_id: str, kind: str, name: str | None, before: Any, after: Any, related: str | None = None
    ) -> None:
        self._history.append(
            (
                ci_id,
                kind,
                name,
                None if before is None else encode_json(before),
                None if after is None else encode_json(after),
                related,
                *self.tail,
            )
        )

    def history_json(
        self, ci_id: str, kind: str, name: str | None, before: str | None, after: str | None
    ) -> None:
        """A history row whose values are stored JSON text already (attribute values)."""
        self._history.append((ci_id, kind, name, before, after, None, *self.tail))

    def flush(self) -> int:
        """Write the history rows gathered so far, in the order they were made."""
        rows, self._history = self._history, []
        if rows:
            self.conn.executemany(_HISTORY_ROW, rows)
        return len(rows)


def ci_row(conn: sqlite3.Connection, ci_id: str) -> tuple[str, str, str, str | None, int] | None:
    """(id, class, state, merged_into, first_seen) of a CI."""
    return conn.execute(
        "SELECT id, class, state, merged_into, first_seen FROM ci WHERE id = ?", (ci_id,)
    ).fetchone()


def identifier_holder(conn: sqlite3.Connection, ci_class: str, kind: str, value: str) -> str | None:
    row = conn.execute(
        "SELECT ci_id FROM identifier WHERE class = ? AND kind = ? AND value = ?", (ci_class, kind, value)
    ).fetchone()
    return None if row is None else row[0]


def identifiers_of(conn: sqlite3.Connection, ci_ids: Iterable[str]) -> list[tuple[str, str, str, str, int]]:
    """(ci_id, class, kind, value, first_seen) of the CIs' identifiers, in a stable order."""
    out: list[tuple[str, str, str, str, int]] = []
    for marks, chunk in chunks(ci_ids):
        out += conn.execute(
            f"SELECT ci_id, class, kind, value, first_seen FROM identifier WHERE ci_id IN ({marks})", chunk
        ).fetchall()
    out.sort()
    return out


def move_identifier(
    conn: sqlite3.Connection, ci_class: str, kind: str, old: str, new: str, to_ci: str, first_seen: int
) -> None:
    conn.execute("DELETE FROM identifier WHERE class = ? AND kind = ? AND value = ?", (ci_class, kind, old))
    conn.execute(
        "INSERT INTO identifier (class, kind, value, ci_id, first_seen) VALUES (?, ?, ?, ?, ?)",
        (ci_class, kind, new, to_ci, first_seen),
    )


def scoped_identifiers(conn: sqlite3.Connection, host: str) -> list[tuple[str, str, str, str, int]]:
    """(ci_id, class, kind, value, first_seen) of the identifiers scoped by `host` ("<host>/..."):
    its dependent CIs, whatever relations they hang by. One range scan of the key per kind."""
    low, high = f"{host}/", f"{host}0"  # "0" follows "/": the range is exactly the prefix
    out: list[tuple[str, str, str, str, int]] = []
    for ci_class, kind in _SCOPED_KEYS:
        out += conn.execute(
            "SELECT ci_id, class, kind, value, first_seen FROM identifier "
            "WHERE class = ? AND kind = ? AND value >= ? AND value < ?",
            (ci_class, kind, low, high),
        ).fetchall()
    out.sort()
    return out


def relations_touching(conn: sqlite3.Connection, ci_ids: Iterable[str]) -> list[tuple]:
    """Every relationship row (any state) with an end in ci_ids, in key order, once each."""
    found: dict[tuple[str, str, str], tuple] = {}
    ids = list(ci_ids)
    for marks, chunk in chunks(ids):
        for end in ("from_ci", "to_ci"):
            for row in conn.execute(
                f"SELECT {REL_COLUMNS} FROM relationship WHERE {end} IN ({marks})", chunk
            ):
                found[row[:3]] = row
    return [found[key] for key in sorted(found)]


def attribute_rows(
    conn: sqlite3.Connection, ci_id: str, names: Iterable[str] | None = None
) -> dict[str, dict[tuple[str, str], list[Any]]]:
    """{name: {(source kind, source id): [kind, id, value JSON, report id, observed_at, current]}}:
    the current value (current=1) and the other sources' observations of a CI's attributes (of
    `names` only, when given; one name is two key lookups)."""
    out: dict[str, dict[tuple[str, str], list[Any]]] = {}
    wanted = None if names is None else set(names)
    one = next(iter(wanted)) if wanted is not None and len(wanted) == 1 else None
    for current, table in ((1, "attribute"), (0, "observation")):
        sql = (
            f"SELECT name, value, source_kind, source_id, report_id, observed_at FROM {table} WHERE ci_id = ?"
        )
        rows = (
            conn.execute(sql + " AND name = ?", (ci_id, one))
            if one is not None
            else conn.execute(sql, (ci_id,))
        )
        for name, value, kind, source_id, report_id, observed in rows:
            if wanted is None or name in wanted:
                out.setdefault(name, {})[(kind, source_id)] = [
                    kind,
                    source_id,
                    value,
                    report_id,
                    observed,
                    current,
                ]
    return out


_DELETE_CURRENT = "DELETE FROM attribute WHERE ci_id = ? AND name = ?"
_DELETE_OBSERVATION = (
    "DELETE FROM observation WHERE ci_id = ? AND name = ? AND source_kind = ? AND source_id = ?"
)
_PUT_CURRENT = (
    "INSERT OR REPLACE INTO attribute (ci_id, name, source_kind, source_id, value, report_id, "
    "observed_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_OBSERVATION = (
    "INSERT OR REPLACE INTO observation (ci_id, name, source_kind, source_id, value, report_id, "
    "observed_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class AttributeWrites:
    """Attribute and observation writes gathered and sent as a few `executemany`s (a merge writes
    ten thousand of them for a machine with a thousand packages). The caller reads a CI's rows
    before it writes them; a CI written twice flushes the first writes before it is read again."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._pending: dict[str, list[tuple]] = {
            _DELETE_CURRENT: [],
            _DELETE_OBSERVATION: [],
            _PUT_CURRENT: [],
            _PUT_OBSERVATION: [],
        }
        self._written: set[str] = set()
        self._written_names: set[tuple[str, str]] = set()

    def before_reading(self, ci_id: str, name: str | None = None) -> None:
        """Flush what is pending for the CI (for one of its attributes, with name)."""
        if (ci_id, name) in self._written_names if name is not None else ci_id in self._written:
            self.flush()

    def write(
        self, ci_id: str, name: str, rows: Iterable[list[Any]], before: dict[tuple[str, str], list[Any]]
    ) -> None:
        """Make the CI's current value and observations of `name` be `rows` (see attribute_rows),
        given what it holds now (`before`): only the rows that differ are written."""
        self._written.add(ci_id)
        self._written_names.add((ci_id, name))
        after = {(r[0], r[1]): r for r in rows}
        pending = self._pending
        for src, old in before.items():
            new = after.get(src)
            if new is None or new[5] != old[5]:
                if old[5]:
                    pending[_DELETE_CURRENT].append((ci_id, name))
                else:
                    pending[_DELETE_OBSERVATION].append((ci_id, name, *src))
        for src, new in after.items():
            if before.get(src) != new:
                pending[_PUT_CURRENT if new[5] else _PUT_OBSERVATION].append((ci_id, name, *src, *new[2:5]))

    def flush(self) -> None:
        for sql, params in self._pending.items():  # deletes first: a row moving between tables
            if params:
                self.conn.executemany(sql, params)
                params.clear()
        self._written.clear()
        self._written_names.clear()


def current_of(rows: dict[tuple[str, str], list[Any]]) -> list[Any] | None:
    return next((r for r in rows.values() if r[5]), None)


def is_measurement(ci_class: str, name: str) -> bool:
    return name in CI_CLASSES[ci_class].measurements
