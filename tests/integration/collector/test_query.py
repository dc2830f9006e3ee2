"""The query API and /healthz over reports reconciled by the real worker into the real store."""

from __future__ import annotations

import pytest

from tests.integration.collector.harness import (
    T0,
    auth,
    get_json,
    json_headers,
    later,
    make_report,
    post_and_reconcile,
    report_body,
)


@pytest.fixture
async def fleet(collector, tokens):
    """A collector that has reconciled two reports of web-01 (RAM upgraded between) and db-01."""
    client = await collector(reconcile=True)
    return await post_and_reconcile(client, tokens["agent"], (
                   make_report(hostname="web-01", serial="SN-WEB", memory_mb=8192, collected_at=T0),
                   make_report(hostname="web-01", serial="SN-WEB", memory_mb=16384, collected_at=later(60),
                               os_version="13"),
                   make_report(hostname="db-01", serial="SN-DB", memory_mb=65536, collected_at=T0)))


async def _computer_id(client, token: str, hostname: str) -> str:
    found = await get_json(client, "/api/v1/cis", token, **{"class": "Computer", "attr.hostname": hostname})
    assert found["count"] == 1
    return found["items"][0]["id"]


async def test_list_and_filter(fleet, tokens):
    reader = tokens["reader"]
    computers = await get_json(fleet, "/api/v1/cis", reader, **{"class": "Computer"})
    assert sorted(c["attributes"]["hostname"] for c in computers["items"]) == ["db-01", "web-01"]
    assert all(c["class"] == "Computer" and c["state"] == "active" for c in computers["items"])

    web = await get_json(fleet, "/api/v1/cis", reader, **{"class": "Computer", "attr.hostname": "web-01"})
    assert web["count"] == 1 and web["items"][0]["attributes"]["memory_mb"] == 16384
    typed = await get_json(fleet, "/api/v1/cis", reader, **{"attr.memory_mb": "65536"})
    assert [c["attributes"]["hostname"] for c in typed["items"]] == ["db-01"]
    none = await get_json(fleet, "/api/v1/cis", reader, **{"attr.hostname": "nope"})
    assert none == {"items": [], "count": 0, "limit": 100, "offset": 0, "next_offset": None}

    everything = await get_json(fleet, "/api/v1/cis", reader, state="all")
    assert everything["count"] == 4  # two computers, two operating systems
    page = await get_json(fleet, "/api/v1/cis", reader, limit="3")
    assert page["count"] == 3 and page["next_offset"] == 3
    rest = await get_json(fleet, "/api/v1/cis", reader, limit="3", offset="3")
    assert rest["count"] == 1 and rest["next_offset"] is None
    assert {c["id"] for c in page["items"]} | {c["id"] for c in rest["items"]} == \
        {c["id"] for c in everything["items"]}


@pytest.mark.parametrize("params, message", [
    ({"class": "Toaster"}, "unknown class 'Toaster'; classes are Computer"),
    ({"limit": "0"}, "limit must be between 1 and 1000, got 0"),
    ({"limit": "1001"}, "limit must be between 1 and 1000, got 1001"),
    ({"limit": "ten"}, "limit must be an integer between 1 and 1000"),
    ({"offset": "-1"}, "offset must be at least 0"),
    ({"state": "gone"}, "state must be one of active, retired, all"),
    ({"colour": "blue"}, "unknown query parameter(s) colour"),
    ({"attr.Bad Name": "x"}, "attribute names are lower-case"),
])
async def test_list_rejects_bad_parameters(fleet, tokens, params, message):
    payload = await get_json(fleet, "/api/v1/cis", tokens["reader"], status=400, **params)
    assert message in payload["error"], payload


async def test_show_ci_with_provenance_identifiers_and_relationships(fleet, tokens):
    reader = tokens["reader"]
    ci_id = await _computer_id(fleet, reader, "web-01")
    ci = await get_json(fleet, f"/api/v1/cis/{ci_id}", reader)
    assert ci["id"] == ci_id and ci["class"] == "Computer" and ci["as_of"] is None
    memory = ci["attributes"]["memory_mb"]
    assert memory["value"] == 16384
    assert memory["provenance"]["source"] == {"kind": "agent", "id": "agent-web-01"}
    assert memory["provenance"]["observed_at"].startswith("2024-05-01T13:00:00")
    assert {"kind": "hostname", "value": "web-01"} in ci["identifiers"]
    assert ci["relationships"]["out"] == []
    (runs_on,) = ci["relationships"]["in"]
    assert runs_on["type"] == "RUNS_ON" and runs_on["to_ci"] == ci_id
    os_ci = await get_json(fleet, f"/api/v1/cis/{runs_on['from_ci']}", reader)
    assert os_ci["class"] == "OperatingSystem" and os_ci["attributes"]["version"]["value"] == "13"
    assert os_ci["relationships"]["out"][0]["to_ci"] == ci_id


async def test_show_as_of(fleet, tokens):
    reader = tokens["reader"]
    ci_id = await _computer_id(fleet, reader, "web-01")
    then = await get_json(fleet, f"/api/v1/cis/{ci_id}", reader, as_of=later(30).isoformat())
    assert then["attributes"]["memory_mb"]["value"] == 8192
    assert then["as_of"].startswith("2024-05-01T12:30:00")
    now = await get_json(fleet, f"/api/v1/cis/{ci_id}", reader, as_of="2024-05-01T14:00:00Z")
    assert now["attributes"]["memory_mb"]["value"] == 16384
    before = await get_json(fleet, f"/api/v1/cis/{ci_id}", reader, status=404, as_of="2024-04-01")
    assert "did not exist yet" in before["error"]


