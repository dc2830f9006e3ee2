"""Records through a real collector process: drift from real reports opens an incident, visible in
the API and announced to a real webhook receiver with a valid signature; changes are driven over
HTTP by an operator, refused to a reader, and bad requests are answered 4xx without a change."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cmdb.report import encode_report
from collector.webhooks import verify_signature
from tests.integration.collector.harness import make_report
from tests.integration.lab import Collector

SECRET = "a-webhook-secret-of-some-length"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _call(url: str, method: str, token: str, body: object | bytes | None = None,
          content_type: str = "application/json") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_drift_opens_an_incident_seen_in_the_api_and_by_the_webhook(tmp_path, receiver):
    secret = tmp_path / "webhook.secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    collector = Collector(tmp_path / "cmdb.sqlite", ("--webhook", receiver, "--webhook-secret-file", str(secret),
                                                     "--rate-limit-source", "0")).start()
    try:
        agent, reader, operator = (collector.token(r, f"{r}-t") for r in ("agent", "reader", "operator"))
        for version in ("12", "13"):
            report = make_report(hostname="db01", serial="SN-REC", os_version=version)
            status, _ = _call(collector.url + "/api/v1/reports", "POST", agent, encode_report(report))
            assert status == 202
            collector.wait_reconciled()
        status, incidents = _call(collector.url + "/api/v1/incidents?open=true", "GET", reader)
        assert status == 200 and incidents["count"] == 1
        incident = incidents["items"][0]
        assert incident["origin"] == "drift" and "version" in incident["title"] and incident["drift"]
        _, drift = _call(collector.url + "/api/v1/drift", "GET", reader)
        assert [(d["attribute"], d["disposition"], d["record"]) for d in drift["items"]] == \
            [("version", "incident", incident["number"])]
        deadline = time.monotonic() + 20
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        headers, body = _Receiver.received[0]
        event = json.loads(body)
        assert event["type"] == "incident.opened" and event["record"] == incident["number"]
        assert verify_signature(SECRET.encode(), headers["X-Fleetgraph-Timestamp"], body,
                                headers["X-Fleetgraph-Signature"])

        status, resolved = _call(collector.url + f"/api/v1/incidents/{incident['number']}", "PATCH", operator,
                                 {"state": "resolved", "resolution": "planned upgrade, change recorded late"})
        assert status == 200 and resolved["state"] == "resolved"
        assert _call(collector.url + f"/api/v1/incidents/{incident['number']}", "PATCH", reader,
                     {"state": "closed"})[0] == 403
    finally:
        collector.stop()


def test_changes_over_http(tmp_path):
    collector = Collector(tmp_path / "cmdb.sqlite").start()
    try:
        reader, operator = collector.token("reader", "r"), collector.token("operator", "o")
        url = collector.url + "/api/v1/changes"
        new = {"type": "normal", "title": "kernel update", "planned_start": "2026-11-22T20:00:00Z",
               "planned_end": "2026-11-22T21:00:00Z", "expected": [{"attribute": "kernel_release", "pattern": "^6\\."}]}
        assert _call(url, "POST", reader, new)[0] == 403
        status, change = _call(url, "POST", operator, new)
        assert status == 201 and change["number"] == "CHG0000001" and change["created_by"] == "o"
        moves = url + "/CHG0000001/transitions"
        status, refused = _call(moves, "POST", operator, {"to": "closed"})
        assert status == 409 and "not closed" in refused["error"]
        for state in ("assess", "authorize", "scheduled"):
            assert _call(moves, "POST", operator, {"to": state})[0] == 200
        status, shown = _call(url + "/CHG0000001", "GET", reader)
        assert shown["approved_by"] == "o" and len(shown["events"]) == 4
        for bad, code in ((b"{not json", 400), ({"type": "normal"}, 400), ({**new, "cis": ["nothex"]}, 400),
                          ({**new, "type": "yolo"}, 400), ({**new, "surprise": 1}, 400),
                          ({**new, "planned_end": "2026-11-22T19:00:00Z"}, 400),
                          ({**new, "cis": ["0" * 32]}, 400), (b"x" * 300_000, 413)):
            assert _call(url, "POST", operator, bad)[0] == code, bad
        assert _call(url, "POST", operator, b"{}", content_type="text/plain")[0] == 415
        assert _call(url + "/CHG9999999", "GET", reader)[0] == 404
        assert _call(url + "/DROP%20TABLE%3B--", "GET", reader)[0] in (400, 404)
        _, listed = _call(url, "GET", reader)
        assert listed["count"] == 1
    finally:
        collector.stop()
