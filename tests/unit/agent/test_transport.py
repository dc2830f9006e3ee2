"""The transport against a real HTTP server on 127.0.0.1, and a whole agent run posting to it."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.runner import run_once
from agent.transport import ServerRejected, ServerUnreachable, reports_url, send_report
from cmdb.report import decode_report

TOKEN = "fg_agent_s3cr3t-token-value"


class FakeCollector(ThreadingHTTPServer):
    """A real HTTP server whose answer the test sets: (status, content type, body, delay)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer = (202, "application/json", b'{"status": "accepted"}', 0.0)
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, ctype, payload, delay = self.server.answer
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout test)

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    srv = FakeCollector()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


BODY = json.dumps({"schema": "fleetgraph.report/1", "items": ["x" * 1000]}).encode()


def test_accepted_report_is_gzipped_and_authenticated(server):
    result = send_report(server.url + "/fleet/", TOKEN, BODY, timeout=5)
    assert (result.status, result.duplicate, result.response) == (202, False, {"status": "accepted"})
    request = server.requests[0]
    assert request["path"] == "/fleet/api/v1/reports"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["content-encoding"] == "gzip"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert gzip.decompress(request["body"]) == BODY
    assert result.bytes_sent == len(request["body"]) < len(BODY)


def test_replay_is_reported_as_duplicate(server):
    server.answer = (200, "application/json", b'{"status": "duplicate"}', 0.0)
    result = send_report(server.url, TOKEN, BODY, timeout=5)
    assert (result.status, result.duplicate) == (200, True)


@pytest.mark.parametrize(("status", "ctype", "payload", "message"), [
    (401, "application/json", b'{"error": "unknown or revoked agent token"}', "unknown or revoked agent token"),
    (400, "application/json",
     b'{"error": "invalid report", "field": "$.items[0].ref", "rule": "Expected `str`"}',
     "$.items[0].ref: Expected `str`"),
    (413, "text/plain", b"report larger than 64 MiB", "report larger than 64 MiB"),
    (500, "text/html", b"<html>Internal Server Error</html>", "<html>Internal Server Error</html>"),
    (302, "text/plain", b"", None),
])
def test_error_statuses_map_to_rejected(server, status, ctype, payload, message):
    server.answer = (status, ctype, payload, 0.0)
    with pytest.raises(ServerRejected) as info:
        send_report(server.url, TOKEN, BODY, timeout=5)
    assert info.value.status == status and info.value.message == message
    assert f"HTTP {status}" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.__dict__)
    assert len(server.requests) == 1  # a redirect is not followed: the token stays here


def test_refused_connection_is_unreachable():
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerUnreachable) as info:
        send_report(f"http://127.0.0.1:{port}", TOKEN, BODY, timeout=5)
    assert "unreachable" in str(info.value) and "refused" in str(info.value).lower()
    assert TOKEN not in str(info.value)


def test_slow_server_is_unreachable(server):
    server.answer = (202, "application/json", b"{}", 1.5)
    with pytest.raises(ServerUnreachable, match="unreachable"):
        send_report(server.url, TOKEN, BODY, timeout=0.3)


def test_bad_urls_and_tokens_are_refused_before_sending():
    with pytest.raises(ValueError, match="http"):
        reports_url("file:///etc/passwd")
    with pytest.raises(ValueError, match="credentials"):
        reports_url("http://user:pw@127.0.0.1:1")
    with pytest.raises(ValueError, match="token"):
        send_report("http://127.0.0.1:1", "a\r\nX-Evil: 1", BODY)


def test_run_once_sends_the_report(server, tmp_path):
    result = run_once(server.url, TOKEN, tmp_path / "state", output=tmp_path / "report.json", timeout=10)
    assert result.http_status == 202 and result.complete
    sent = gzip.decompress(server.requests[0]["body"])
    assert result.bytes_sent == len(server.requests[0]["body"]) and result.bytes_raw == len(sent)
    report = decode_report(sent)
    assert report.report_id == result.report_id and report.source.id == result.agent_id
    assert (tmp_path / "report.json").read_bytes() == sent
    assert result.counts["Computer"] == 1 and result.counts["SoftwareInstall"] > 0


def test_run_once_dry_run_sends_nothing(tmp_path):
    result = run_once(None, None, tmp_path / "state", output=tmp_path / "r.json.gz", dry_run=True)
    assert (result.http_status, result.bytes_sent) == (None, None)
    report = decode_report(gzip.decompress((tmp_path / "r.json.gz").read_bytes()))
    assert report.report_id == result.report_id and decode_report(result.report_json) == report
    again = run_once(None, None, tmp_path / "state", dry_run=True)
    assert again.agent_id == result.agent_id and again.report_id != result.report_id
    with pytest.raises(ValueError, match="dry_run"):
        run_once(None, None, tmp_path / "state")
