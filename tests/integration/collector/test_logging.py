"""No token ever reaches the logs, at any level, on any path (401s included); every request has an
id that the client sees and every log line of the request carries."""

from __future__ import annotations

import base64
import logging
import zlib

import pytest

from cmdb.report import encode_report
from collector.logs import RedactingFilter
from tests.integration.collector.access_harness import AGENT_ID, enroll, report_from, role_tokens
from tests.integration.collector.harness import auth, json_headers, make_report


def _everything_logged(caplog) -> str:
    """Every record's message and fields. aiohttp's own access log is left out: the collector runs
    with access_log=None (collector.server) and writes its own access line; the test server here
    keeps aiohttp's default."""
    parts = []
    for record in caplog.records:
        if record.name == "aiohttp.access":
            continue
        parts.append(logging.Formatter().format(record))
        parts.append(record.getMessage())
        parts.extend(str(v) for v in record.__dict__.values())
    return "\n".join(parts)


async def _traffic(client, store) -> list[str]:
    """Requests down every path that sees a secret; the secrets involved."""
    from collector.enroll import create_enrollment_token

    tokens = await role_tokens(client, store)
    secrets = list(tokens.values())
    report = encode_report(make_report(hostname="web-01"))
    await client.post("/api/v1/reports", data=report, headers=json_headers(tokens["agent"]))
    await client.get("/api/v1/cis", headers=auth(tokens["reader"]))
    await client.get("/api/v1/cis/export", params={"format": "csv"}, headers=auth(tokens["auditor"]))
    # wrong role, wrong token, token-looking garbage, a token in the query string and in Basic auth
    await client.get("/api/v1/tokens", headers=auth(tokens["reader"]))
    forged = tokens["reader"][::-1]
    secrets.append(forged)
    await client.get("/api/v1/cis", headers=auth(forged))
    await client.get("/api/v1/cis", params={"token": tokens["admin"], "access_token": tokens["admin"]})
    basic = base64.b64encode(f"user:{tokens['agent']}".encode()).decode()
    await client.get("/api/v1/cis", headers={"Authorization": f"Basic {basic}"})
    await client.post("/ocsinventory", data=zlib.compress(b"<REQUEST><QUERY>PROLOG</QUERY></REQUEST>"),
                      headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-compress"})
    # a report that names the token where a value goes, from a credential that may not write it
    await client.post("/api/v1/reports", data=report_from("agent", tokens["admin"][:40]),
                      headers=json_headers(tokens["scanner"]))
    # enrollment: refused (unknown token), malformed (token in the hostname), accepted, via the admin API
    unknown = "U" * 20 + tokens["admin"][:23]
    secrets.append(unknown)
    await client.post("/api/v1/enroll", json={"enrollment_token": unknown, "agent_id": AGENT_ID, "hostname": "h"})
    good = create_enrollment_token(store, "for-logs")
    secrets.append(good)
    await client.post("/api/v1/enroll", json={"enrollment_token": good, "agent_id": AGENT_ID,
                                              "hostname": f"{good} x"})
    answer = await enroll(client, store, name="logged", agent_id=AGENT_ID)
    secrets.append(answer["token"])
    created = await client.post("/api/v1/tokens", json={"name": "new-one", "role": "reader"},
                                headers=auth(tokens["admin"]))
    secrets.append((await created.json())["token"])
    enr = await client.post("/api/v1/enrollment-tokens", json={"name": "new-enr"}, headers=auth(tokens["admin"]))
    secrets.append((await enr.json())["token"])
    await client.delete(f"/api/v1/tokens/{tokens['reader']}", headers=auth(tokens["admin"]))  # a token as a name
    return secrets


async def test_no_token_appears_in_any_log_record(collector, store, caplog):
    """Without any filter: the code itself never logs a secret."""
    caplog.set_level(logging.DEBUG)
    client = await collector(reconcile=True)
    secrets = await _traffic(client, store)
    logged = _everything_logged(caplog)
    assert "fleetgraph.collector.access" in logged  # the traffic was logged, at all levels
    for secret in secrets:
        assert secret not in logged
        assert secret[:24] not in logged


async def test_the_filter_masks_what_code_might_still_leak(collector, store, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter())
    client = await collector()
    tokens = await role_tokens(client, store)
    logging.getLogger("fleetgraph.test").warning("careless: Authorization: Bearer %s and token=%s",
                                                 tokens["admin"], tokens["reader"])
    assert tokens["admin"] not in caplog.text and tokens["reader"] not in caplog.text
    assert "[REDACTED]" in caplog.text


async def test_a_sane_request_id_is_kept_and_returned(collector, store, caplog):
    caplog.set_level(logging.INFO)
    client = await collector()
    resp = await client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.2_x"})
    assert resp.headers["X-Request-Id"] == "lb-7f3a.2_x"
    resp = await client.get("/api/v1/cis", headers={"X-Request-Id": "abc"})
    assert resp.status == 401 and resp.headers["X-Request-Id"] == "abc"
    (line,) = [r for r in caplog.records if r.name == "fleetgraph.collector.access" and r.request_id == "abc"]
    assert (line.method, line.path, line.status) == ("GET", "/api/v1/cis", 401)
    assert line.duration_ms >= 0 and line.remote == "127.0.0.1"


@pytest.mark.parametrize("given", ["", "a" * 65, "evil<id>", "id with spaces", "x;rm -rf", "é"])
async def test_an_insane_request_id_is_replaced(collector, given):
    client = await collector()
    resp = await client.get("/healthz", headers={"X-Request-Id": given} if given.isascii() else {})
    returned = resp.headers["X-Request-Id"]
    assert returned != given and len(returned) == 16


async def test_streamed_and_error_answers_carry_the_request_id(collector, store):
    client = await collector()
    tokens = await role_tokens(client, store)
    export = await client.get("/api/v1/cis/export", headers={**auth(tokens["auditor"]), "X-Request-Id": "exp-1"})
    assert export.headers["X-Request-Id"] == "exp-1"
    missing = await client.get("/no/such/path", headers={"X-Request-Id": "nf-1"})
    assert missing.status == 404 and missing.headers["X-Request-Id"] == "nf-1"


async def test_log_lines_made_inside_a_request_carry_its_id(collector, store, caplog):
    from collector.logs import RequestIdFilter

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())  # what configure_logging puts on the collector's handler
    client = await collector()
    tokens = await role_tokens(client, store)
    resp = await client.get("/api/v1/tokens", headers={**auth(tokens["reader"]), "X-Request-Id": "deny-1"})
    assert resp.status == 403
    (refusal,) = [r for r in caplog.records if r.name == "fleetgraph.collector.auth"]
    assert refusal.request_id == "deny-1"  # logged deep in collector.auth, not by the middleware
    outside = logging.LogRecord("x", logging.INFO, "", 0, "no request", (), None)
    assert RequestIdFilter().filter(outside) and outside.request_id is None


async def test_log_lines_from_store_calls_carry_the_request_id(collector, store, caplog, monkeypatch):
    """Store calls run in a thread pool; the request's id goes with them."""
    from collector.logs import RequestIdFilter

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    client = await collector()

    def broken(*_args, **_kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(store, "count_cis", broken)  # the metrics scrape then logs from its thread
    resp = await client.get("/metrics", headers={"X-Request-Id": "scrape-7"})
    assert resp.status == 200
    (warning,) = [r for r in caplog.records if r.name == "fleetgraph.collector.metrics"]
    assert warning.threadName.startswith("fleetgraph-store") and warning.request_id == "scrape-7"
