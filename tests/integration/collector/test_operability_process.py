"""`fleetgraph collector serve` as a real process: slow clients are cut off, SIGTERM lets an
in-flight upload finish with its 202, JSON logs carry request ids and no secret, and a token
revoked with the CLI is refused at once by the running collector."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

from cmdb.report import encode_report
from tests.integration.collector.harness import make_report
from tests.integration.lab import Collector, fleetgraph

pytestmark = pytest.mark.timeout(120)


def _address(collector: Collector) -> tuple[str, int]:
    parts = urlsplit(collector.url)
    return parts.hostname, parts.port


@pytest.fixture
def running(tmp_path):
    started: list[Collector] = []

    def start(*args: str) -> Collector:
        c = Collector(tmp_path / "cmdb.sqlite", ("--no-reconcile", *args))
        c.start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the collector kept the connection open; got {data[:200]!r}")


def test_a_client_trickling_its_body_gets_408_and_is_disconnected(running):
    c = running("--request-timeout", "2")
    token = c.token("agent", "slow-agent")
    sock = socket.create_connection(_address(c), timeout=0.5)
    sock.sendall(f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
    started = time.monotonic()
    answer = b""
    for _ in range(30):  # one byte a second; 1000 would take a quarter of an hour
        try:
            sock.sendall(b"{")
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = sock.recv(4096)
            answer += chunk
            if not chunk:
                break
        except TimeoutError:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("a one-byte-a-second upload was never cut off")
    answer += _read_until_closed(sock, time.monotonic() + 10)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"collector.request_timeout" in answer
    assert time.monotonic() - started < 30
    assert c.proc.poll() is None  # the collector itself is fine
    assert c.get("/healthz", token)[0] == 200


def test_a_client_trickling_its_headers_is_disconnected(running):
    c = running("--header-timeout", "2")
    sock = socket.create_connection(_address(c), timeout=0.5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    closed_after = None
    started = time.monotonic()
    for _ in range(40):
        try:
            sock.sendall(b"X")  # a header line that never ends
            chunk = sock.recv(4096)
            if not chunk:
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - started
            break
        time.sleep(0.5)
    sock.close()
    assert closed_after is not None, "a connection that never finished its headers stayed open"


def test_sigterm_lets_an_upload_in_flight_finish_with_its_202(running):
    c = running()
    token = c.token("agent", "agent-in-flight")
    report = make_report(hostname="in-flight-01")
    body = encode_report(report)
    conn = http.client.HTTPConnection(*_address(c), timeout=30)
    conn.putrequest("POST", "/api/v1/reports")
    for name, value in (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body)))):
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    time.sleep(0.3)  # the handler is reading the body now
    c.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # stopped accepting: new connections are refused
        socket.create_connection(_address(c), timeout=2).close()
    conn.send(body[len(body) // 2:])
    response = conn.getresponse()
    answer = json.loads(response.read())
    assert response.status == 202 and answer["status"] == "accepted", answer
    assert c.proc.wait(30) == 0
    log = "".join(c.log)
    assert "finishing in-flight requests" in log and "collector stopped" in log

    from cmdb.backends import open_store

    store = open_store(c.store_url)
    try:
        assert store.get_report(report.report_id) is not None  # the 202 meant stored
    finally:
        store.close()


def test_json_logs_have_request_ids_and_no_secret(running):
    c = running("--log-format", "json", "--log-level", "debug")
    token = c.token("reader", "json-reader")
    status, _ = c.get("/api/v1/cis", token)
    assert status == 200
    assert c.get("/api/v1/cis", token[::-1])[0] == 401
    conn = http.client.HTTPConnection(*_address(c), timeout=10)
    conn.request("GET", f"/api/v1/cis?token={token}", headers={"X-Request-Id": "trace-42",
                                                             "Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    assert response.getheader("X-Request-Id") == "trace-42"
    assert c.stop() == 0
    lines = [line for line in c.log if not line.startswith("fleetgraph collector listening")]
    docs = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= set(d) for d in docs)
    (traced,) = [d for d in docs if d["request_id"] == "trace-42"]
    assert (traced["method"], traced["path"], traced["status"], traced["token_name"]) == \
        ("GET", "/api/v1/cis", 400, "json-reader")
    assert "duration_ms" in traced
    text = "".join(c.log)
    assert token not in text and token[::-1] not in text


def test_a_token_revoked_with_the_cli_is_refused_by_the_running_collector(running):
    c = running()
    token = c.token("reader", "ops-dashboard")
    assert c.get("/api/v1/cis", token)[0] == 200
    fleetgraph("token", "revoke", "--name", "ops-dashboard", "--store", c.store_url)
    status, answer = c.get("/api/v1/cis", token)
    assert status == 401 and "revoked" in answer["error"]


def test_bad_operability_options_stop_the_collector_with_a_clear_error(tmp_path):
    for args, words in ((("--rate-limit-token", "-1"), "rate_limit_token"),
                        (("--request-timeout", "0"), "request_timeout"),
                        (("--trusted-proxy", "proxy.example"), "trusted_proxies"),
                        (("--log-format", "xml"), "invalid choice")):
        proc = fleetgraph("collector", "serve", "--listen", "127.0.0.1:0", "--store",
                          f"sqlite:///{tmp_path}/x.sqlite", *args, check=False, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert words in proc.stderr, (args, proc.stderr)


def test_the_cli_refuses_an_unbound_scanner_token(tmp_path):
    proc = fleetgraph("token", "create", "--name", "loose", "--role", "scanner", "--store",
                      f"sqlite:///{tmp_path}/x.sqlite", check=False, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "enroll the scanner" in proc.stderr
    listed = fleetgraph("token", "list", "--store", f"sqlite:///{tmp_path}/x.sqlite").stdout
    assert "loose" not in listed
