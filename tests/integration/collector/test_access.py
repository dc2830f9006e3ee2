"""Every route against every role, on the real app: the access table is what the API enforces.
Revocation is immediate: a revoked token's next request is a 401."""

from __future__ import annotations

import re

import pytest

from collector.roles import ROUTE_ACCESS
from tests.integration.collector.access_harness import role_tokens
from tests.integration.collector.harness import auth, store_snapshot

CI_ID = "0" * 32


def _concrete(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: CI_ID if m[1] == "ci_id" else "no-such-name", path)


GUARDED = sorted((m, p) for (m, p), a in ROUTE_ACCESS.items() if not a.public and not a.self_authenticated)


@pytest.mark.parametrize("method,path", GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
async def test_each_role_gets_exactly_what_the_table_grants(collector, store, method, path):
    client = await collector(metrics_auth="token")  # /metrics too needs a token here
    tokens = await role_tokens(client, store)
    access = ROUTE_ACCESS[(method, path)]
    before = store_snapshot(store)
    for role, token in tokens.items():
        resp = await client.request(method, _concrete(path), headers=auth(token))
        body = await resp.read()
        if role in access.roles:
            assert resp.status not in (401, 403), (role, resp.status, body[:300])
        else:
            assert resp.status == 403, (role, resp.status, body[:300])
            error = (await resp.json())["error"]
            assert f"role {role!r}" in error and "needs one of" in error
    anonymous = await client.request(method, _concrete(path))
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert store_snapshot(store) == before  # refused, empty or malformed requests store nothing


async def test_public_routes_need_no_token_and_ignore_a_bad_one(collector):
    client = await collector()
    for path in ("/healthz", "/api/v1/openapi.json", "/metrics"):  # /metrics: from loopback by default
        resp = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert resp.status == 200, path


async def test_a_route_missing_from_the_table_is_refused(collector, store, monkeypatch):
    """Fail closed: a route nobody gave a rule is a 500 naming it, never an open door."""
    from collector import roles

    client = await collector()
    tokens = await role_tokens(client, store)
    monkeypatch.delitem(roles.ROUTE_ACCESS, ("GET", "/api/v1/drift"))
    resp = await client.get("/api/v1/drift", headers=auth(tokens["admin"]))
    assert resp.status == 500
    assert "no access rule" in (await resp.json())["error"]


@pytest.mark.parametrize("how", ["store", "api"])
async def test_a_revoked_token_is_refused_at_its_next_request(collector, store, how):
    client = await collector()
    tokens = await role_tokens(client, store)
    assert (await client.get("/api/v1/cis", headers=auth(tokens["reader"]))).status == 200
    if how == "store":
        assert store.revoke_token("role-reader") == 1
    else:
        resp = await client.delete("/api/v1/tokens/role-reader", headers=auth(tokens["admin"]))
        assert resp.status == 200 and (await resp.json())["revoked"] == 1
    resp = await client.get("/api/v1/cis", headers=auth(tokens["reader"]))
    assert resp.status == 401
    assert "revoked" in (await resp.json())["error"]


async def test_an_expired_token_is_refused(collector, store):
    from datetime import UTC, datetime, timedelta

    from collector.auth import create_token

    client = await collector()
    token = create_token(store, "brief", "reader", datetime.now(UTC) + timedelta(milliseconds=150))
    assert (await client.get("/api/v1/cis", headers=auth(token))).status == 200
    import asyncio

    await asyncio.sleep(0.2)
    assert (await client.get("/api/v1/cis", headers=auth(token))).status == 401


@pytest.mark.parametrize("header", ["Bearer " + "x" * 600, "Bearer tøken-ñon-ascii", "Bearer\tabc", "Digest abc",
                                    "Bearer " + "A" * 43])
async def test_hostile_authorization_headers_are_401(collector, header):
    client = await collector()
    resp = await client.get("/api/v1/cis", headers={"Authorization": header})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
