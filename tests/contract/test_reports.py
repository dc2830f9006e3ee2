"""The raw-report log: durable before acknowledgement, idempotent on report_id, consumed by seq."""

from __future__ import annotations

import hashlib
from datetime import timezone

from tests.contract.conftest import Backend
from tests.contract.fleet import at


def body(n: int) -> bytes:
    return b'{"report": %d, "bytes": "\\u0000\xc3\xa9"}' % n


def test_put_report_stores_the_body_verbatim(store):
    put = store.put_report("report-0001", "agent", "agent-web-01", at(0), body(1))
    assert put.created and put.seq > 0
    assert put.digest == hashlib.sha256(body(1)).hexdigest()
    assert put.received_at.tzinfo is not None
    stored = store.get_report("report-0001")
    assert (stored.seq, stored.report_id, stored.source_kind, stored.source_id) == \
        (put.seq, "report-0001", "agent", "agent-web-01")
    assert stored.body == body(1) and isinstance(stored.body, bytes)
    assert stored.digest == put.digest
    assert stored.collected_at == at(0) and stored.collected_at.utcoffset().total_seconds() == 0
    assert stored.received_at == put.received_at
    assert stored.status == "pending" and stored.reconciled_at is None and stored.error is None
    assert store.get_report("report-missing") is None


def test_put_report_is_idempotent_and_keeps_the_original(store):
    first = store.put_report("report-0001", "agent", "agent-web-01", at(0), body(1))
    again = store.put_report("report-0001", "agent", "agent-web-01", at(0), body(1))
    conflict = store.put_report("report-0001", "agent", "agent-web-01", at(5), body(2))
    assert not again.created and not conflict.created
    assert again.seq == conflict.seq == first.seq
    assert again.digest == conflict.digest == first.digest  # the caller tells replay from conflict
    assert again.received_at == first.received_at
    assert store.get_report("report-0001").body == body(1)
    assert store.count_reports() == 1


def test_put_report_is_durable_before_it_returns(backend: Backend, store, tmp_path):
    put = store.put_report("report-0001", "agent", "agent-web-01", at(0), body(1))
    other = backend.open(tmp_path)  # a second store on the same data sees the committed report
    try:
        assert other.get_report("report-0001").seq == put.seq
    finally:
        other.close()


def test_pending_reports_come_oldest_first(store):
    seqs = [store.put_report(f"report-{n:04d}", "ssh", "scanner-1", at(10 - n), body(n)).seq for n in range(5)]
    assert seqs == sorted(seqs)
    pending = store.pending_reports()
    assert [r.seq for r in pending] == seqs
    assert [r.report_id for r in store.pending_reports(limit=2)] == ["report-0000", "report-0001"]


def test_pending_reports_stay_within_a_byte_budget(store):
    sizes = [1000, 1000, 5000, 10]
    for n, size in enumerate(sizes):
        store.put_report(f"report-b{n:03d}", "agent", "a", at(n), b"x" * size)
    assert [len(r.body) for r in store.pending_reports(max_bytes=2500)] == [1000, 1000]
    assert [len(r.body) for r in store.pending_reports(max_bytes=10**6)] == sizes
    # The oldest report always comes, even when it alone is over the budget: the log never stalls.
    assert [len(r.body) for r in store.pending_reports(max_bytes=10)] == [1000]


def test_mark_failed_takes_a_report_out_of_pending(store):
    a = store.put_report("report-000a", "agent", "a", at(0), body(1))
    store.put_report("report-000b", "agent", "a", at(1), body(2))
    store.mark_report_failed(a.seq, "items[3].class: unknown class 'Toaster'")
    failed = store.get_report("report-000a")
    assert failed.status == "failed" and failed.error == "items[3].class: unknown class 'Toaster'"
    assert [r.report_id for r in store.pending_reports()] == ["report-000b"]
    assert store.count_reports() == 2
    assert store.count_reports("pending") == 1
    assert store.count_reports("failed") == 1
    assert store.count_reports("reconciled") == 0


def test_times_come_back_in_utc_whatever_zone_went_in(store):
    from datetime import timedelta
    paris = timezone(timedelta(hours=1))
    store.put_report("report-tz01", "agent", "a", at(0).astimezone(paris), body(1))
    assert store.get_report("report-tz01").collected_at == at(0)


def test_report_head_gives_source_and_mode_without_the_body(store):
    store.put_report("report-full-1", "agent", "a-1", at(0), b'{"x": 1}')
    store.put_report("report-delta-1", "agent", "a-1", at(1), b'{"x": 2}', mode="delta")
    full, delta = store.report_head("report-full-1"), store.report_head("report-delta-1")
    assert (full.source_kind, full.source_id, full.mode) == ("agent", "a-1", "full")
    assert delta.mode == "delta"
    assert store.report_head("report-nope") is None
