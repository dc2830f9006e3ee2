"""The admin API: tokens and enrollment tokens created, listed and revoked over HTTP; the config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.collector.access_harness import AGENT_ID, role_tokens
from tests.integration.collector.harness import auth

JSON = {"Content-Type": "application/json"}


def _admin_json(token: str) -> dict[str, str]:
    return {**auth(token), **JSON}


async def test_create_use_list_and_revoke_a_token(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    resp = await client.post("/api/v1/tokens", json={"name": "grafana", "role": "auditor"}, headers=auth(admin))
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    created = await resp.json()
    assert (created["name"], created["role"]) == ("grafana", "auditor") and len(created["token"]) >= 40
    assert (await client.get("/api/v1/cis/export", headers=auth(created["token"]))).status == 200

    listing = await (await client.get("/api/v1/tokens", headers=auth(admin))).json()
    row = next(t for t in listing["items"] if t["name"] == "grafana")
    assert (row["role"], row["state"], row["may_write"]) == ("auditor", "valid", "any")
    assert created["token"] not in json.dumps(listing)  # only names, never tokens
    scanner_row = next(t for t in listing["items"] if t["role"] == "scanner")
    assert scanner_row["may_write"] == "nmap|snmp|ssh/dc1-scanner/*"

    assert (await client.delete("/api/v1/tokens/grafana", headers=auth(admin))).status == 200
    assert (await client.get("/api/v1/cis/export", headers=auth(created["token"]))).status == 401
    again = await client.delete("/api/v1/tokens/grafana", headers=auth(admin))
    assert again.status == 404


async def test_an_admin_cannot_revoke_the_token_it_is_using(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    resp = await client.delete("/api/v1/tokens/role-admin", headers=auth(admin))
    assert resp.status == 409 and "another admin token" in (await resp.json())["error"]
    assert (await client.get("/api/v1/tokens", headers=auth(admin))).status == 200


async def test_an_expiring_token_and_a_duplicate_name(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    resp = await client.post("/api/v1/tokens", json={"name": "ci-bot", "role": "reader", "expires_at": later},
                             headers=auth(admin))
    assert resp.status == 201 and (await resp.json())["expires_at"]
    dup = await client.post("/api/v1/tokens", json={"name": "ci-bot", "role": "reader"}, headers=auth(admin))
    assert dup.status == 409 and "ci-bot" in (await dup.json())["error"]


BAD_TOKEN_BODIES = [
    ("not json", b"name=x", 400),
    ("truncated", b'{"name": "x"', 400),
    ("array", b"[]", 400),
    ("no role", b'{"name": "x"}', 400),
    ("unknown role", b'{"name": "x", "role": "root"}', 400),
    ("scanner role", b'{"name": "x", "role": "scanner"}', 400),
    ("unknown field", b'{"name": "x", "role": "reader", "source_id": "y"}', 400),
    ("name with spaces", b'{"name": "x y", "role": "reader"}', 400),
    ("name with newline", b'{"name": "x\\ny", "role": "reader"}', 400),
    ("name too long", json.dumps({"name": "n" * 129, "role": "reader"}).encode(), 400),
    ("expiry in the past", b'{"name": "x", "role": "reader", "expires_at": "2001-01-01T00:00:00Z"}', 400),
    ("expiry without zone", b'{"name": "x", "role": "reader", "expires_at": "2099-01-01T00:00:00"}', 400),
    ("expiry garbage", b'{"name": "x", "role": "reader", "expires_at": "soon"}', 400),
    ("oversized", json.dumps({"name": "x", "role": "reader", "pad": "p" * 5000}).encode(), 413),
]


@pytest.mark.parametrize("name,body,status", BAD_TOKEN_BODIES, ids=[c[0] for c in BAD_TOKEN_BODIES])
async def test_malformed_token_requests_create_nothing(collector, store, name, body, status):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    before = len(store.list_tokens())
    resp = await client.post("/api/v1/tokens", data=body, headers=_admin_json(admin))
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]
    assert len(store.list_tokens()) == before


async def test_token_requests_must_be_json(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    resp = await client.post("/api/v1/tokens", data=b'{"name": "x", "role": "reader"}',
                             headers={**auth(admin), "Content-Type": "text/plain"})
    assert resp.status == 415
    gz = await client.post("/api/v1/tokens", data=b"\x1f\x8b", headers={**_admin_json(admin), "Content-Encoding": "gzip"})
    assert gz.status == 415


async def test_enrollment_tokens_over_the_api(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    resp = await client.post("/api/v1/enrollment-tokens", json={"name": "rollout-42", "uses": 2, "ttl_seconds": 600},
                             headers=auth(admin))
    assert resp.status == 201
    created = await resp.json()
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    enrolled = await client.post("/api/v1/enroll", json={"enrollment_token": created["token"], "agent_id": AGENT_ID,
                                                         "hostname": "web-01"})
    assert enrolled.status == 201
    listing = await (await client.get("/api/v1/enrollment-tokens", headers=auth(admin))).json()
    row = next(t for t in listing["items"] if t["name"] == "rollout-42")
    assert (row["uses"], row["max_uses"], row["state"]) == (1, 2, "valid")
    assert created["token"] not in json.dumps(listing)
    assert (await client.delete("/api/v1/enrollment-tokens/rollout-42", headers=auth(admin))).status == 200
    refused = await client.post("/api/v1/enroll", json={"enrollment_token": created["token"],
                                                        "agent_id": "0c7d9a52-8f1e-4f0a-b6a2-2d8f6c0e9b02",
                                                        "hostname": "web-02"})
    assert refused.status == 403 and (await refused.json())["reason"] == "revoked"
    assert (await client.delete("/api/v1/enrollment-tokens/rollout-42", headers=auth(admin))).status == 404


async def test_enrollment_tokens_default_to_one_use_for_a_day(collector, store):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    created = await (await client.post("/api/v1/enrollment-tokens", json={"name": "one"}, headers=auth(admin))).json()
    assert created["uses"] == 1
    left = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)


@pytest.mark.parametrize("body", [{"name": "x", "uses": 0}, {"name": "x", "uses": 10**7}, {"name": "x", "ttl_seconds": 0},
                                  {"name": "x", "ttl_seconds": 60, "expires_at": "2099-01-01T00:00:00Z"},
                                  {"name": "x", "uses": "many"}, {"name": ""}])
async def test_malformed_enrollment_token_requests_are_400(collector, store, body):
    client = await collector()
    admin = (await role_tokens(client, store))["admin"]
    before = len(store.list_enrollment_tokens())
    resp = await client.post("/api/v1/enrollment-tokens", json=body, headers=auth(admin))
    assert resp.status == 400, await resp.text()
    assert len(store.list_enrollment_tokens()) == before


async def test_the_config_endpoint_shows_the_effective_collector_options(collector, store):
    client = await collector(rate_limit_token=7.5)
    tokens = await role_tokens(client, store)
    config = await (await client.get("/api/v1/config", headers=auth(tokens["admin"]))).json()
    assert config["collector"]["rate_limit_token"] == 7.5 and config["collector"]["metrics_auth"] == "loopback"
    assert (await client.get("/api/v1/config", headers=auth(tokens["operator"]))).status == 403
