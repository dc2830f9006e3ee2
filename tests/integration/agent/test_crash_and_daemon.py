"""The agent as a real process: killed with SIGKILL mid-send, and running as a daemon."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.agent.conftest import agent_cli, stored_reports
from tests.integration.lab import REPO, Collector


class StallingProxy:
    """Takes the agent's POST and never answers. With `forward_to`, it first hands the request to
    the real collector (which stores it): the acknowledgement is what gets lost."""

    def __init__(self, forward_to: str | None):
        self.forward_to = forward_to
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.got_request = threading.Event()
        self.forwarded_status: int | None = None
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self._conns.append(conn)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["Content-Length"]):
            body += conn.recv(65536)
        if self.forward_to:
            host, port = self.forward_to.removeprefix("http://").split(":")
            upstream = http.client.HTTPConnection(host, int(port), timeout=30)
            upstream.request("POST", lines[0].split()[1], body=body,
                             headers={k: v for k, v in headers.items() if k.lower() != "host"})
            self.forwarded_status = upstream.getresponse().status
            upstream.close()
        self.got_request.set()  # and never answer

    def close(self) -> None:
        for c in self._conns:
            c.close()
        self.sock.close()


def start_agent(url: str, token: str, state_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cmdb.cli", "agent", "run", "--server", url,
                             "--state-dir", str(state_dir), *args],
                            cwd=REPO, env={**os.environ, "FLEETGRAPH_AGENT_TOKEN": token},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("stored_before_kill", [False, True], ids=["request-lost", "ack-lost"])
def test_kill_9_mid_send_loses_nothing_and_stores_nothing_twice(collector, tmp_path, stored_before_kill):
    token = collector.token("agent", "killed-agent")
    proxy = StallingProxy(collector.url if stored_before_kill else None)
    agent = start_agent(proxy.url, token, tmp_path / "agent", "--once", "--timeout", "120")
    try:
        assert proxy.got_request.wait(60), agent.stderr.read() if agent.poll() is not None else "no request"
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    finally:
        proxy.close()
    (queued,) = (tmp_path / "agent" / "outbox").glob("*.report")
    killed_id = queued.name.split("-", 1)[1].removesuffix(".report")
    assert (killed_id in stored_reports(collector.store_url)) == stored_before_kill
    if stored_before_kill:
        assert proxy.forwarded_status == 202

    out = agent_cli(collector.url, token, tmp_path / "agent")
    assert "delivered 1 queued report(s)" in out.stdout
    stored = list(stored_reports(collector.store_url))
    assert len(stored) == len(set(stored)) == 2 and stored[0] == killed_id
    # The killed run's full report is the base the next run's delta was cut against.
    assert out.stdout.startswith("delta report")
    assert not list((tmp_path / "agent" / "outbox").glob("*.report"))


def test_daemon_reports_every_interval_and_exits_0_on_sigterm(collector, tmp_path):
    token = collector.token("agent", "daemon-agent")
    agent = start_agent(collector.url, token, tmp_path / "agent", "--interval", "1")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(stored_reports(collector.store_url)) < 2:
            assert agent.poll() is None, agent.stderr.read()
            time.sleep(0.2)
        reports = list(stored_reports(collector.store_url).values())
        assert len(reports) >= 2
        assert reports[0].get("mode", "full") == "full" and reports[1]["mode"] == "delta"
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert "agent stopping" in agent.stderr.read()


def test_daemon_runs_now_on_sighup(collector, tmp_path):
    token = collector.token("agent", "hup-agent")
    agent = start_agent(collector.url, token, tmp_path / "agent", "--interval", "3600", "--splay", "0")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(stored_reports(collector.store_url)) < 1:
            time.sleep(0.2)
        assert len(stored_reports(collector.store_url)) == 1
        agent.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(stored_reports(collector.store_url)) < 2:
            time.sleep(0.2)
        assert len(stored_reports(collector.store_url)) == 2
        agent.send_signal(signal.SIGINT)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_daemon_retries_the_outbox_when_the_collector_comes_back(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    collector = Collector(tmp_path / "cmdb.sqlite", extra_args=("--listen", f"127.0.0.1:{port}"))
    token = collector.token("agent", "retry-agent")
    agent = start_agent(f"http://127.0.0.1:{port}", token, tmp_path / "agent",
                        "--interval", "3600", "--splay", "0", "--retry-max", "1")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list((tmp_path / "agent" / "outbox").glob("*.report")):
            time.sleep(0.1)
        assert list((tmp_path / "agent" / "outbox").glob("*.report")), "the first run queued nothing"
        collector.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stored_reports(collector.store_url):
            assert agent.poll() is None, agent.stderr.read()
            time.sleep(0.2)
        assert len(stored_reports(collector.store_url)) == 1  # delivered by a retry, not a new run
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        collector.stop()
    log = agent.stderr.read()
    assert "delivered 1 queued report(s)" in log and "failed" not in log.split("delivered")[1]
