"""Reconcile benchmark (issue #5): this machine's own agent report reconciled into a fresh SQLite
store, beside raw SQLite `executemany` of the same rows, measured in the same run.

    .venv/bin/python bench/reconcile.py [--repeat N] [--deltas N]

Cases, each compute (`reconcile.engine.compute_changes`) + apply (`Store.apply`, one transaction),
each run twice in the same repeat, on two stores: with the fast path (`reconcile.fastpath`, the
default) and with the full path forced (`fast_path=False`, the engine as it was before it):

- first:  the first full report of the machine (creates every CI);
- full:   a no-change full report (a new report id, collected later: every value confirmed);
- one:    a full report in which one package was upgraded (a new version, nothing else);
- delta:  no-change delta reports, the agent's shape (`agent.delta.build_delta` with every section
          unchanged: the Computer item with its identifiers, every collector `ok, unchanged`),
          in a loop on one core: reports/s (fast path).

The peer is the least SQLite work that writes the same thing, in plain tables of the same columns
and primary keys (no foreign keys, checks, triggers or secondary indexes), with the store's
pragmas (WAL, synchronous=NORMAL), one transaction each:

- first:  `executemany` INSERT of every ci, identifier, attribute, relationship and history row
          the first reconcile wrote (read back from the store);
- full:   `executemany` UPDATE of the stamps a no-change report moves (ci.last_seen, attribute
          observed_at + report_id, relationship.last_seen);
- delta:  look the Computer up by each identifier it carries, UPDATE its last_seen.

`--repeat N` runs every case N times (each repeat on fresh stores) and prints medians; within a
repeat the no-change and one-package cases are the median of STEADY consecutive reports.
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

# Reports per repeat of the no-change and one-package cases, after one warm-up report (a running
# collector's statement caches are warm and the first report's WAL is checkpointed): their median.
STEADY = 5

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


def timed_reconcile(store: SQLiteStore, report: Report, fast_path: bool = True) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    changes = compute_changes(store, report, fast_path=fast_path)
    t1 = time.perf_counter()
    store.apply(changes)
    return t1 - t0, time.perf_counter() - t1, changes


def one_package_upgraded(report: Report, version: str) -> Report:
    """The report with the version of its first package changed (as after an upgrade)."""
    at = next(i for i, item in enumerate(report.items) if item.class_ == "SoftwareInstall")
    item = report.items[at]
    upgraded = msgspec.structs.replace(item, attributes={**item.attributes, "version": version})
    return msgspec.structs.replace(report, items=[*report.items[:at], upgraded, *report.items[at + 1:]])


def path_cases(store: SQLiteStore, full: Report, fast_path: bool, out: dict[str, float]) -> object:
    """first, no-change and one-package reports on `store`, timed into out["<case>.<path>.<phase>"]:
    the first report once, the others as the median of STEADY consecutive reports."""
    path = "fast" if fast_path else "old"
    out[f"first.{path}.compute"], out[f"first.{path}.apply"], first = timed_reconcile(store, full, fast_path)
    timed_reconcile(store, later(full, 1), fast_path)  # warm the statement caches as a running collector has them
    runs = [timed_reconcile(store, later(full, 2 + i), fast_path) for i in range(STEADY)]
    assert all(changes.is_empty for _, _, changes in runs), runs[0][2].summary()
    out[f"full.{path}.compute"] = statistics.median(c for c, _, _ in runs)
    out[f"full.{path}.apply"] = statistics.median(a for _, a, _ in runs)
    if fast_path:
        out["counts.fast_confirms"] = len(runs[-1][2].fingerprint_confirms)
    runs = [timed_reconcile(store, later(one_package_upgraded(full, f"99:bench-{i}"), 2 + STEADY + i), fast_path)
            for i in range(STEADY)]
    assert all(len(changes.attributes) == 1 for _, _, changes in runs), runs[0][2].summary()
    out[f"one.{path}.compute"] = statistics.median(c for c, _, _ in runs)
    out[f"one.{path}.apply"] = statistics.median(a for _, a, _ in runs)
    return first


def one_repeat(full: Report, delta: Report, deltas: int, tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    old_store = SQLiteStore(tmp / f"fg-old-{uuid.uuid4().hex[:8]}.sqlite")
    try:
        path_cases(old_store, full, False, out)
    finally:
        old_store.close()
    store_path = tmp / f"fg-{uuid.uuid4().hex[:8]}.sqlite"
    store = SQLiteStore(store_path)
    try:
        first = path_cases(store, full, True, out)
        rows = stored_rows(store_path)
        peer = connect_peer(tmp / f"peer-{uuid.uuid4().hex[:8]}.sqlite")
        out["first.peer"] = peer_first(peer, rows)
        stamp = rows["ci"][0][4] + 2_000_000
        out["full.peer"] = peer_no_change(peer, rows, stamp, str(uuid.uuid4()))
        out["one.peer"] = out["full.peer"]  # the same stamps move; one value more is noise

        reports = [later(delta, 2 + 2 * STEADY + i) for i in range(deltas)]
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
        out["counts.fingerprints"] = sqlite3.connect(store_path).execute("SELECT count(*) FROM fingerprint").fetchone()[0]
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
    print(f"first reconcile creates {created} CIs, {rows} rows in all (history included); the fast path keeps "
          f"{med['counts.fingerprints']:.0f} fingerprints and confirms {med['counts.fast_confirms']:.0f} CIs "
          "as a whole in a no-change report\n")
    print(f"{'case':<28} {'path':<10} {'compute ms':>10} {'apply ms':>9} {'total ms':>9} {'peer ms':>8} {'ratio':>7}")
    totals = {}
    for case, label in (("first", "first full report"), ("full", "no-change full report"),
                        ("one", "one package upgraded")):
        for path, name in (("fast", "fast path"), ("old", "full path")):
            total = totals[case, path] = med[f"{case}.{path}.compute"] + med[f"{case}.{path}.apply"]
            print(f"{label:<28} {name:<10} {ms(med[f'{case}.{path}.compute']):>10} {ms(med[f'{case}.{path}.apply']):>9} "
                  f"{ms(total):>9} {ms(med[f'{case}.peer']):>8} {total / med[f'{case}.peer']:>6.1f}x")
    d = med["delta.wall"]
    print(f"{'no-change delta report':<28} {'fast path':<10} {'':>10} {'':>9} {ms(d):>9} {ms(med['delta.peer']):>8} "
          f"{d / med['delta.peer']:>6.1f}x")
    print(f"\nno-change full report, fast path vs full path: {totals['full', 'old'] / totals['full', 'fast']:.1f}x faster; "
          f"one package upgraded: {totals['one', 'old'] / totals['one', 'fast']:.1f}x")
    print(f"no-change deltas, one core: {1 / d:,.0f} reports/s wall ({1 / med['delta.cpu']:,.0f}/s CPU); "
          f"peer: {1 / med['delta.peer']:,.0f}/s")
    full_total = totals["full", "fast"]
    print(f"targets: full report <= 30 ms: {'met' if full_total <= 0.030 else 'NOT met'} "
          f"({ms(full_total)} ms no-change, {ms(totals['one', 'fast'])} ms one package upgraded, "
          f"{ms(totals['first', 'fast'])} ms first); >= 1,000 deltas/s per core: {'met' if 1 / d >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
