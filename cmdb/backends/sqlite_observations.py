"""Reads of attribute observations (attribute precedence, reconcile.precedence) for SQLiteStore.

The `attribute` row of a CI's attribute is its current value *and* the observation of the source
that won it; the `observation` table holds the other sources' latest values only. A CI reported by
one source, the common case, therefore has no observation rows and its reports write none: the
set of observations of an attribute is exactly the current value plus its observation rows.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterable

from cmdb.backends.sqlite_schema import json_decode
from cmdb.changes import Provenance
from cmdb.store import AttributeValue, ObservedValue

_COLUMNS = "ci_id, name, value, source_kind, source_id, report_id, observed_at"  # both tables

ProvenanceOf = Callable[[str, str, "str | None", int], Provenance]


def other_observations(conn: sqlite3.Connection, ci_ids: Iterable[str], in_chunks: Callable,
                       provenance: ProvenanceOf) -> dict[str, dict[str, list[AttributeValue]]]:
    out: dict[str, dict[str, list[AttributeValue]]] = {}
    for marks, chunk in in_chunks(ci_ids):
        for ci_id, name, value, kind, source_id, report_id, observed in conn.execute(
                f"SELECT {_COLUMNS} FROM observation WHERE ci_id IN ({marks})", chunk):
            out.setdefault(ci_id, {}).setdefault(name, []).append(
                AttributeValue(json_decode(value), provenance(kind, source_id, report_id, observed)))
    return out


def observations(conn: sqlite3.Connection, ci_id: str, provenance: ProvenanceOf) -> list[ObservedValue]:
    found = [ObservedValue(r[1], json_decode(r[2]), provenance(*r[3:7]), current)
             for current, table in ((True, "attribute"), (False, "observation"))
             for r in conn.execute(f"SELECT {_COLUMNS} FROM {table} WHERE ci_id = ?", (ci_id,))]
    found.sort(key=lambda o: (o.name, not o.current, -o.provenance.observed_at.timestamp(),
                              o.provenance.source_kind, o.provenance.source_id))
    return found
