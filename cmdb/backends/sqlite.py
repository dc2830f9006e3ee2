"""The embedded store: one SQLite file in WAL mode, the default system of record.

Threading: the collector calls the store from a thread pool while a reconcile thread applies.
All writes go through one writer connection guarded by a lock (SQLite has one writer at a time
anyway; BEGIN IMMEDIATE plus the busy timeout also covers other processes, such as the CLI).
Reads use one connection per thread: WAL lets them run while a write is in progress, and each
multi-statement read runs in its own read transaction so it sees one snapshot.

Durability: the writer runs `synchronous=NORMAL` and switches to FULL around `put_report` and
token writes, whose commits are fsynced before they return (the collector acknowledges 202 only
after that). `apply` commits at NORMAL: a commit lost to a power cut rolls back whole (WAL
commits are atomic), together with the mark that the report was reconciled, so the report is
still pending and is reconciled again: exactly-once holds without an fsync per apply. The next
FULL commit (the next put_report) syncs the WAL up to and including any earlier commits.

Every value from input is bound as a parameter; the only text put into SQL is `?` placeholders.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal

from cmdb.backends import (
    sqlite_drift,
    sqlite_enroll,
    sqlite_fingerprint,
    sqlite_merge,
    sqlite_observations,
    sqlite_records,
    sqlite_reports,
    sqlite_staleness,
)
from cmdb.backends.sqlite_apply import write_change_set
from cmdb.backends.sqlite_schema import decode_json, encode_json, from_micros, json_decode, migrate, to_micros
from cmdb.changes import ChangeSet, Provenance
from cmdb.graph import build_graph
from cmdb.store import (
    CI,
    ApplyResult,
    AttributeValue,
    ChangeSetStale,
    CIState,
    Enrollment,
    EnrollmentTokenInfo,
    HistoryRow,
    Identifier,
    ObservedValue,
    Relationship,
    ScopeState,
    SeenRecord,
    TokenInfo,
    TokenPrincipal,
)

if TYPE_CHECKING:
    import networkx as nx

# IN lists are chunked below SQLite's variable limit and padded to a few fixed sizes, so the
# statement cache holds a handful of statements rather than one per list length.
_IN_SIZES = (1, 4, 16, 64, 256, 512)
_IN_MARKS = {n: ",".join("?" * n) for n in _IN_SIZES}

_CI_COLUMNS = "id, class, state, first_seen, last_seen, merged_into"
_ATTR_COLUMNS = "ci_id, name, value, source_kind, source_id, report_id, observed_at"
_REL_COLUMNS = ("type, from_ci, to_ci, state, first_seen, last_seen, "
                "source_kind, source_id, report_id, observed_at")
_HISTORY_COLUMNS = ("seq, ci_id, kind, name, before, after, related_ci, source_kind, source_id, "
                    "report_id, observed_at, recorded_at")


def _in_chunks(values: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """(placeholders, values) chunks of the distinct values, padded with repeats of the last."""
    distinct = list(dict.fromkeys(values))
    top = _IN_SIZES[-1]
    for start in range(0, len(distinct), top):
        chunk = distinct[start:start + top]
        size = next(n for n in _IN_SIZES if n >= len(chunk))
        chunk.extend([chunk[-1]] * (size - len(chunk)))
        yield _IN_MARKS[size], chunk


class _Rows:
    """Turns rows into contract objects, sharing one Provenance per distinct source stamp (the
    attributes a report wrote share it) and one datetime per distinct time."""

    def __init__(self) -> None:
        self._provenance: dict[tuple, Provenance] = {}
        self._times: dict[int, datetime] = {}

    def time(self, micros: int) -> datetime:
        when = self._times.get(micros)
        if when is None:
            when = self._times[micros] = from_micros(micros)
        return when

    def provenance(self, source_kind: str, source_id: str, report_id: str | None, observed: int) -> Provenance:
        key = (source_kind, source_id, report_id, observed)
        prov = self._provenance.get(key)
        if prov is None:
            prov = self._provenance[key] = Provenance(source_kind, source_id, report_id, self.time(observed))
        return prov

    def ci(self, row: tuple) -> CI:
        return CI(row[0], row[1], row[2], self.time(row[3]), self.time(row[4]), merged_into=row[5])

    def relationship(self, row: tuple) -> Relationship:
        return Relationship(row[0], row[1], row[2], row[3], self.time(row[4]), self.time(row[5]),
                            self.provenance(row[6], row[7], row[8], row[9]))

    def history(self, row: tuple) -> HistoryRow:
        return HistoryRow(row[0], row[1], row[2], row[3], decode_json(row[4]), decode_json(row[5]), row[6],
                          self.provenance(row[7], row[8], row[9], row[10]), self.time(row[11]))


class SQLiteStore(sqlite_drift.DriftReads, sqlite_reports.ReportLog, sqlite_records.RecordStore,
                  sqlite_merge.MergeOperations, sqlite_fingerprint.FingerprintReads):
    """The `cmdb.store.Store` contract on one SQLite file (created, with its folder, if missing)."""

    # "database is locked" after the busy timeout, disk I/O errors, a full disk: try again later.
    transient_errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError, OSError, ChangeSetStale)

    def __init__(self, path: str | Path):
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise ValueError(f"SQLiteStore needs a file path, not {str(path)!r}: WAL mode and the "
                             "per-thread readers need a real file (use a temporary folder in tests)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._puts_lock = threading.Lock()  # the group commit's queue (sqlite_reports.ReportLog)
        self._puts: list[sqlite_reports.QueuedPut] = []
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            self._writer.close()
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); "
                               "put the store on a local file system")
        migrate(self._writer)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connections ------------------------------------------------------------------------
    def _connect(self, read_only: bool = False) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, this class says BEGIN and COMMIT itself.
        # check_same_thread=False: the writer is shared under a lock, and close() closes readers
        # from whichever thread calls it.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False,
                               cached_statements=256)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection. A pool thread keeps its own until close()."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                if self._closed:
                    raise RuntimeError(f"{self!r} is closed")
                conn = self._connect(read_only=True)
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """The write transaction: all or nothing; with durable, the commit is fsynced."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            conn = self._writer
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._write_lock:
            self._writer.close()

    # -- reads reconcile needs ------------------------------------------------------------
    def resolve_identifiers(self, ci_class: str, kind: str, values: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._snapshot() as conn:
            for marks, chunk in _in_chunks(values):
                found.update(conn.execute(
                    f"SELECT value, ci_id FROM identifier WHERE class = ? AND kind = ? AND value IN ({marks})",
                    (ci_class, kind, *chunk)))
        return found

    def shared_identifiers(self, ci_class: str, kind: str, values: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with self._snapshot() as conn:
            for marks, chunk in _in_chunks(values):
                for value, ci_id in conn.execute(
                        f"SELECT s.value, s.ci_id FROM shared_identifier s JOIN ci ON ci.id = s.ci_id "
                        f"WHERE s.class = ? AND s.kind = ? AND s.value IN ({marks}) AND ci.state = 'active'",
                        (ci_class, kind, *chunk)):
                    found.setdefault(value, set()).add(ci_id)
        return found

    def current_attributes(self, ci_ids: Iterable[str]) -> dict[str, dict[str, AttributeValue]]:
        """{ci_id: {name: value}} for the given CIs that have attributes."""
        with self._snapshot() as conn:
            return self._attributes(conn, ci_ids, _Rows())

    def _attributes(self, conn: sqlite3.Connection, ci_ids: Iterable[str],
                    rows: _Rows) -> dict[str, dict[str, AttributeValue]]:
        out: dict[str, dict[str, AttributeValue]] = {}
        # The hot read of reconcile (~10k rows for one machine): rows come grouped by CI, and a
        # CI's attributes mostly share one provenance, so compare with the previous row's before
        # looking the stamp up, and switch the CI's dict only when the CI changes.
        last_ci = last_observed = last_report = last_source = last_kind = None
        attrs: dict[str, AttributeValue] = {}
        prov = None
        decode, value_of, provenance = json_decode, AttributeValue, rows.provenance
        for marks, chunk in _in_chunks(ci_ids):
            for ci_id, name, value, kind, source_id, report_id, observed in conn.execute(
                    f"SELECT {_ATTR_COLUMNS} FROM attribute WHERE ci_id IN ({marks})", chunk).fetchall():
                if ci_id != last_ci:
                    last_ci = ci_id
                    attrs = out.get(ci_id) or out.setdefault(ci_id, {})
                if (observed != last_observed or report_id != last_report or source_id != last_source
                        or kind != last_kind):
                    last_observed, last_report, last_source, last_kind = observed, report_id, source_id, kind
                    prov = provenance(kind, source_id, report_id, observed)
                attrs[name] = value_of(decode(value), prov)
        return out

    def other_observations(self, ci_ids: Iterable[str]) -> dict[str, dict[str, list[AttributeValue]]]:
        with self._snapshot() as conn:
            return sqlite_observations.other_observations(conn, ci_ids, _in_chunks, _Rows().provenance)

    def observations(self, ci_id: str) -> list[ObservedValue]:
        with self._snapshot() as conn:
            return sqlite_observations.observations(conn, ci_id, _Rows().provenance)

    def identifiers_of(self, ci_ids: Iterable[str]) -> dict[str, list[Identifier]]:
        """{ci_id: identifiers} for the given CIs that have identifiers."""
        with self._snapshot() as conn:
            return self._identifiers(conn, ci_ids)

    @staticmethod
    def _identifiers(conn: sqlite3.Connection, ci_ids: Iterable[str]) -> dict[str, list[Identifier]]:
        out: dict[str, list[Identifier]] = {}
        for marks, chunk in _in_chunks(ci_ids):
            for ci_id, kind, value in conn.execute(
                    f"SELECT ci_id, kind, value FROM identifier WHERE ci_id IN ({marks})", chunk):
                out.setdefault(ci_id, []).append(Identifier(kind, value))
        for identifiers in out.values():
            identifiers.sort(key=lambda i: (i.kind, i.value))
        return out

    def find_by_attribute(self, ci_class: str, name: str, values: Iterable[Any]) -> dict[Any, list[str]]:
        encoded = {encode_json(v): v for v in values}
        # A partial index only serves a query whose WHERE names its literal: `address` has one.
        name_sql = "a.name = 'address'" if name == "address" else "a.name = ?"
        name_params = [] if name == "address" else [name]
        found: dict[Any, list[str]] = {}
        with self._snapshot() as conn:
            for marks, chunk in _in_chunks(encoded):
                for value, ci_id in conn.execute(
                        f"SELECT a.value, a.ci_id FROM attribute a JOIN ci ON ci.id = a.ci_id "
                        f"WHERE {name_sql} AND a.value IN ({marks}) AND ci.class = ? AND ci.state = 'active' "
                        f"ORDER BY a.ci_id", (*name_params, *chunk, ci_class)):
                    found.setdefault(encoded[value], []).append(ci_id)
        return found

    def relationships_among(self, ci_ids: Iterable[str]) -> list[Relationship]:
        rows, out = _Rows(), []
        # As in _attributes: a report's relations share their stamps, so only a row whose stamp
        # differs from the previous row's goes through the shared-object lookups.
        last: tuple = ()
        first = last_seen = prov = None
        with self._snapshot() as conn:
            for marks, chunk in _in_chunks(ci_ids):
                for row in conn.execute(
                        f"SELECT {_REL_COLUMNS} FROM relationship WHERE from_ci IN ({marks}) AND state = 'active'",
                        chunk).fetchall():
                    if row[4:] != last:
                        last = row[4:]
                        first, last_seen = rows.time(row[4]), rows.time(row[5])
                        prov = rows.provenance(row[6], row[7], row[8], row[9])
                    out.append(Relationship(row[0], row[1], row[2], row[3], first, last_seen, prov))
        return out

    # -- reads of scoped staleness (cmdb.backends.sqlite_staleness) ------------------------
    def scope_states(self, source_kind: str, source_id: str, scopes: Iterable[tuple[str, str]],
                     records_for: Iterable[str] | None = None) -> dict[tuple[str, str], ScopeState]:
        with self._snapshot() as conn:
            return sqlite_staleness.scope_states(conn, source_kind, source_id, scopes, records_for)

    def seen_records(self, ci_ids: Iterable[str]) -> list[SeenRecord]:
        with self._snapshot() as conn:
            return sqlite_staleness.seen_records(conn, ci_ids, _in_chunks)

    def retired_among(self, ci_ids: Iterable[str]) -> dict[str, datetime]:
        with self._snapshot() as conn:
            return sqlite_staleness.retired_among(conn, ci_ids, _in_chunks)

    def relationships_touching(self, ci_ids: Iterable[str]) -> list[Relationship]:
        with self._snapshot() as conn:
            return sqlite_staleness.relationships_touching(conn, ci_ids, _in_chunks, _REL_COLUMNS,
                                                           _Rows().relationship)

    # -- the one write path of reconcile --------------------------------------------------
    def apply(self, changes: ChangeSet, report_seq: int | None = None) -> ApplyResult:
        # Not durable=True: see the module docstring for why exactly-once holds at NORMAL.
        with self._transaction() as conn:
            return write_change_set(conn, changes, report_seq)

    # -- queries ----------------------------------------------------------------------------
    def _complete(self, conn: sqlite3.Connection, cis: list[CI], rows: _Rows) -> list[CI]:
        """Fill in the attributes and identifiers of `cis`."""
        ids = [c.ci_id for c in cis]
        attributes = self._attributes(conn, ids, rows)
        identifiers = self._identifiers(conn, ids)
        for ci in cis:
            ci.attributes = attributes.get(ci.ci_id, {})
            ci.identifiers = identifiers.get(ci.ci_id, [])
        return cis

    def get_ci(self, ci_id: str) -> CI | None:
        rows = _Rows()
        with self._snapshot() as conn:
            row = conn.execute(f"SELECT {_CI_COLUMNS} FROM ci WHERE id = ?", (ci_id,)).fetchone()
            return None if row is None else self._complete(conn, [rows.ci(row)], rows)[0]

    def find_ci_ids(self, prefix: str, limit: int = 2) -> list[str]:
        # The range bounds the index scan; LIKE (with its wildcards escaped) checks the prefix.
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._reader().execute(
            "SELECT id FROM ci WHERE id >= ? AND id < ? AND id LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
            (prefix, prefix + "\U0010ffff", pattern, limit))
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def list_cis(self, ci_class: str | None = None, attributes: dict[str, Any] | None = None,
                 state: CIState | None = "active", limit: int = 100, offset: int = 0) -> list[CI]:
        """Attribute filters compare JSON values; a filter value of None matches CIs without
        that attribute (unknown is absent)."""
        where, params = [], []
        if ci_class is not None:
            where.append("class = ?")
            params.append(ci_class)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        for name, value in (attributes or {}).items():
            if value is None:
                where.append("NOT EXISTS (SELECT 1 FROM attribute a WHERE a.ci_id = ci.id AND a.name = ?)")
                params.append(name)
            else:
                where.append("EXISTS (SELECT 1 FROM attribute a WHERE a.ci_id = ci.id AND a.name = ? "
                             "AND a.value = ?)")
                params.extend((name, encode_json(value)))
        sql = f"SELECT {_CI_COLUMNS} FROM ci"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        rows = _Rows()
        with self._snapshot() as conn:
            cis = [rows.ci(r) for r in conn.execute(sql, (*params, limit, offset))]
            return self._complete(conn, cis, rows)

    def count_cis(self, state: CIState | None = "active") -> dict[str, int]:
        if state is None:
            rows = self._reader().execute("SELECT class, count(*) FROM ci GROUP BY class")
        else:
            rows = self._reader().execute("SELECT class, count(*) FROM ci WHERE state = ? GROUP BY class", (state,))
        return dict(rows.fetchall())

    def count_relationships(self, state: CIState | None = "active") -> dict[str, int]:
        if state is None:
            rows = self._reader().execute("SELECT type, count(*) FROM relationship GROUP BY type")
        else:
            rows = self._reader().execute(
                "SELECT type, count(*) FROM relationship WHERE state = ? GROUP BY type", (state,))
        return dict(rows.fetchall())

    def relationships(self, ci_id: str, direction: Literal["out", "in", "both"] = "both",
                      type: str | None = None) -> list[Relationship]:
        """The active relationships of a CI (retired ones are in its history), a self-loop once."""
        if direction not in ("out", "in", "both"):
            raise ValueError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        type_filter = "" if type is None else " AND type = ?"
        extra = () if type is None else (type,)
        rows, out = _Rows(), []
        with self._snapshot() as conn:
            if direction in ("out", "both"):
                out += [rows.relationship(r) for r in conn.execute(
                    f"SELECT {_REL_COLUMNS} FROM relationship WHERE from_ci = ? AND state = 'active'{type_filter} "
                    "ORDER BY type, to_ci", (ci_id, *extra))]
            if direction in ("in", "both"):
                not_loop = " AND from_ci != to_ci" if direction == "both" else ""
                out += [rows.relationship(r) for r in conn.execute(
                    f"SELECT {_REL_COLUMNS} FROM relationship WHERE to_ci = ? AND state = 'active'{type_filter}"
                    f"{not_loop} ORDER BY type, from_ci", (ci_id, *extra))]
        return out

    def history(self, ci_id: str, name: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int = 1000) -> list[HistoryRow]:
        """The change records of a CI in seq order, including relation changes where it is the
        related (`to`) end, the way a device's changelog shows its interfaces' changes.
        since/until bound observed_at, both inclusive."""
        sql = f"SELECT {_HISTORY_COLUMNS} FROM history WHERE (ci_id = ? OR related_ci = ?)"
        params: list[Any] = [ci_id, ci_id]
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        if since is not None:
            sql += " AND observed_at >= ?"
            params.append(to_micros(since))
        if until is not None:
            sql += " AND observed_at <= ?"
            params.append(to_micros(until))
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        rows = _Rows()
        return [rows.history(r) for r in self._reader().execute(sql, params)]

    def ci_as_of(self, ci_id: str, when: datetime) -> CI | None:
        """Rebuilt from the CI's own history rows observed at or before `when`, in observed order
        (a late report that observed earlier counts at its observed time). last_seen is the last
        observation in those rows: stamps refreshed without a change are not history."""
        rows = _Rows()
        with self._snapshot() as conn:
            current = conn.execute(f"SELECT {_CI_COLUMNS} FROM ci WHERE id = ?", (ci_id,)).fetchone()
            if current is None:
                return None
            changes = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE ci_id = ? AND observed_at <= ? "
                "AND kind IN ('ci.create', 'attr.set', 'attr.unset', 'ident.add', 'ident.remove') ORDER BY observed_at, seq",
                (ci_id, to_micros(when))).fetchall()
        if not any(r[2] == "ci.create" for r in changes):
            return None
        ci = CI(ci_id, current[1], current[2], rows.time(current[3]), rows.time(max(r[10] for r in changes)))
        for _seq, _ci, kind, name, _before, after, _related, *provenance in (r[:11] for r in changes):
            if kind == "attr.set":
                ci.attributes[name] = AttributeValue(decode_json(after), rows.provenance(*provenance))
            elif kind == "attr.unset":
                ci.attributes.pop(name, None)
            elif kind == "ident.add":
                ci.identifiers.append(Identifier(name, decode_json(after)))
            elif kind == "ident.remove":  # moved off by a merge or split (cmdb.operations)
                ci.identifiers = [i for i in ci.identifiers if (i.kind, i.value) != (name, decode_json(_before))]
        ci.identifiers.sort(key=lambda i: (i.kind, i.value))
        return ci

    def graph(self) -> nx.MultiDiGraph:
        rows = _Rows()
        with self._snapshot() as conn:
            classes = dict(conn.execute("SELECT id, class FROM ci WHERE state = 'active'"))
            rels = [rows.relationship(r) for r in conn.execute(
                f"SELECT {_REL_COLUMNS} FROM relationship WHERE state = 'active'")]
            missing = {end for r in rels for end in (r.from_ci, r.to_ci)} - classes.keys()
            for marks, chunk in _in_chunks(missing):
                classes.update(conn.execute(f"SELECT id, class FROM ci WHERE id IN ({marks})", chunk))
        return build_graph(rels, classes)

    # -- API tokens -------------------------------------------------------------------------
    def add_token(self, token_hash: str, name: str, role: str, expires_at: datetime | None = None) -> None:
        expires = None if expires_at is None else to_micros(expires_at)
        with self._transaction(durable=True) as conn:
            taken = conn.execute("SELECT token_hash = ? FROM token WHERE token_hash = ? OR "
                                 "(name = ? AND revoked_at IS NULL)", (token_hash, token_hash, name)).fetchone()
            if taken is not None:
                what = "this token is already stored" if taken[0] else f"a live token is named {name!r}"
                raise ValueError(f"{what}; revoke it first or pick another name")
            conn.execute("INSERT INTO token (token_hash, name, role, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                         (token_hash, name, role, to_micros(datetime.now(timezone.utc)), expires))

    def token_role(self, token_hash: str, now: datetime) -> tuple[str, str] | None:
        principal = self.token_principal(token_hash, now)
        return None if principal is None else (principal.name, principal.role)

    def token_principal(self, token_hash: str, now: datetime) -> TokenPrincipal | None:
        row = self._reader().execute(
            "SELECT name, role, source_id FROM token WHERE token_hash = ? AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)", (token_hash, to_micros(now))).fetchone()
        return None if row is None else TokenPrincipal(row[0], row[1], row[2])

    def list_tokens(self) -> list[TokenInfo]:
        rows = self._reader().execute("SELECT name, role, created_at, expires_at, revoked_at, source_id "
                                      "FROM token ORDER BY created_at DESC").fetchall()
        when = lambda v: None if v is None else from_micros(v)  # noqa: E731
        return [TokenInfo(r[0], r[1], from_micros(r[2]), when(r[3]), when(r[4]), r[5]) for r in rows]

    def revoke_token(self, name: str) -> int:
        with self._transaction(durable=True) as conn:
            return conn.execute("UPDATE token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                                (to_micros(datetime.now(timezone.utc)), name)).rowcount

    # -- agent enrollment (see sqlite_enroll) ------------------------------------------------
    def add_enrollment_token(self, token_hash: str, name: str, max_uses: int = 1,
                             expires_at: datetime | None = None) -> None:
        with self._transaction(durable=True) as conn:
            sqlite_enroll.add_enrollment_token(conn, token_hash, name, max_uses, expires_at,
                                               datetime.now(timezone.utc))

    def list_enrollment_tokens(self) -> list[EnrollmentTokenInfo]:
        return sqlite_enroll.list_enrollment_tokens(self._reader())

    def revoke_enrollment_token(self, name: str) -> int:
        with self._transaction(durable=True) as conn:
            return sqlite_enroll.revoke_enrollment_token(conn, name, datetime.now(timezone.utc))

    def enroll(self, enrollment_hash: str, now: datetime, token_hash: str, name: str, role: str,
               source_id: str) -> Enrollment:
        with self._transaction(durable=True) as conn:
            return sqlite_enroll.enroll(conn, enrollment_hash, now, token_hash, name, role, source_id)
