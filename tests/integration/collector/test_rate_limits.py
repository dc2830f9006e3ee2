"""Rate limits on the real app: per token, per report source (per agent, whatever its token), per
client address for requests without a valid token. A 429 says how long to wait and stores nothing."""

from __future__ import annotations

import pytest

from tests.integration.collector.access_harness import report_from, role_tokens
from tests.integration.collector.harness import auth, json_headers, store_snapshot

SLOW = {"rate_limit_token": 0.01, "rate_limit_token_burst": 3, "rate_limit_source": 0.01,
        "rate_limit_source_burst": 2, "rate_limit_anonymous": 0.01, "rate_limit_anonymous_burst": 3}


async def test_a_token_past_its_burst_gets_429_with_retry_after(collector, store):
    client = await collector(**SLOW)
    tokens = await role_tokens(client, store)
    statuses = [(await client.get("/api/v1/cis", headers=auth(tokens["reader"]))).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    resp = await client.get("/api/v1/cis", headers=auth(tokens["reader"]))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    error = await resp.json()
    assert error["scope"] == "token" and "role-reader" in error["error"]
    assert "collector.rate_limit_token" in error["error"]
    # another token is not affected
    assert (await client.get("/api/v1/cis", headers=auth(tokens["auditor"]))).status == 200


async def test_one_source_is_limited_whatever_token_it_uses(collector, store):
    client = await collector(**SLOW)
    tokens = await role_tokens(client, store)
    kinds = ("agent", "operator", "admin")  # three unbound tokens, one runaway agent behind them
    for role in kinds[:2]:
        resp = await client.post("/api/v1/reports", data=report_from("agent", "agent-runaway"),
                                 headers=json_headers(tokens[role]))
        assert resp.status == 202
    before = store_snapshot(store)
    resp = await client.post("/api/v1/reports", data=report_from("agent", "agent-runaway"),
                             headers=json_headers(tokens["admin"]))
    assert resp.status == 429
    error = await resp.json()
    assert error["scope"] == "source" and "agent/agent-runaway" in error["error"]
    assert store_snapshot(store) == before
    other = await client.post("/api/v1/reports", data=report_from("agent", "agent-calm"),
                              headers=json_headers(tokens["admin"]))
    assert other.status == 202


async def test_anonymous_requests_are_limited_per_address(collector):
    client = await collector(**SLOW)
    statuses = [(await client.get("/healthz")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 429 and (await resp.json())["scope"] == "anonymous"


async def test_wrong_tokens_become_429_once_an_address_keeps_guessing(collector, store):
    from collector.auth import create_token

    client = await collector(**SLOW)
    reader = create_token(store, "reader", "reader")
    statuses = [(await client.get("/api/v1/cis", headers=auth(f"guess-{i}" * 6))).status for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    # a valid token from the same address still works: the anonymous bucket is for the unauthenticated
    assert (await client.get("/api/v1/cis", headers=auth(reader))).status == 200


async def test_unknown_paths_cost_the_address_too(collector):
    client = await collector(**SLOW)
    statuses = [(await client.get(f"/nope/{i}")).status for i in range(4)]
    assert statuses == [404, 404, 404, 429]


async def test_rate_zero_is_no_limit(collector, store):
    client = await collector(rate_limit_token=0, rate_limit_anonymous=0)
    tokens = await role_tokens(client, store)
    for _ in range(30):
        assert (await client.get("/api/v1/cis", headers=auth(tokens["reader"]))).status == 200
        assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("option,value", [("rate_limit_token", -1.0), ("rate_limit_source_burst", 0),
                                          ("request_timeout", 0.0), ("header_timeout", -5.0),
                                          ("metrics_auth", "open"), ("trusted_proxies", ("proxy.example",))])
async def test_nonsense_options_are_refused_at_start(collector, option, value):
    with pytest.raises(ValueError, match=option.removesuffix("_burst")):
        await collector(**{option: value})


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(collector):
    client = await collector(**SLOW, trusted_proxies=("127.0.0.1/32",))
    for _ in range(3):
        assert (await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})).status == 200
    assert (await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})).status == 429
    assert (await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.8"})).status == 200
    # a client cannot pick its bucket by prepending an address: the proxy's own entry counts
    spoofed = await client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert spoofed.status == 429


async def test_without_trusted_proxies_forwarded_for_is_ignored(collector):
    client = await collector(**SLOW)
    for i in range(3):
        assert (await client.get("/healthz", headers={"X-Forwarded-For": f"203.0.113.{i}"})).status == 200
    assert (await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.99"})).status == 429


@pytest.mark.parametrize("header", ["not-an-address", "203.0.113.7, garbage", "", ",,,"])
async def test_garbled_forwarded_for_falls_back_to_the_proxy(collector, header):
    client = await collector(**SLOW, trusted_proxies=("127.0.0.1",))
    for _ in range(3):
        assert (await client.get("/healthz", headers={"X-Forwarded-For": header})).status == 200
    assert (await client.get("/healthz")).status == 429  # the same bucket: the proxy's address
