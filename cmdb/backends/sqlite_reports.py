"""The raw-report log of SQLiteStore (a mixin): durable puts with group commit, reads, status.

The store's `_write_lock` serializes writers; `put_report` queues its row under `_puts_lock` and
takes the write lock: whichever thread gets it commits every put queued meanwhile in one
transaction and one fsync, so concurrent ingests share a sync instead of queueing one each.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec

from cmdb.backends.sqlite_schema import from_micros, to_micros
from cmdb.store import PutResult, ReportHead, ReportStatus, StoredReport

_REPORT_COLUMNS = ("seq, report_id, source_kind, source_id, received_at, collected_at, digest, body, "
                   "status, reconciled_at, error")


def _report(row: tuple) -> StoredReport:
    return StoredReport(row[0], row[1], row[2], row[3], from_micros(row[4]), from_micros(row[5]), row[6],
                        row[7], row[8], None if row[9] is None else from_micros(row[9]), row[10])


@dataclass(slots=True)
class QueuedPut:
    report_id: str
    row: tuple
    result: PutResult | None = None
    error: BaseException | None = None


class _Mode(msgspec.Struct):
    mode: str = "full"


_mode_of = msgspec.json.Decoder(_Mode).decode


class ReportLog:
    _write_lock: threading.Lock
    _puts_lock: threading.Lock
    _puts: list[QueuedPut]
    _writer: sqlite3.Connection
    _closed: bool

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def report_head(self, report_id: str) -> ReportHead | None:
        row = self._reader().execute(
            "SELECT source_kind, source_id, mode FROM report WHERE report_id = ?", (report_id,)).fetchone()
        if row is None:
            return None
        mode = row[2]
        if mode is None:  # stored before schema version 8: the body says
            body = self._reader().execute("SELECT body FROM report WHERE report_id = ?", (report_id,)).fetchone()[0]
            mode = _mode_of(body).mode
        return ReportHead(row[0], row[1], mode)

    # -- the raw-report log ---------------------------------------------------------------
    def put_report(self, report_id: str, source_kind: str, source_id: str,
                   collected_at: datetime, body: bytes, mode: str = "full") -> PutResult:
        """Durable before it returns. Group commit: a thread that gets the write lock commits every
        put queued meanwhile by other threads in the same transaction and fsync, so concurrent
        ingests share one fsync instead of queueing one fsync each behind the lock."""
        stored = self._stored_put(report_id)
        if stored is not None:  # a replay: answer without queueing behind the writer
            return stored
        body = bytes(body)
        put = QueuedPut(report_id, (report_id, source_kind, source_id, None, to_micros(collected_at),
                                     hashlib.sha256(body).hexdigest(), body, mode))
        with self._puts_lock:
            self._puts.append(put)
        with self._write_lock:
            if put.result is None and put.error is None:
                with self._puts_lock:
                    batch, self._puts = self._puts, []
                self._commit_puts(batch)
        if put.error is not None:
            raise put.error
        assert put.result is not None
        if put.result.created:
            return put.result
        stored = self._stored_put(report_id)  # stored by another thread or process meanwhile
        assert stored is not None
        return stored

    def _commit_puts(self, batch: list[QueuedPut]) -> None:
        """Under the write lock: one durable transaction for the whole batch."""
        if self._closed:
            error: BaseException = RuntimeError(f"{self!r} is closed")
            for put in batch:
                put.error = error
            return
        conn = self._writer
        received = datetime.now(timezone.utc)
        conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = []
                for put in batch:
                    row = (*put.row[:3], to_micros(received), *put.row[4:])
                    cur = conn.execute(
                        "INSERT INTO report (report_id, source_kind, source_id, received_at, collected_at, digest, "
                        "body, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (report_id) DO NOTHING", row)
                    results.append(PutResult(cur.rowcount == 1, cur.lastrowid, received, put.row[5]))
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for put in batch:
                    put.error = exc
                return
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")
        for put, result in zip(batch, results):
            put.result = result

    def _stored_put(self, report_id: str) -> PutResult | None:
        row = self._reader().execute("SELECT seq, received_at, digest FROM report WHERE report_id = ?",
                                     (report_id,)).fetchone()
        return None if row is None else PutResult(False, row[0], from_micros(row[1]), row[2])

    def get_report(self, report_id: str) -> StoredReport | None:
        row = self._reader().execute(f"SELECT {_REPORT_COLUMNS} FROM report WHERE report_id = ?",
                                     (report_id,)).fetchone()
        return None if row is None else _report(row)

    def pending_reports(self, limit: int = 100, max_bytes: int | None = None) -> list[StoredReport]:
        rows = self._reader().execute(
            f"SELECT {_REPORT_COLUMNS} FROM report WHERE status = 'pending' ORDER BY seq LIMIT ?", (limit,))
        out: list[StoredReport] = []
        total = 0
        for row in rows:  # rows are stepped one by one: bodies past the budget are never read
            total += len(row[7])
            if out and max_bytes is not None and total > max_bytes:
                break
            out.append(_report(row))
        return out

    def mark_report_failed(self, seq: int, error: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE report SET status = 'failed', error = ? WHERE seq = ?", (error, seq))

    def count_reports(self, status: ReportStatus | None = None) -> int:
        if status is None:
            return self._reader().execute("SELECT count(*) FROM report").fetchone()[0]
        return self._reader().execute("SELECT count(*) FROM report WHERE status = ?", (status,)).fetchone()[0]

