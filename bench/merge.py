"""CI merge and undo benchmark (issue #5): one real machine seen as two CIs, merged and split back,
beside the least SQLite work a merge can be, measured in the same run.

    .venv/bin/python bench/merge.py [--repeat N]

The machine is this one: its own full agent report (agent.builder.build_report), reconciled twice
into a fresh SQLite store, once as its agent and once as an SSH scan that knows none of the
agent's identifiers (another system UUID and FQDN): two Computers, each with every package,
interface, disk and file system of the machine. Cases:

- merge:  `Store.merge_cis` (every dependent of the absorbed CI merges into the survivor's same one);
- undo:   `Store.undo_ci_operation` of that merge (the journal played backwards);
- reconcile: the first reconcile of the SSH view (compute + apply), for scale: what one report costs.

The peer is the merge a CMDB without dependents, history or undo does (a GLPI-style "transfer"),
in raw `sqlite3` on a copy of the same database, one transaction: re-point the absorbed CI's
identifiers and relationships to the survivor (UPDATE OR IGNORE, then delete what collided) and
retire it. It leaves duplicate dependents behind; the ratio says what doing it right costs.

`--repeat N` runs every case N times (each on a fresh store) and prints medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
from cmdb.backends.sqlite import SQLiteStore  # noqa: E402
from cmdb.report import Report, Source  # noqa: E402
from reconcile.engine import compute_changes  # noqa: E402


def ssh_view(report: Report) -> Report:
    """The same machine as an SSH scan: its Computer item carries other identifiers only."""
    items = []
    for item in report.items:
        if item.class_ == "Computer":
            item = msgspec.structs.replace(
                item,
                identifiers={
                    "system_uuid": "4c4c4544-0042-3510-8052-b4c04f4dbe7c",
                    "fqdn": "bench-ssh.example.com",
                },
            )
        items.append(item)
    return msgspec.structs.replace(
        report,
        report_id=str(uuid.uuid4()),
        items=items,
        source=Source(kind="ssh", id="ssh-bench", version="0"),
        collected_at=report.collected_at + timedelta(seconds=1),
    )


def peer_merge(path: Path, survivor: str, absorbed: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE identifier SET ci_id = ? WHERE ci_id = ?", (survivor, absorbed))
    conn.execute("UPDATE OR IGNORE relationship SET from_ci = ? WHERE from_ci = ?", (survivor, absorbed))
    conn.execute("UPDATE OR IGNORE relationship SET to_ci = ? WHERE to_ci = ?", (survivor, absorbed))
    conn.execute("DELETE FROM relationship WHERE from_ci = ? OR to_ci = ?", (absorbed, absorbed))
    conn.execute("UPDATE ci SET state = 'retired', merged_into = ? WHERE id = ?", (survivor, absorbed))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def one_repeat(agent: Report, tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    path = tmp / f"fg-{uuid.uuid4().hex[:8]}.sqlite"
    store = SQLiteStore(path)
    try:
        first = compute_changes(store, agent)
        store.apply(first)
        ssh = ssh_view(agent)
        t0 = time.perf_counter()
        second = compute_changes(store, ssh)
        store.apply(second)
        out["reconcile"] = time.perf_counter() - t0
        survivor, absorbed = first.ci_of_ref[_computer_ref(agent)], second.ci_of_ref[_computer_ref(ssh)]
        assert survivor != absorbed, "the two views must be two CIs"

        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        peer_path = tmp / f"peer-{uuid.uuid4().hex[:8]}.sqlite"
        shutil.copyfile(path, peer_path)
        out["peer"] = peer_merge(peer_path, survivor, absorbed)

        t0 = time.perf_counter()
        op = store.merge_cis(survivor, absorbed, "bench")
        out["merge"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.undo_ci_operation(op.seq, "bench")
        out["undo"] = time.perf_counter() - t0
        out["counts"] = (op.moved.get("dependents_merged", 0), sum(op.moved.values()))
    finally:
        store.close()
    return out


def _computer_ref(report: Report) -> str:
    return next(i.ref for i in report.items if i.class_ == "Computer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5, help="repeats (fresh store each), medians printed")
    args = ap.parse_args()

    agent = build_report(LocalContext(agent_id="bench-agent"))
    packages = sum(1 for i in agent.items if i.class_ == "SoftwareInstall")
    print(
        f"this machine's report: {len(agent.items)} items ({packages} packages), "
        f"{len(agent.relations)} relations"
    )
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            runs.append(one_repeat(agent, Path(tmp)))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "counts"}
    dependents, moved = runs[0]["counts"]

    ms = lambda s: f"{s * 1000:.1f}"  # noqa: E731
    print(
        f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; medians of {args.repeat} repeats"
    )
    print(f"the merge merges {dependents} dependent CIs and moves {moved} things in all\n")
    print(f"{'case':<34} {'ms':>8} {'peer ms':>8} {'ratio':>7}")
    print(
        f"{'merge (dependents, journal)':<34} {ms(med['merge']):>8} {ms(med['peer']):>8} "
        f"{med['merge'] / med['peer']:>6.1f}x"
    )
    print(
        f"{'undo of the merge':<34} {ms(med['undo']):>8} {ms(med['peer']):>8} "
        f"{med['undo'] / med['peer']:>6.1f}x"
    )
    print(f"{'reconcile of one view (reference)':<34} {ms(med['reconcile']):>8}")
    print(f"\nmerge / one reconcile of the machine: {med['merge'] / med['reconcile']:.2f}")


if __name__ == "__main__":
    main()
