"""The reconcile worker over the real store: order, poison reports, restart resume, exactly once."""

from __future__ import annotations

import json

from cmdb.report import encode_report
from collector.worker import ReconcileWorker
from tests.integration.collector.harness import drain, json_headers, later, make_report, report_body


def _put(store, report) -> int:
    body = encode_report(report)
    return store.put_report(report.report_id, report.source.kind, report.source.id,
                            report.collected_at, body).seq


def _history_kinds(store) -> list[tuple[str, str]]:
    rows = []
    for ci in store.list_cis(state=None, limit=1000):
        rows += [(ci.ci_id, r.kind) for r in store.history(ci.ci_id) if r.ci_id == ci.ci_id]
    return rows


async def test_poison_reports_are_marked_failed_and_the_log_moves_on(collector, store, tokens):
    valid_before = make_report(hostname="early-01", serial="SN-E")
    _put(store, valid_before)
    store.put_report("poison-not-json", "agent", "agent-x", later(1), b"{this is not json")
    wrong_schema = json.loads(report_body(report_id="poison-schema-2"))
    wrong_schema["schema"] = "fleetgraph.report/2"
    store.put_report("poison-schema-2", "agent", "agent-x", later(2), json.dumps(wrong_schema).encode())
    # Valid JSON and a valid report, but stored under another report_id than its body names.
    store.put_report("poison-mismatch", "agent", "agent-x", later(3), report_body(report_id="rpt-other-id"))

    client = await collector(reconcile=True)  # the worker picks up what is already pending
    resp = await client.post("/api/v1/reports", data=report_body(hostname="late-01", serial="SN-L"),
                             headers=json_headers(tokens["agent"]))
    assert resp.status == 202
    await drain(client)

    assert store.count_reports("pending") == 0
    assert store.count_reports("failed") == 3
    assert store.count_reports("reconciled") == 2
    not_json = store.get_report("poison-not-json")
    assert not_json.status == "failed" and "not valid JSON" in not_json.error
    schema = store.get_report("poison-schema-2")
    assert schema.status == "failed" and "$.schema" in schema.error and "fleetgraph.report/1" in schema.error
    mismatch = store.get_report("poison-mismatch")
    assert mismatch.status == "failed" and "rpt-other-id" in mismatch.error
    hostnames = sorted(c.attributes["hostname"].value for c in store.list_cis("Computer"))
    assert hostnames == ["early-01", "late-01"]


def test_worker_reconciles_in_seq_order_in_batches(store):
    reports = [make_report(hostname=f"host-{i:02d}", serial=f"SN-{i:02d}", collected_at=later(i))
               for i in range(7)]
    seqs = [_put(store, r) for r in reports]
    worker = ReconcileWorker(store, batch=2)
    worker.start()
    try:
        assert worker.drain(30)
    finally:
        worker.stop()
    assert not worker.is_alive()
    stored = [store.get_report(r.report_id) for r in reports]
    assert [s.seq for s in stored] == seqs
    assert all(s.status == "reconciled" for s in stored)
    times = [s.reconciled_at for s in stored]
    assert times == sorted(times)
    assert worker.reconciled == 7 and worker.failed == 0


def test_restarted_worker_resumes_and_reconciles_nothing_twice(store):
    first = [make_report(hostname=f"a-{i}", serial=f"SN-A{i}") for i in range(3)]
    for r in first:
        _put(store, r)
    worker = ReconcileWorker(store, batch=8)
    worker.start()
    assert worker.drain(30)
    worker.stop()
    history_after_first = _history_kinds(store)
    assert [k for _, k in history_after_first].count("ci.create") == 6  # 3 computers, 3 OSes

    second = make_report(hostname="b-0", serial="SN-B0")
    _put(store, second)
    restarted = ReconcileWorker(store, batch=8)
    restarted.start()
    try:
        assert restarted.drain(30)
    finally:
        restarted.stop()
    assert restarted.reconciled == 1  # only the new report
    history = _history_kinds(store)
    assert set(history_after_first) <= set(history)
    assert [k for _, k in history].count("ci.create") == 8
    assert store.count_reports("reconciled") == 4


def test_drain_times_out_when_the_worker_is_not_running(store):
    worker = ReconcileWorker(store)
    assert worker.drain(0.2) is False


def test_a_busy_store_delays_a_report_but_never_fails_it(store, monkeypatch):
    """SQLite still locked after its busy timeout is transient: the report stays pending and is
    reconciled once the store answers again. (The lock is injected on the real store's apply,
    because a real lock only surfaces after the store's 30 s busy timeout.)"""
    import sqlite3

    import collector.worker as worker_mod

    monkeypatch.setattr(worker_mod, "STORE_RETRY_SECONDS", (0.05,))
    seq = _put(store, make_report(hostname="busy-01", serial="SN-B"))
    real_apply, calls = store.apply, []

    def locked_once(changes, report_seq=None):
        calls.append(report_seq)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_apply(changes, report_seq)

    monkeypatch.setattr(store, "apply", locked_once)
    worker = ReconcileWorker(store, batch=4)
    worker.start()
    try:
        assert worker.drain(10)
    finally:
        worker.stop()
    assert calls == [seq, seq]
    assert store.pending_reports(1) == []
    assert store.count_reports("failed") == 0 and store.count_reports("reconciled") == 1
    assert [c.attributes["hostname"].value for c in store.list_cis("Computer")] == ["busy-01"]
