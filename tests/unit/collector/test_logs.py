"""Log redaction, the JSON and text formats, client addresses behind proxies."""

from __future__ import annotations

import json
import logging
import secrets
import sys

import pytest

from collector.logs import REDACTED, JsonFormatter, RedactingFilter, TextFormatter, escape_controls, redact
from collector.peers import parse_trusted_proxies

TOKEN = secrets.token_urlsafe(32)


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {TOKEN}",
    f"authorization=Bearer {TOKEN[:12]}",
    f"sent header 'Authorization': 'Basic {TOKEN[:20]}'",
    f"GET /api/v1/cis?token={TOKEN}&limit=2",
    f'{{"enrollment_token": "{TOKEN}", "agent_id": "x"}}',
    f"FLEETGRAPH_AGENT_TOKEN={TOKEN}",
    f"password: {TOKEN[:10]}",
    f"snmp community='{TOKEN[:8]}'",
    f"api_key={TOKEN[:16]}",
    f"the credential is {TOKEN}",  # no key at all: caught as a long token-like run
])
def test_secrets_are_masked(text):
    masked = redact(text)
    assert REDACTED in masked
    for fragment in (TOKEN, TOKEN[:8]):
        assert fragment not in masked, masked


@pytest.mark.parametrize("text", [
    "token 'agent-4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01' (role agent) refused on GET /api/v1/cis",
    "report rpt-0123456789abcdef0123456789abcdef accepted: seq 4",
    "CI 0123456789abcdef0123456789abcdef, digest " + "ab" * 32,
    "token_name=agent-1 role=reader",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_redaction_is_idempotent():
    once = redact(f"Authorization: Bearer {TOKEN} token={TOKEN}")
    assert redact(once) == once


def _record(msg: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("fleetgraph.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_fields_and_no_secret():
    record = _record("refused %s", f"Bearer {TOKEN}", method="POST", status=401, note=f"token={TOKEN}")
    record.request_id = "req-1"
    line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert {"time", "level", "logger", "message", "request_id", "method", "status"} <= set(doc)
    assert (doc["level"], doc["logger"], doc["request_id"], doc["status"]) == ("warning", "fleetgraph.test",
                                                                              "req-1", 401)
    assert doc["time"].endswith("Z")
    assert TOKEN not in line


def test_json_lines_stay_json_when_a_quoted_secret_is_masked():
    line = JsonFormatter().format(_record('got {"password": "%s"}', "hunter2-and-more"))
    assert "hunter2" not in line
    json.loads(line)


def test_exceptions_are_formatted_and_masked():
    try:
        raise RuntimeError(f"store refused token={TOKEN}")
    except RuntimeError:
        record = _record("boom")
        record.exc_info = sys.exc_info()
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(record)
        assert "RuntimeError" in out and TOKEN not in out


def test_the_filter_rewrites_records_for_every_handler():
    record = _record("header was %r", f"Bearer {TOKEN}")
    assert RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage() and record.args is None


def test_text_lines_cannot_be_forged_with_control_characters():
    line = TextFormatter().format(_record("GET %s 404", "/x\n2026-01-01 INFO fake: admin logged in"))
    assert "\n" not in line and "\\x0a" in line
    assert escape_controls("a\tb\x1bc") == "a\\x09b\\x1bc"


def test_trusted_proxies_parse_and_refuse_garbage():
    assert [str(n) for n in parse_trusted_proxies(["127.0.0.1", "10.0.0.0/8", " ::1 "])] == \
        ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="not an address or CIDR"):
        parse_trusted_proxies(["proxy.example"])
