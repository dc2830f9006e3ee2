"""The outbox's policies on a real directory: spool, order, ack, backoff, refusal, supersede, cap.

The sender here is a plain function that answers the way agent.transport does (its real
exceptions); the whole path over HTTP to a real collector is in tests/integration/agent.
"""

from __future__ import annotations

import json
import logging
import os
import random
import stat
import time

import pytest

from agent.outbox import OUTBOX_DIR, REJECTED_KEEP, RETRY_BASE_SECONDS, Outbox
from agent.transport import SendResult, ServerRejected, ServerUnreachable

URL = "http://127.0.0.1:9/api/v1/reports"


class Ledger:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def acknowledged(self, meta, result):
        self.events.append(("ack", meta["report_id"]))

    def rejected(self, meta, reason):
        self.events.append(("rejected", meta["report_id"]))

    def dropped(self, meta, why):
        self.events.append(("dropped", meta["report_id"]))

    def base_refused(self, meta):
        self.events.append(("base_refused", meta["report_id"]))


class Collector:
    """Answers in order from a script; records the report ids it was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent: list[str] = []

    def __call__(self, body: bytes) -> SendResult:
        self.sent.append(json.loads(body)["report_id"])
        answer = self.answers.pop(0) if self.answers else 202
        if isinstance(answer, Exception):
            raise answer
        return SendResult(status=answer, duplicate=answer == 200, bytes_sent=len(body), response=None)


def meta(report_id: str, mode: str = "delta", base: str | None = "full-0001") -> dict:
    return {"report_id": report_id, "mode": mode, "base_report_id": base if mode == "delta" else None,
            "sections": {}}


def body(report_id: str, size: int = 10) -> bytes:
    return json.dumps({"report_id": report_id, "pad": os.urandom(size).hex()}).encode()


@pytest.fixture
def outbox(tmp_path):
    return Outbox(tmp_path / "state", 10**9, rand=random.Random(7))


def queue(outbox, ledger, *ids, mode="delta", size=10):
    for report_id in ids:
        outbox.enqueue(body(report_id, size), meta(report_id, mode), ledger)


def test_spooled_owner_only_and_delivered_oldest_first(outbox, tmp_path):
    ledger = Ledger()
    queue(outbox, ledger, "rep-0001", "rep-0002", "rep-0003")
    for path in [tmp_path / "state", tmp_path / "state" / OUTBOX_DIR, *outbox.dir.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert not [p for p in outbox.dir.iterdir() if p.name.startswith(".")]
    collector = Collector(202, 200, 202)
    result = outbox.flush(collector, ledger)
    assert collector.sent == ["rep-0001", "rep-0002", "rep-0003"]
    assert result.delivered == [("rep-0001", 202), ("rep-0002", 200), ("rep-0003", 202)]
    assert ledger.events == [("ack", "rep-0001"), ("ack", "rep-0002"), ("ack", "rep-0003")]
    assert outbox.entries() == [] and result.pending == 0


def test_transient_failure_stops_keeps_order_and_backs_off(outbox):
    ledger = Ledger()
    queue(outbox, ledger, "rep-0001", "rep-0002")
    down = Collector(ServerUnreachable(URL, "connection refused"))
    result = outbox.flush(down, ledger)
    assert down.sent == ["rep-0001"] and result.pending == 2 and "refused" in result.error
    retry = outbox.retry_state()
    assert retry["attempts"] == 1 and time.time() <= retry["next_attempt_at"] <= time.time() + 2 * RETRY_BASE_SECONDS
    # A restarted daemon honours the persisted time; an explicit run does not.
    again = Outbox(outbox.dir.parent, 10**9)
    assert again.flush(Collector(), ledger, respect_backoff=True).deferred_until == retry["next_attempt_at"]
    for status in (503, 429, 408, 401):
        outbox.flush(Collector(ServerRejected(URL, status, "busy")), ledger, respect_backoff=False)
    assert outbox.retry_state()["attempts"] == 5 and len(outbox.entries()) == 2
    assert outbox.retry_state()["next_attempt_at"] <= time.time() + outbox.retry_max
    result = outbox.flush(Collector(), ledger, respect_backoff=False)
    assert [r for r, _ in result.delivered] == ["rep-0001", "rep-0002"] and outbox.retry_state() == {}


def test_backoff_is_capped_full_jitter(tmp_path):
    outbox = Outbox(tmp_path, 10**9, retry_max=30, rand=random.Random(1))
    queue(outbox, Ledger(), "rep-0001")
    delays = []
    for _ in range(12):
        before = time.time()
        outbox.flush(Collector(ServerUnreachable(URL, "timeout")), Ledger(), respect_backoff=False)
        delays.append(outbox.retry_state()["next_attempt_at"] - before)
    assert all(0 <= d <= 30.5 for d in delays) and len({round(d, 3) for d in delays}) > 6


def test_refused_report_moves_to_rejected_with_the_reason_and_the_rest_goes_on(outbox):
    ledger = Ledger()
    queue(outbox, ledger, "rep-0001", "rep-0002")
    result = outbox.flush(Collector(ServerRejected(URL, 400, "$.items[0].class: bad"), 202), ledger)
    assert result.rejected == [("rep-0001", result.rejected[0][1])] and result.delivered == [("rep-0002", 202)]
    assert ledger.events == [("rejected", "rep-0001"), ("ack", "rep-0002")]
    kept = sorted(p.name for p in outbox.rejected_dir.iterdir())
    assert kept == ["000000000001-rep-0001.reason", "000000000001-rep-0001.report"]
    reason = json.loads((outbox.rejected_dir / kept[0]).read_text())
    assert "HTTP 400" in reason["reason"] and "$.items[0].class" in reason["reason"]


def test_rejected_is_bounded(outbox):
    ledger = Ledger()
    ids = [f"rep-{i:04d}" for i in range(REJECTED_KEEP + 5)]
    queue(outbox, ledger, *ids)
    outbox.flush(Collector(*[ServerRejected(URL, 413, "too large")] * len(ids)), ledger)
    reports = sorted(p.name for p in outbox.rejected_dir.iterdir() if p.suffix == ".report")
    assert len(reports) == REJECTED_KEEP and reports[-1].endswith(ids[-1] + ".report")
    assert len(list(outbox.rejected_dir.iterdir())) == 2 * REJECTED_KEEP


def test_base_unknown_drops_every_delta_on_that_base(outbox):
    ledger = Ledger()
    queue(outbox, ledger, "rep-0001", "rep-0002")
    outbox.enqueue(body("rep-0003"), meta("rep-0003", base="full-other"), ledger)
    refused = ServerRejected(URL, 422, "base unknown", code="base_unknown")
    result = outbox.flush(Collector(refused, 202), ledger)
    assert result.base_refused == ["rep-0001", "rep-0002"] and result.delivered == [("rep-0003", 202)]
    assert ledger.events[0] == ("base_refused", "rep-0001") and not list(outbox.rejected_dir.iterdir())


def test_a_queued_full_report_supersedes_older_ones(outbox, caplog):
    ledger = Ledger()
    queue(outbox, ledger, "full-0001", mode="full")
    queue(outbox, ledger, "rep-0002", "rep-0003")
    with caplog.at_level(logging.INFO, "fleetgraph.agent.outbox"):
        queue(outbox, ledger, "full-0004", mode="full")
    assert [e.report_id for e in outbox.entries()] == ["full-0004"]
    assert "supersedes 3 older queued report(s)" in caplog.text and ledger.events == []


def test_over_the_cap_the_oldest_go_and_it_is_logged(tmp_path, caplog):
    ledger = Ledger()
    probe = Outbox(tmp_path / "probe", 10**9)
    queue(probe, ledger, "rep-size", size=200)
    one = probe.entries()[0].size
    outbox = Outbox(tmp_path / "state", 3 * one + one // 2)
    with caplog.at_level(logging.WARNING, "fleetgraph.agent.outbox"):
        queue(outbox, ledger, "full-0001", mode="full", size=200)
        outbox.enqueue(body("rep-0002", 200), meta("rep-0002", base="full-0001"), ledger)
        outbox.enqueue(body("rep-0003", 200), meta("rep-0003", base="full-0001"), ledger)
        outbox.enqueue(body("rep-0004", 200), meta("rep-0004", base="other-base"), ledger)
    # The full report went first, and the deltas built on it with it; the newest stays.
    assert [e.report_id for e in outbox.entries()] == ["rep-0004"]
    assert ledger.events == [("dropped", "full-0001"), ("dropped", "rep-0002"), ("dropped", "rep-0003")]
    assert "over agent.outbox_max_bytes" in caplog.text and "its base report full-0001 was dropped" in caplog.text
    assert outbox.total_bytes() <= outbox.max_bytes

    tiny = Outbox(tmp_path / "tiny", 10)
    with caplog.at_level(logging.WARNING, "fleetgraph.agent.outbox"):
        queue(tiny, ledger, "rep-big", size=500)
    assert [e.report_id for e in tiny.entries()] == ["rep-big"] and "alone" in caplog.text


def test_damaged_and_half_written_files(outbox):
    ledger = Ledger()
    queue(outbox, ledger, "rep-0001")
    (outbox.dir / ".000000000002-rep-0002.report.123.abcd.tmp").write_bytes(b"half")
    (outbox.dir / "000000000003-rep-0003.report").write_bytes(b"garbage")
    outbox = Outbox(outbox.dir.parent, 10**9)
    outbox.remove_stale_temporaries()
    assert not [p for p in outbox.dir.iterdir() if p.name.endswith(".tmp")]
    result = outbox.flush(Collector(), ledger)
    assert result.delivered == [("rep-0001", 202)] and result.rejected[0][0] == "rep-0003"