async def test_history(fleet, tokens):
    reader = tokens["reader"]
    ci_id = await _computer_id(fleet, reader, "web-01")
    full = await get_json(fleet, f"/api/v1/cis/{ci_id}/history", reader)
    kinds = [row["kind"] for row in full["items"]]
    assert kinds.count("ci.create") == 1
    memory = await get_json(fleet, f"/api/v1/cis/{ci_id}/history", reader, name="memory_mb")
    assert [(r["before"], r["after"]) for r in memory["items"]] == [(None, 8192), (8192, 16384)]
    assert memory["items"][1]["provenance"]["report_id"]
    recent = await get_json(fleet, f"/api/v1/cis/{ci_id}/history", reader, name="memory_mb",
                        since=later(30).isoformat())
    assert [r["after"] for r in recent["items"]] == [16384]
    early = await get_json(fleet, f"/api/v1/cis/{ci_id}/history", reader, name="memory_mb",
                       until=later(30).isoformat())
    assert [r["after"] for r in early["items"]] == [8192]
    one = await get_json(fleet, f"/api/v1/cis/{ci_id}/history", reader, limit="1")
    assert one["count"] == 1


@pytest.mark.parametrize("path, params, status, message", [
    ("/api/v1/cis/0123456789abcdef0123456789abcdef", {}, 404, "no CI with id 0123456789abcdef"),
    ("/api/v1/cis/0123456789abcdef0123456789abcdef/history", {}, 404, "no CI with id"),
    ("/api/v1/cis/not-an-id", {}, 400, "malformed CI id 'not-an-id'"),
    ("/api/v1/cis/not-an-id/history", {}, 400, "malformed CI id"),
    ("/api/v1/cis/{web}", {"as_of": "last tuesday"}, 400, "as_of must be an ISO 8601"),
    ("/api/v1/cis/{web}/history", {"since": "2024-13-01"}, 400, "since must be an ISO 8601"),
    ("/api/v1/cis/{web}/history", {"since": "2024-06-01", "until": "2024-05-01"}, 400, "is after until"),
    ("/api/v1/cis/{web}/history", {"limit": "0"}, 400, "limit must be between 1 and 10000"),
    ("/api/v1/cis/{web}", {"asof": "2024-05-01"}, 400, "unknown query parameter(s) asof"),
])
async def test_show_and_history_errors(fleet, tokens, path, params, status, message):
    reader = tokens["reader"]
    if "{web}" in path:
        path = path.format(web=await _computer_id(fleet, reader, "web-01"))
    payload = await get_json(fleet, path, reader, status=status, **params)
    assert message in payload["error"], payload


async def test_query_auth(fleet, tokens):
    resp = await fleet.get("/api/v1/cis")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    denied = await get_json(fleet, "/api/v1/cis", tokens["agent"], status=403)
    assert "role 'agent'" in denied["error"] and "reader" in denied["error"]
    assert (await get_json(fleet, "/api/v1/cis", tokens["admin"]))["count"] == 4


async def test_unknown_route_and_wrong_method_are_json(collector, tokens):
    client = await collector()
    resp = await client.get("/api/v2/things", headers=auth(tokens["admin"]))
    assert resp.status == 404
    assert "no such endpoint: GET /api/v2/things" in (await resp.json())["error"]
    resp = await client.get("/api/v1/reports", headers=auth(tokens["admin"]))
    assert resp.status == 405
    payload = await resp.json()
    assert payload["allowed"] == ["POST"] and "use POST" in payload["error"]
    resp = await client.delete("/api/v1/cis", headers=auth(tokens["admin"]))
    assert resp.status == 405 and resp.content_type == "application/json"


async def test_healthz(collector, store, tokens):
    client = await collector()
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "store": "ok", "pending_reports": 0, "reconcile": "off"}
    await client.post("/api/v1/reports", data=report_body(), headers=json_headers(tokens["agent"]))
    assert (await (await client.get("/healthz")).json())["pending_reports"] == 1


async def test_store_gone_is_503_on_healthz_and_a_bare_500_elsewhere(db_path, caplog):
    from aiohttp.test_utils import TestClient, TestServer

    from cmdb.backends.sqlite import SQLiteStore
    from cmdb.config import CollectorConfig
    from collector.app import RUNNER_KWARGS, create_app
    from collector.auth import create_token

    store = SQLiteStore(db_path.with_name("other.sqlite"))
    token = create_token(store, "reader", "reader")
    server = TestServer(create_app(store, CollectorConfig(reconcile=False)))
    await server.start_server(**RUNNER_KWARGS)
    async with TestClient(server) as client:
        store.close()
        resp = await client.get("/healthz")
        assert resp.status == 503
        payload = await resp.json()
        assert payload["status"] == "error" and payload["store"] == "unreachable"
        assert "check collector.store" in payload["error"]

        resp = await client.get("/api/v1/cis", headers=auth(token))
        assert resp.status == 500
        payload = await resp.json()
        request_id = resp.headers["X-Request-Id"]
        assert payload == {"error": f"internal error in the collector; it is logged as request {request_id}: "
                                    "report it with that id", "request_id": request_id}
        assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)
        assert token not in caplog.text
