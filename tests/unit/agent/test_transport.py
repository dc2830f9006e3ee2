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


class RawCollector:
    """A socket server that answers every connection with fixed bytes (HTTP framings the
    standard server does not produce: chunked, no Content-Length, 100 Continue, junk)."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.requests: list[bytes] = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sta\r\n10;ext=1\r\ntus\": \"accepted\"\r\n1\r\n}\r\n0\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n\r\n{\"status\": \"accepted\"}",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 22\r\n\r\n{\"status\": \"accepted\"}",
    b"HTTP/1.0 202 Accepted\nContent-Length: 22\n\n{\"status\": \"accepted\"}",
])
def test_answer_framings(answer):
    raw = RawCollector(answer)
    try:
        result = send_report(raw.url, TOKEN, BODY, timeout=5)
    finally:
        raw.close()
    assert (result.status, result.response) == (202, {"status": "accepted"})
    head = raw.requests[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /api/v1/reports HTTP/1.1\r\n")
    assert f"Host: {raw.url.split('//')[1]}" in head and "Connection: close" in head


@pytest.mark.parametrize(("answer", "reason"), [
    (b"", "closed before any answer"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
])
def test_a_garbled_answer_is_unreachable(answer, reason):
    raw = RawCollector(answer)
    try:
        with pytest.raises(ServerUnreachable, match=reason):
            send_report(raw.url, TOKEN, BODY, timeout=5)
    finally:
        raw.close()


def test_an_error_body_is_read_up_to_its_limit():
    message = b'{"error": "' + b"x" * 200_000 + b'"}'
    raw = RawCollector(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(message) + message)
    try:
        with pytest.raises(ServerRejected) as info:
            send_report(raw.url, TOKEN, BODY, timeout=5)
    finally:
        raw.close()
    assert info.value.status == 400 and info.value.message.startswith("{\"error\": \"xxx")


def test_a_configured_proxy_is_used(server, monkeypatch):
    """With http_proxy set, urllib.request sends the report, through the proxy (here: the fake
    collector itself, which then sees the absolute URL as the request target)."""
    from agent import transport

    monkeypatch.setenv("http_proxy", server.url)
    assert transport.proxy_configured()
    result = send_report("http://collector.invalid:8420", TOKEN, BODY, timeout=5)
    assert result.status == 202
    assert server.requests[0]["path"] == "http://collector.invalid:8420/api/v1/reports"
    monkeypatch.setenv("http_proxy", "")
    monkeypatch.setenv("no_proxy", "*")
    assert not transport.proxy_configured()


def test_plain_http_imports_neither_ssl_nor_urllib_request(server):
    import subprocess
    import sys

    code = ("import sys\nfrom agent.transport import send_report\n"
            f"send_report({server.url!r}, {TOKEN!r}, b'{{}}', timeout=5)\n"
            "print(sorted(m for m in ('ssl', 'urllib.request', 'http.client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in __import__("os").environ.items() if not k.lower().endswith("_proxy")})
    assert out.stdout.strip() == "[]"


def test_https_with_a_pinned_ca(tmp_path):
    import ssl

    from tests.integration.enroll.tls import make_pki

    pki = make_pki(tmp_path / "pki")
    srv = FakeCollector()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{srv.server_address[1]}"
    try:
        result = send_report(url, TOKEN, BODY, timeout=5, cafile=str(pki.ca_cert))
        assert result.status == 202 and srv.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
        with pytest.raises(ServerUnreachable, match="certificate verify failed.*--ca-file"):
            send_report(url, TOKEN, BODY, timeout=5, cafile=str(pki.other_ca_cert))
        with pytest.raises(ServerUnreachable, match="certificate verify failed"):
            send_report(url, TOKEN, BODY, timeout=5)  # the system CAs do not know the test CA
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x\r\nX-Injected: 1", "http://127.0.0.1:1/a b",
                                  "http://127.0.0.1\t:1", "http://127.0.0.1:1/\x00"])
def test_a_server_url_with_control_characters_is_refused(url):
    from agent.transport import reports_url

    with pytest.raises(ValueError, match="control characters"):
        reports_url(url)
