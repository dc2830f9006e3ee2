"""POST /api/v1/reports against the real app and SQLite store: acceptance, every rejection, replay.

Each rejection asserts the status, a message that names the problem, and that the store is
unchanged (reports, CIs, relationships).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.report import encode_report
from collector.auth import create_token
from tests.integration.collector.harness import auth, json_headers, make_report, report_body, store_snapshot

URL = "/api/v1/reports"


def _report_dict(**kwargs: Any) -> dict[str, Any]:
    return json.loads(report_body(**kwargs))


async def _chunks(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_valid_report_is_stored_before_202(collector, store, tokens):
    client = await collector()
    report = make_report()
    resp = await client.post(URL, data=encode_report(report), headers=json_headers(tokens["agent"]))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "accepted" and body["report_id"] == report.report_id
    stored = store.get_report(report.report_id)
    assert stored is not None and stored.status == "pending" and stored.seq == body["seq"]
    assert stored.body == encode_report(report)
    assert resp.headers["X-Request-Id"]


async def test_gzip_report_and_admin_token_accepted(collector, store, tokens):
    client = await collector()
    raw = report_body()
    resp = await client.post(URL, data=gzip.compress(raw),
                             headers=json_headers(tokens["admin"], **{"Content-Encoding": "gzip"}))
    assert resp.status == 202, await resp.text()
    stored = store.get_report((await resp.json())["report_id"])
    assert stored.body == raw  # the log keeps the decompressed JSON


async def test_chunked_report_within_limits_accepted(collector, tokens):
    client = await collector(max_body_bytes=64 * 1024)
    resp = await client.post(URL, data=_chunks(report_body(), 100), headers=json_headers(tokens["agent"]))
    assert resp.status == 202, await resp.text()


# -- invalid reports: 400 naming the field and the rule --------------------------------------------

def _mutated(mutate) -> bytes:
    doc = _report_dict()
    mutate(doc)
    return json.dumps(doc).encode()


INVALID_REPORTS = {
    "malformed JSON": (report_body()[:-20], "$", "not valid JSON"),
    "not an object": (b"[1, 2, 3]", "$", "Expected `object`"),
    "wrong schema version": (_mutated(lambda d: d.update(schema="fleetgraph.report/2")), "$.schema",
                             "fleetgraph.report/1"),
    "missing source": (_mutated(lambda d: d.pop("source")), "$", "source"),
    "missing report_id": (_mutated(lambda d: d.pop("report_id")), "$", "report_id"),
    "wrong type (ref is a number)": (_mutated(lambda d: d["items"][1].update(ref=7)), "$.items[1].ref",
                                     "Expected `str`"),
    "wrong type (collected_at)": (_mutated(lambda d: d.update(collected_at="yesterday")), "$.collected_at",
                                  "datetime"),
    "unknown class": (_mutated(lambda d: d["items"][0].update({"class": "Toaster"})), "$.items[0].class",
                      "Toaster"),
    "relation to an unknown ref": (_mutated(lambda d: d["relations"][0].update(to="nowhere")),
                                   "$.relations[0].to", "'nowhere' is not the ref of an item"),
    "unknown field": (_mutated(lambda d: d.update(colour="blue")), "$", "colour"),
    "identifier kind not of the class": (
        _mutated(lambda d: d["items"][1]["identifiers"].update(serial="x")), "$.items[1].identifiers.serial",
        "OperatingSystem is identified by"),
}


@pytest.mark.parametrize("case", list(INVALID_REPORTS))
async def test_invalid_report_rejected_with_field_and_rule(collector, store, tokens, case):
    body, field, rule_part = INVALID_REPORTS[case]
    client = await collector()
    before = store_snapshot(store)
    resp = await client.post(URL, data=body, headers=json_headers(tokens["agent"]))
    assert resp.status == 400
    payload = await resp.json()
    assert payload["error"] == "invalid report"
    assert payload["field"] == field, payload
    assert rule_part in payload["rule"], payload
    assert store_snapshot(store) == before


# -- transport-level rejections ------------------------------------------------------------------

async def test_content_length_over_limit_is_413_before_reading(collector, store, tokens):
    client = await collector(max_body_bytes=1024)
    before = store_snapshot(store)
    resp = await client.post(URL, data=b" " * 4096 + report_body(), headers=json_headers(tokens["agent"]))
    assert resp.status == 413
    payload = await resp.json()
    assert "larger than 1024 bytes" in payload["error"] and "max_body_bytes" in payload["error"]
    assert store_snapshot(store) == before


async def test_chunked_body_over_limit_is_413_while_reading(collector, store, tokens):
    client = await collector(max_body_bytes=1024)
    before = store_snapshot(store)
    resp = await client.post(URL, data=_chunks(b" " * 4096 + report_body()),
                             headers=json_headers(tokens["agent"]))
    assert resp.status == 413
    assert "larger than 1024 bytes" in (await resp.json())["error"]
    assert store_snapshot(store) == before


async def test_gzip_bomb_is_413_without_inflating_it(collector, store, tokens):
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)  # 32 MiB of zeros, ~32 KiB
    assert len(bomb) < 64 * 1024
    client = await collector(max_report_bytes=256 * 1024)
    before = store_snapshot(store)
    resp = await client.post(URL, data=bomb,
                             headers=json_headers(tokens["agent"], **{"Content-Encoding": "gzip"}))
    assert resp.status == 413
    assert (await resp.json())["error"].startswith("report larger than 262144 bytes after decompression")
    assert store_snapshot(store) == before


async def test_plain_body_over_report_limit_is_413(collector, store, tokens):
    client = await collector(max_report_bytes=256)
    resp = await client.post(URL, data=report_body(), headers=json_headers(tokens["agent"]))
    assert resp.status == 413
    assert "report larger than 256 bytes" in (await resp.json())["error"]


@pytest.mark.parametrize("body, message", [
    (b"this is not gzip at all", "not valid gzip"),
    (gzip.compress(report_body())[:-30], "truncated"),
    (gzip.compress(report_body())[:-8] + b"\xde\xad\xbe\xef\x00\x00\x00\x00", "not valid gzip"),  # bad CRC
], ids=["garbage", "truncated", "bad-crc"])
async def test_corrupt_gzip_is_400(collector, store, tokens, body, message):
    client = await collector()
    before = store_snapshot(store)
    resp = await client.post(URL, data=body,
                             headers=json_headers(tokens["agent"], **{"Content-Encoding": "gzip"}))
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert store_snapshot(store) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type_is_415(collector, store, tokens, content_type):
    client = await collector()
    before = store_snapshot(store)
    headers = auth(tokens["agent"]) | ({"Content-Type": content_type} if content_type else {})
    resp = await client.post(URL, data=report_body(), headers=headers)
    assert resp.status == 415
    assert "Content-Type must be application/json" in (await resp.json())["error"]
    assert store_snapshot(store) == before


async def test_unsupported_content_encoding_is_415(collector, store, tokens):
    client = await collector()
    resp = await client.post(URL, data=report_body(),
                             headers=json_headers(tokens["agent"], **{"Content-Encoding": "br"}))
    assert resp.status == 415
    assert "Content-Encoding" in (await resp.json())["error"]


async def test_empty_body_is_400(collector, tokens):
    client = await collector()
    resp = await client.post(URL, data=b"", headers=json_headers(tokens["agent"]))
    assert resp.status == 400
    assert "empty body" in (await resp.json())["error"]


# -- authentication and roles ------------------------------------------------------------------

async def test_no_token_is_401_with_challenge(collector, store):
    client = await collector()
    before = store_snapshot(store)
    resp = await client.post(URL, data=report_body(), headers={"Content-Type": "application/json"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in (await resp.json())["error"]
    assert store_snapshot(store) == before


@pytest.mark.parametrize("header", ["Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_invalid_token_is_401(collector, store, tokens, header):
    client = await collector()
    before = store_snapshot(store)
    resp = await client.post(URL, data=report_body(),
                             headers={"Authorization": header, "Content-Type": "application/json"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await resp.json())["error"]
    assert store_snapshot(store) == before


async def test_revoked_token_is_401(collector, store, tokens):
    client = await collector()
    assert store.revoke_token("test-agent") == 1
    before = store_snapshot(store)
    resp = await client.post(URL, data=report_body(), headers=json_headers(tokens["agent"]))
    assert resp.status == 401
    assert "revoked" in (await resp.json())["error"]
    assert store_snapshot(store) == before


async def test_expired_token_is_401(collector, store):
    token = create_token(store, "short-lived", "agent", datetime.now(UTC) + timedelta(seconds=0.2))
    client = await collector()
    await asyncio.sleep(0.3)
    resp = await client.post(URL, data=report_body(), headers=json_headers(token))
    assert resp.status == 401
    assert "expired" in (await resp.json())["error"]


async def test_reader_token_cannot_post_403(collector, store, tokens):
    client = await collector()
    before = store_snapshot(store)
    resp = await client.post(URL, data=report_body(), headers=json_headers(tokens["reader"]))
    assert resp.status == 403
    payload = await resp.json()
    assert "role 'reader'" in payload["error"] and "agent" in payload["error"]
    assert store_snapshot(store) == before


# -- idempotency -------------------------------------------------------------------------------

async def test_identical_resend_is_200_duplicate_and_stores_nothing(collector, store, tokens):
    client = await collector()
    body = report_body(report_id="rpt-dup-000001")
    first = await client.post(URL, data=body, headers=json_headers(tokens["agent"]))
    assert first.status == 202
    seq = (await first.json())["seq"]
    before = store_snapshot(store)
    again = await client.post(URL, data=gzip.compress(body),
                              headers=json_headers(tokens["agent"], **{"Content-Encoding": "gzip"}))
    assert again.status == 200
    payload = await again.json()
    assert payload["status"] == "duplicate" and payload["seq"] == seq
    assert store_snapshot(store) == before


async def test_same_report_id_different_body_is_409(collector, store, tokens):
    client = await collector()
    original = report_body(report_id="rpt-conflict-01", memory_mb=8192)
    assert (await client.post(URL, data=original, headers=json_headers(tokens["agent"]))).status == 202
    before = store_snapshot(store)
    resp = await client.post(URL, data=report_body(report_id="rpt-conflict-01", memory_mb=16384),
                             headers=json_headers(tokens["agent"]))
    assert resp.status == 409
    payload = await resp.json()
    assert "rpt-conflict-01" in payload["error"] and "different body" in payload["error"]
    assert payload["report_id"] == "rpt-conflict-01"
    assert store_snapshot(store) == before
    assert store.get_report("rpt-conflict-01").body == original


# -- the collector survives all of it --------------------------------------------------------------

async def test_after_every_rejection_a_valid_report_is_still_served(collector, store, tokens):
    client = await collector(max_body_bytes=64 * 1024, max_report_bytes=128 * 1024)
    agent = json_headers(tokens["agent"])
    gz = json_headers(tokens["agent"], **{"Content-Encoding": "gzip"})
    attempts = [(body, agent) for body, _, _ in INVALID_REPORTS.values()] + [
        (b" " * (80 * 1024), agent),
        (_chunks(b" " * (80 * 1024)), agent),
        (gzip.compress(b"\0" * (4 * 1024 * 1024)), gz),
        (b"garbage", gz),
        (report_body(), auth(tokens["agent"]) | {"Content-Type": "text/plain"}),
        (report_body(), {"Content-Type": "application/json"}),
        (report_body(), json_headers("wrong")),
        (report_body(), json_headers(tokens["reader"])),
    ]
    before = store_snapshot(store)
    for body, headers in attempts:
        resp = await client.post(URL, data=body, headers=headers)
        assert 400 <= resp.status < 500
        assert (await resp.json())["error"]
    assert store_snapshot(store) == before
    resp = await client.post(URL, data=report_body(), headers=agent)
    assert resp.status == 202
    assert store.count_reports() == before[0] + 1
