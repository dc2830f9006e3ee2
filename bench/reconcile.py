"""Reconcile benchmark (issue #5): this machine's own agent report reconciled into a fresh SQLite
store, beside raw SQLite `executemany` of the same rows, measured in the same run.

    .venv/bin/python bench/reconcile.py [--repeat N] [--deltas N]

Cases, each compute (`reconcile.engine.compute_changes`) + apply (`Store.apply`, one transaction):

- first:  the first full report of the machine (creates every CI);
- full:   a no-change full report (a new report id, collected later: every value confirmed);
- delta:  no-change delta reports, the agent's shape (`agent.delta.build_delta` with every section
          unchanged: the Computer item with its identifiers, every collector `ok, unchanged`),
          in a loop on one core: reports/s.

The peer is the least SQLite work that writes the same thing, in plain tables of the same columns
and primary keys (no foreign keys, checks, triggers or secondary indexes), with the store's
pragmas (WAL, synchronous=NORMAL), one transaction each:

- first:  `executemany` INSERT of every ci, identifier, attribute, relationship and history row
          the first reconcile wrote (read back from the store);
- full:   `executemany` UPDATE of the stamps a no-change report moves (ci.last_seen, attribute
          observed_at + report_id, relationship.last_seen);
- delta:  look the Computer up by each identifier it carries, UPDATE its last_seen.

`--repeat N` runs every case N times (each repeat on a fresh store) and prints medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.builder import build_report  # noqa: E402
from agent.context import LocalContext  # noqa: E402
from agent.delta import SectionRecorder, build_delta  # noqa: E402
from cmdb.backends.sqlite import SQLiteStore  # noqa: E402
from cmdb.report import Report  # noqa: E402
from reconcile.engine import compute_changes  # noqa: E402

# The store's tables as plain tables: same columns and keys, nothing else.
_PEER_TABLES = {
    "ci": "id TEXT PRIMARY KEY, class TEXT, state TEXT, first_seen INTEGER, last_seen INTEGER",
    "identifier": "class TEXT, kind TEXT, value TEXT, ci_id TEXT, first_seen INTEGER, "
                  "PRIMARY KEY (class, kind, value)",
    "attribute": "ci_id TEXT, name TEXT, value TEXT, source_kind TEXT, source_id TEXT, report_id TEXT, "
                 "observed_at INTEGER, PRIMARY KEY (ci_id, name)",
    "relationship": "from_ci TEXT, type TEXT, to_ci TEXT, state TEXT, first_seen INTEGER, last_seen INTEGER, "
                    "source_kind TEXT, source_id TEXT, report_id TEXT, observed_at INTEGER, "
                    "PRIMARY KEY (from_ci, type, to_ci)",
}
_PEER_HISTORY = ("seq INTEGER PRIMARY KEY, ci_id TEXT, kind TEXT, name TEXT, before TEXT, after TEXT, "
                 "related_ci TEXT, source_kind TEXT, source_id TEXT, report_id TEXT, observed_at INTEGER, "
                 "recorded_at INTEGER")


def later(report: Report, seconds: float, **changes) -> Report:
    """The same report re-sent: a new id, collected `seconds` later."""
    return msgspec.structs.replace(report, report_id=str(uuid.uuid4()),
                                   collected_at=report.collected_at + timedelta(seconds=seconds), **changes)


def connect_peer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for name, columns in _PEER_TABLES.items():
        conn.execute(f"CREATE TABLE {name} ({columns}) WITHOUT ROWID")
    conn.execute(f"CREATE TABLE history ({_PEER_HISTORY})")
    return conn


def stored_rows(store_path: Path) -> dict[str, list[tuple]]:
    """Every row the store holds in the tables reconcile writes."""
    conn = sqlite3.connect(store_path)
    try:
        return {table: conn.execute(f"SELECT {', '.join(_columns(table))} FROM {table}").fetchall()
                for table in (*_PEER_TABLES, "history")}
    finally:
        conn.close()


def _columns(table: str) -> list[str]:
    spec = _PEER_HISTORY if table == "history" else _PEER_TABLES[table]
    return [c.split()[0] for c in spec.partition(", PRIMARY")[0].split(", ")]


def peer_first(conn: sqlite3.Connection, rows: dict[str, list[tuple]]) -> float:
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for table, values in rows.items():
        cols = _columns(table)
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)
    conn.execute("COMMIT")
    return time.perf_counter() - t0


def peer_no_change(conn: sqlite3.Connection, rows: dict[str, list[tuple]], stamp: int, report_id: str) -> float:
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("UPDATE ci SET last_seen = ? WHERE id = ?", [(stamp, r[0]) for r in rows["ci"]])
    conn.executemany("UPDATE attribute SET observed_at = ?, report_id = ? WHERE ci_id = ? AND name = ?",
                     [(stamp, report_id, r[0], r[1]) for r in rows["attribute"]])
    conn.executemany("UPDATE relationship SET last_seen = ? WHERE from_ci = ? AND type = ? AND to_ci = ?",
                     [(stamp, r[0], r[1], r[2]) for r in rows["relationship"]])
    conn.execute("COMMIT")
    return time.perf_counter() - t0


def peer_delta(conn: sqlite3.Connection, keys: list[tuple[str, str, str]], stamp: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    found = None
    for key in keys:
        row = conn.execute("SELECT ci_id FROM identifier WHERE class = ? AND kind = ? AND value = ?", key).fetchone()
        found = found or (row and row[0])
    conn.execute("UPDATE ci SET last_seen = ? WHERE id = ?", (stamp, found))
    conn.execute("COMMIT")


def timed_reconcile(store: SQLiteStore, report: Report) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    changes = compute_changes(store, report)
    t1 = time.perf_counter()
    store.apply(changes)
    return t1 - t0, time.perf_counter() - t1, changes


def one_repeat(full: Report, delta: Report, deltas: int, tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    store_path = tmp / f"fg-{uuid.uuid4().hex[:8]}.sqlite"
    store = SQLiteStore(store_path)
    try:
        out["first.compute"], out["first.apply"], first = timed_reconcile(store, full)
        rows = stored_rows(store_path)
        peer = connect_peer(tmp / f"peer-{uuid.uuid4().hex[:8]}.sqlite")
        out["first.peer"] = peer_first(peer, rows)

        timed_reconcile(store, later(full, 1))  # warm the statement caches as a running collector has them
        out["full.compute"], out["full.apply"], changes = timed_reconcile(store, later(full, 2))
        assert changes.is_empty, changes.summary()
        stamp = rows["ci"][0][4] + 2_000_000
        out["full.peer"] = peer_no_change(peer, rows, stamp, str(uuid.uuid4()))

        reports = [later(delta, 3 + i) for i in range(deltas)]
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for report in reports:
            store.apply(compute_changes(store, report))
        out["delta.wall"] = (time.perf_counter() - t0) / deltas
        out["delta.cpu"] = (time.process_time() - cpu0) / deltas

        computer = next(i for i in delta.items if i.class_ == "Computer")
        keys = [("Computer", r[1], r[2]) for r in rows["identifier"] if r[0] == "Computer"]
        t0 = time.perf_counter()
        for i in range(deltas):
            peer_delta(peer, keys, stamp + i)
        out["delta.peer"] = (time.perf_counter() - t0) / deltas
        out["counts"] = (len(first.created), sum(len(v) for v in rows.values()), len(computer.identifiers))
        peer.close()
    finally:
        store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5, help="repeats (fresh store each), medians printed")
    ap.add_argument("--deltas", type=int, default=2000, help="no-change delta reports per repeat")
    args = ap.parse_args()

    recorder = SectionRecorder()
    full = build_report(LocalContext(agent_id="bench-agent"), observe=recorder)
    ok = [name for name, status in full.collectors.items() if status.status == "ok"]
    delta = build_delta(full, recorder.sections, ok, full.report_id)
    packages = sum(1 for i in full.items if i.class_ == "SoftwareInstall")
    print(f"this machine's report: {len(full.items)} items ({packages} packages), {len(full.relations)} relations; "
          f"no-change delta: {len(delta.items)} item(s), {len(delta.relations)} relations")

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            runs.append(one_repeat(full, delta, args.deltas, Path(tmp)))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "counts"}
    created, rows, _ = runs[0]["counts"]

    ms = lambda s: f"{s * 1000:.2f}"  # noqa: E731
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; medians of {args.repeat} repeats, "
          f"{args.deltas} deltas each")
    print(f"first reconcile creates {created} CIs, {rows} rows in all (history included)\n")
    print(f"{'case':<28} {'compute ms':>10} {'apply ms':>9} {'total ms':>9} {'peer ms':>8} {'ratio':>7}")
    for case, label in (("first", "first full report"), ("full", "no-change full report")):
        total = med[f"{case}.compute"] + med[f"{case}.apply"]
        print(f"{label:<28} {ms(med[f'{case}.compute']):>10} {ms(med[f'{case}.apply']):>9} {ms(total):>9} "
              f"{ms(med[f'{case}.peer']):>8} {total / med[f'{case}.peer']:>6.1f}x")
    d = med["delta.wall"]
    print(f"{'no-change delta report':<28} {'':>10} {'':>9} {ms(d):>9} {ms(med['delta.peer']):>8} "
          f"{d / med['delta.peer']:>6.1f}x")
    print(f"\nno-change deltas, one core: {1 / d:,.0f} reports/s wall ({1 / med['delta.cpu']:,.0f}/s CPU); "
          f"peer: {1 / med['delta.peer']:,.0f}/s")
    full_total = med["full.compute"] + med["full.apply"]
    print(f"targets: full report <= 30 ms: {'met' if full_total <= 0.030 else 'NOT met'} "
          f"({ms(full_total)} ms no-change, {ms(med['first.compute'] + med['first.apply'])} ms first); "
          f">= 1,000 deltas/s per core: {'met' if 1 / d >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
