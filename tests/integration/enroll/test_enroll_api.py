"""POST /api/v1/enroll and the source binding at ingest, on the real app over the real store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from collector.enroll import FailedAttemptLimiter
from tests.integration.collector.harness import auth, json_headers, store_snapshot
from tests.integration.enroll.conftest import AGENT_A, AGENT_B, ENROLL, REPORTS, enroll_body, report_for

JSON = {"Content-Type": "application/json"}


def _credentials(store) -> list[tuple[str, str | None, bool]]:
    return sorted((t.name, t.source_id, t.revoked_at is None) for t in store.list_tokens())


async def test_enrolling_returns_a_credential_bound_to_the_agent(collector, store, enrollment_token):
    client = await collector()
    resp = await client.post(ENROLL, json=enroll_body(enrollment_token()))
    assert resp.status == 201, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    answer = await resp.json()
    assert (answer["agent_id"], answer["source_id"], answer["token_name"]) == (AGENT_A, AGENT_A, f"agent-{AGENT_A}")
    assert len(answer["token"]) >= 40
    assert _credentials(store) == [(f"agent-{AGENT_A}", AGENT_A, True)]
    assert all(answer["token"] not in repr(t) for t in store.list_tokens())  # stored hashed

    own = await client.post(REPORTS, data=report_for(AGENT_A), headers=json_headers(answer["token"]))
    assert own.status == 202, await own.text()


async def test_agent_id_is_normalized(collector, store, enrollment_token):
    client = await collector()
    resp = await client.post(ENROLL, json=enroll_body(enrollment_token(), agent_id=AGENT_A.upper()))
    assert resp.status == 201
    assert (await resp.json())["source_id"] == AGENT_A


@pytest.mark.parametrize("source", [("agent", AGENT_B), ("ssh", AGENT_A), ("agent", "agent-web-01")])
async def test_a_bound_credential_cannot_write_another_source(collector, store, enrollment_token, source):
    client = await collector()
    credential = (await (await client.post(ENROLL, json=enroll_body(enrollment_token()))).json())["token"]
    before = store_snapshot(store)
    kind, source_id = source
    resp = await client.post(REPORTS, data=report_for(source_id, kind), headers=json_headers(credential))
    assert resp.status == 403
    error = await resp.json()
    assert error["rule"] == "source_binding" and error["field"] == "source.id"
    assert AGENT_A in error["error"] and "may only submit reports" in error["error"]
    assert store_snapshot(store) == before


async def test_unbound_agent_tokens_still_write_any_source(collector, store, tokens):
    client = await collector()
    for source_id in (AGENT_A, AGENT_B):
        resp = await client.post(REPORTS, data=report_for(source_id), headers=json_headers(tokens["agent"]))
        assert resp.status == 202, await resp.text()
    resp = await client.post(REPORTS, data=report_for("scanner-1", "nmap"), headers=json_headers(tokens["agent"]))
    assert resp.status == 202


async def test_a_single_use_token_enrolls_once(collector, store, enrollment_token):
    client = await collector()
    token = enrollment_token("one-shot")
    assert (await client.post(ENROLL, json=enroll_body(token))).status == 201
    again = await client.post(ENROLL, json=enroll_body(token, agent_id=AGENT_B, hostname="web-02"))
    assert again.status == 403
    error = await again.json()
    assert error["reason"] == "used_up" and "one-shot" in error["error"] and "no uses left" in error["error"]
    assert _credentials(store) == [(f"agent-{AGENT_A}", AGENT_A, True)]


async def test_a_token_with_k_uses_enrolls_k_agents(collector, store, enrollment_token):
    client = await collector()
    token = enrollment_token("pair", uses=2)
    assert (await client.post(ENROLL, json=enroll_body(token, AGENT_A))).status == 201
    assert (await client.post(ENROLL, json=enroll_body(token, AGENT_B))).status == 201
    third = "00000000-0000-4000-8000-000000000003"
    assert (await client.post(ENROLL, json=enroll_body(token, third))).status == 403
    assert store.list_enrollment_tokens()[0].uses == 2


async def test_concurrent_requests_for_a_single_use_token_one_wins(collector, store, enrollment_token):
    client = await collector()
    token = enrollment_token("one-shot")
    agents = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]
    responses = await asyncio.gather(*(client.post(ENROLL, json=enroll_body(token, a)) for a in agents))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [403] * 11
    assert len(_credentials(store)) == 1 and store.list_enrollment_tokens()[0].uses == 1


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked"])
async def test_refused_tokens_store_nothing(collector, store, enrollment_token, case):
    client = await collector()
    if case == "unknown":
        token, status = "x" * 43, 401
    elif case == "expired":
        token, status = enrollment_token("old", expires_at=datetime.now(UTC) + timedelta(milliseconds=50)), 403
        await asyncio.sleep(0.1)
    else:
        token, status = enrollment_token("gone"), 403
        assert store.revoke_enrollment_token("gone") == 1
    resp = await client.post(ENROLL, json=enroll_body(token))
    assert resp.status == status
    error = await resp.json()
    assert error["reason"] == case and "fleetgraph enroll-token create" in error["error"]
    assert store.list_tokens() == []
    assert all(t.uses == 0 for t in store.list_enrollment_tokens())


async def test_re_enrolling_rotates_the_credential(collector, store, enrollment_token):
    client = await collector()
    first = (await (await client.post(ENROLL, json=enroll_body(enrollment_token("first")))).json())["token"]
    second = (await (await client.post(ENROLL, json=enroll_body(enrollment_token("second")))).json())["token"]
    assert first != second
    old = await client.post(REPORTS, data=report_for(AGENT_A), headers=json_headers(first))
    assert old.status == 401
    new = await client.post(REPORTS, data=report_for(AGENT_A), headers=json_headers(second))
    assert new.status == 202
    assert _credentials(store) == [(f"agent-{AGENT_A}", AGENT_A, False), (f"agent-{AGENT_A}", AGENT_A, True)]


HOSTILE = ["web-01; rm -rf /", "../../etc/passwd", "web\n01", "a" * 254, "", "-leading-dash", "web 01",
           "<script>", "web\x00", "wéb"]


def _malformed_bodies() -> list[tuple[str, bytes, dict, int]]:
    good = {"agent_id": AGENT_A, "hostname": "web-01"}
    cases: list[tuple[str, bytes, dict, int]] = [
        ("not json", b"enrollment_token=abc", JSON, 400),
        ("truncated json", b'{"enrollment_token": "abc', JSON, 400),
        ("empty", b"", JSON, 400),
        ("array", b"[]", JSON, 400),
        ("missing token", json.dumps(good).encode(), JSON, 400),
        ("missing agent_id", json.dumps({"enrollment_token": "T" * 43, "hostname": "h"}).encode(), JSON, 400),
        ("token not a string", json.dumps({**good, "enrollment_token": 12345}).encode(), JSON, 400),
        ("agent_id not a uuid", json.dumps({**good, "enrollment_token": "T" * 43, "agent_id": "web-01"}).encode(),
         JSON, 400),
        ("agent_id a number", json.dumps({**good, "enrollment_token": "T" * 43, "agent_id": 7}).encode(), JSON, 400),
        ("unknown field", json.dumps({**good, "enrollment_token": "T" * 43, "role": "admin"}).encode(), JSON, 400),
        ("token with spaces", json.dumps({**good, "enrollment_token": "a b c d e f g h i j"}).encode(), JSON, 400),
        ("oversized", json.dumps({**good, "enrollment_token": "T" * 43, "pad": "x" * 5000}).encode(), JSON, 413),
        ("not json content type", json.dumps({**good, "enrollment_token": "T" * 43}).encode(),
         {"Content-Type": "text/plain"}, 415),
    ]
    cases += [(f"hostname {h!r}", json.dumps({**good, "enrollment_token": "T" * 43, "hostname": h}).encode(),
               JSON, 400) for h in HOSTILE]
    return cases


@pytest.mark.parametrize("name,body,headers,status", _malformed_bodies(), ids=[c[0] for c in _malformed_bodies()])
async def test_malformed_requests_are_refused_and_store_nothing(collector, store, enrollment_token,
                                                                name, body, headers, status):
    client = await collector()
    token = enrollment_token()
    body = body.replace(b"T" * 43, token.encode())  # a valid token: only the malformation is wrong
    resp = await client.post(ENROLL, data=body, headers=headers)
    assert resp.status == status, await resp.text()
    assert "error" in await resp.json()
    assert store.list_tokens() == []
    assert store.list_enrollment_tokens()[0].uses == 0


async def test_enrollment_needs_no_bearer_and_ignores_one(collector, store, enrollment_token, tokens):
    client = await collector()
    resp = await client.post(ENROLL, json=enroll_body(enrollment_token()), headers=auth(tokens["reader"]))
    assert resp.status == 201  # the enrollment token decides, not the caller's API token
    get = await client.get(ENROLL)
    assert get.status == 405


async def test_refused_attempts_are_rate_limited_per_address(collector, store, enrollment_token):
    client = await collector()
    for _ in range(10):
        assert (await client.post(ENROLL, json=enroll_body("y" * 43))).status == 401
    limited = await client.post(ENROLL, json=enroll_body(enrollment_token()))  # even a good token waits
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "too many refused enrollment attempts" in (await limited.json())["error"]
    assert store.list_tokens() == []


async def test_malformed_requests_do_not_count_against_the_limit(collector, enrollment_token):
    client = await collector()
    for _ in range(15):
        assert (await client.post(ENROLL, data=b"nope", headers=JSON)).status == 400
    assert (await client.post(ENROLL, json=enroll_body(enrollment_token()))).status == 201


def test_the_limiter_refills_and_stays_bounded():
    now = [0.0]
    limiter = FailedAttemptLimiter(burst=2, refill_seconds=10, max_addresses=3, clock=lambda: now[0])
    limiter.refused("a")
    assert limiter.retry_after("a") is None
    limiter.refused("a")
    assert limiter.retry_after("a") == pytest.approx(10)
    now[0] = 5
    assert limiter.retry_after("a") == pytest.approx(5)
    now[0] = 10
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("b") is None  # other addresses are not affected
    for address in ("b", "c", "d", "e"):
        limiter.refused(address)
    assert len(limiter._buckets) <= 3
