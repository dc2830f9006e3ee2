"""`fleetgraph collector serve` as a real process: kill -9 after the 202, restart, exactly once.

Also: SIGTERM is a clean exit 0, and `fleetgraph token create` prints the token and nothing else.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cmdb.backends import sqlite_url
from cmdb.report import encode_report
from tests.integration.collector.harness import make_report

REPO = Path(__file__).resolve().parents[3]
LISTENING = "fleetgraph collector listening on "


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETGRAPH_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _fleetgraph(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cmdb.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


class Collector:
    """A collector subprocess; `url` is known once it printed its listening line."""

    def __init__(self, store_url: str, cwd: Path, *extra: str):
        self.log = cwd / f"collector-{time.monotonic_ns()}.log"
        self._stderr = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0",
             "--store", store_url, *extra],
            cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"collector did not start: {self.log.read_text()}") from None
        assert line.startswith(LISTENING), line
        self.url = line[len(LISTENING):].strip()
        assert not self.url.endswith(":0")

    def request(self, method: str, path: str, token: str | None = None, body: bytes | None = None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_until_reconciled(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, health = self.request("GET", "/healthz")
            if status == 200 and health["pending_reports"] == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"reports still pending after {timeout}s: {self.log.read_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._stderr.close()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "data" / "db.sqlite")  # the folder does not exist yet


def _token(tmp_path: Path, store_url: str, role: str = "agent") -> str:
    out = _fleetgraph("token", "create", "--name", f"{role}-token", "--role", role, "--store", store_url,
                      cwd=tmp_path).stdout
    lines = out.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 40, out  # the token and nothing else
    return lines[0]


def _open_store(store_url: str):
    from cmdb.backends import open_store

    return open_store(store_url)


def test_kill_9_after_202_then_restart_reconciles_exactly_once(tmp_path, store_url):
    token = _token(tmp_path, store_url)
    report = make_report(hostname="crash-01", serial="SN-CRASH")

    ingest_only = Collector(store_url, tmp_path, "--no-reconcile")
    status, body = ingest_only.request("POST", "/api/v1/reports", token, encode_report(report))
    assert status == 202 and body["status"] == "accepted", body
    ingest_only.proc.kill()  # kill -9: no shutdown hooks, nothing flushed by us
    assert ingest_only.stop(signal.SIGKILL) == -signal.SIGKILL

    store = _open_store(store_url)
    try:
        assert store.get_report(report.report_id).status == "pending"  # durable before the 202
    finally:
        store.close()

    with_worker = Collector(store_url, tmp_path)
    with_worker.wait_until_reconciled()
    status, body = with_worker.request("POST", "/api/v1/reports", token, encode_report(report))
    assert status == 200 and body["status"] == "duplicate"  # the log still knows it
    assert with_worker.stop() == 0

    store = _open_store(store_url)
    try:
        stored = store.get_report(report.report_id)
        assert stored.status == "reconciled" and stored.reconciled_at is not None
        (computer,) = store.list_cis("Computer", state=None)
        assert computer.attributes["hostname"].value == "crash-01"
        cis = store.list_cis(state=None, limit=1000)
        assert sorted(c.ci_class for c in cis) == ["Computer", "OperatingSystem"]
        history = {c.ci_id: [r.kind for r in store.history(c.ci_id) if r.ci_id == c.ci_id] for c in cis}
        assert all(kinds.count("ci.create") == 1 for kinds in history.values()), history
        total_rows = sum(len(store.history(c.ci_id)) for c in cis)
    finally:
        store.close()

    again = Collector(store_url, tmp_path)  # a third start finds nothing to do
    again.wait_until_reconciled()
    assert again.stop() == 0
    store = _open_store(store_url)
    try:
        assert store.get_report(report.report_id).reconciled_at == stored.reconciled_at
        assert sum(len(store.history(c.ci_id)) for c in cis) == total_rows
        assert store.count_reports() == 1
        assert store.count_cis(state=None) == {"Computer": 1, "OperatingSystem": 1}
    finally:
        store.close()


def test_sigterm_and_sigint_exit_cleanly(tmp_path, store_url):
    for sig in (signal.SIGTERM, signal.SIGINT):
        collector = Collector(store_url, tmp_path)
        status, health = collector.request("GET", "/healthz")
        assert status == 200 and health["status"] == "ok" and health["reconcile"] == "running"
        assert collector.stop(sig) == 0, collector.log.read_text()
        assert "collector stopped" in collector.log.read_text()


def test_token_commands(tmp_path, store_url):
    reader = _token(tmp_path, store_url, "reader")
    listed = _fleetgraph("token", "list", "--store", store_url, cwd=tmp_path, check=False)
    if listed.returncode == 0:
        assert "reader-token" in listed.stdout and reader not in listed.stdout
    dup = _fleetgraph("token", "create", "--name", "reader-token", "--role", "reader", "--store", store_url,
                      cwd=tmp_path, check=False)
    assert dup.returncode == 1 and dup.stdout == "" and "reader-token" in dup.stderr
    revoked = _fleetgraph("token", "revoke", "--name", "reader-token", "--store", store_url, cwd=tmp_path)
    assert "revoked 1 token" in revoked.stderr
    again = _fleetgraph("token", "revoke", "--name", "reader-token", "--store", store_url, cwd=tmp_path,
                        check=False)
    assert again.returncode == 1 and "no valid token" in again.stderr
    bad_role = _fleetgraph("token", "create", "--name", "x", "--role", "root", "--store", store_url,
                           cwd=tmp_path, check=False)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
