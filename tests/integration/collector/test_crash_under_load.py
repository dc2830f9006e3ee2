"""kill -9 of the collector during sustained ingest (issue 6): every report that got a 202 (or a 200
duplicate) is in the store after restart and reconciled exactly once; none that got an error
response is stored. Eight real client threads post a mix of good reports and malformed ones to a
real collector process, which is killed with SIGKILL while they are at it."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid

from cmdb.report import encode_report
from tests.integration.collector.harness import make_report
from tests.integration.collector.test_process import Collector, _open_store, _token, store_url  # noqa: F401

CLIENTS = 8


def _post(url: str, token: str, body: bytes) -> int | None:
    """The HTTP status, or None when no answer came (the connection died with the server)."""
    req = urllib.request.Request(url + "/api/v1/reports", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def test_kill_9_during_sustained_ingest_loses_no_acknowledged_report(tmp_path, store_url):  # noqa: F811
    token = _token(tmp_path, store_url)
    collector = Collector(store_url, tmp_path)
    outcomes: dict[str, tuple[int | None, bool]] = {}  # report_id -> (status, was it valid)
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            valid = i % 5 != 0
            report = make_report(hostname=f"load-{n}-{i % 7}", serial=f"SN-{n}-{i % 7}")
            report.report_id = f"crash-{n}-{i}-{uuid.uuid4().hex[:8]}"
            body = encode_report(report)
            if not valid:  # a report the collector must refuse: a field of the wrong type
                doc = json.loads(body)
                doc["collected_at"] = "yesterday"
                body = json.dumps(doc).encode()
            status = _post(collector.url, token, body)
            with lock:
                outcomes[report.report_id] = (status, valid)
            if status is None:
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            accepted = sum(1 for s, _v in outcomes.values() if s == 202)
        if accepted >= 150:
            break
        time.sleep(0.05)
    collector.proc.kill()  # SIGKILL while the clients are posting
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join(timeout=30)

    acknowledged = {rid for rid, (s, _v) in outcomes.items() if s in (200, 202)}
    refused = {rid for rid, (s, _v) in outcomes.items() if s is not None and s >= 400}
    assert len(acknowledged) >= 100, f"too few reports acknowledged before the kill: {len(acknowledged)}"
    assert refused and all(not outcomes[r][1] for r in refused), "only the malformed reports are refused"

    restarted = Collector(store_url, tmp_path)
    restarted.wait_until_reconciled(timeout=120)
    assert restarted.stop() == 0

    store = _open_store(store_url)
    try:
        for rid in acknowledged:
            stored = store.get_report(rid)
            assert stored is not None, f"{rid} got a 202 but is not in the store"
            assert stored.status == "reconciled", (rid, stored.status, stored.error)
        for rid in refused:
            assert store.get_report(rid) is None, f"{rid} was refused but stored"
        # Exactly once: each machine was created once, whatever the number of its reports.
        for ci in store.list_cis(state=None, limit=100_000):
            kinds = [r.kind for r in store.history(ci.ci_id, limit=100_000) if r.ci_id == ci.ci_id]
            assert kinds.count("ci.create") == 1, (ci.ci_id, kinds)
        assert store.count_reports("pending") == 0
    finally:
        store.close()


def test_prefork_workers_share_the_socket_and_stop_cleanly(tmp_path, store_url):  # noqa: F811
    """collector.workers = 2: two processes accept on one socket; every acknowledged report is
    stored and reconciled exactly once (by worker 0); SIGTERM to the parent stops both, exit 0."""
    token = _token(tmp_path, store_url)
    collector = Collector(store_url, tmp_path, "--workers", "2", "--rate-limit-source", "0")
    statuses = []
    for i in range(40):
        report = make_report(hostname=f"pf-{i % 4}", serial=f"SN-PF-{i % 4}")
        statuses.append(_post(collector.url, token, encode_report(report)))
    assert statuses == [202] * 40
    collector.wait_until_reconciled(timeout=60)
    assert collector.stop() == 0
    store = _open_store(store_url)
    try:
        assert store.count_reports("reconciled") == 40
        assert store.count_cis(state=None)["Computer"] == 4
    finally:
        store.close()
