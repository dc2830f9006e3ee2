"""GET /api/v1/drift over reports reconciled by the real worker into the real store."""

from __future__ import annotations

import pytest

from tests.integration.collector.harness import T0, get_json, later, make_report, post_and_reconcile


@pytest.fixture
async def drifted(collector, tokens):
    """web-01 reported three times: OS 12, then 13 (drift), then 13 again (none); db-01 once."""
    client = await collector(reconcile=True)
    return await post_and_reconcile(client, tokens["agent"], (
                   make_report(hostname="web-01", serial="SN-WEB", collected_at=T0),
                   make_report(hostname="web-01", serial="SN-WEB", collected_at=later(60), os_version="13"),
                   make_report(hostname="web-01", serial="SN-WEB", collected_at=later(120), os_version="13"),
                   make_report(hostname="db-01", serial="SN-DB", collected_at=T0)))


async def test_list_and_filter_drift(drifted, tokens):
    reader = tokens["reader"]
    everything = await get_json(drifted, "/api/v1/drift", reader)
    assert everything["count"] == 1 and everything["limit"] == 1000
    [event] = everything["items"]
    assert (event["class"], event["attribute"], event["before"], event["after"]) == (
        "OperatingSystem", "version", "12", "13")
    assert event["provenance"]["source"] == {"kind": "agent", "id": "agent-web-01"}
    assert event["provenance"]["observed_at"].startswith("2024-05-01T13:00:00")
    assert len(event["id"]) == 32 and event["recorded_at"]

    [web] = (await get_json(drifted, "/api/v1/cis", reader, **{"class": "Computer", "attr.hostname": "web-01"}))["items"]
    [db] = (await get_json(drifted, "/api/v1/cis", reader, **{"class": "Computer", "attr.hostname": "db-01"}))["items"]
    assert event["related_ci"] == web["id"]
    assert (await get_json(drifted, "/api/v1/drift", reader, ci=web["id"]))["count"] == 1
    assert (await get_json(drifted, "/api/v1/drift", reader, ci=event["ci_id"]))["count"] == 1
    assert (await get_json(drifted, "/api/v1/drift", reader, ci=db["id"]))["count"] == 0
    assert (await get_json(drifted, "/api/v1/drift", reader, since="2024-05-01T13:00:01Z"))["count"] == 0
    assert (await get_json(drifted, "/api/v1/drift", reader, until="2024-05-01T13:00:00Z"))["count"] == 1
    assert (await get_json(drifted, "/api/v1/drift", reader, limit="1"))["count"] == 1
    shown = await get_json(drifted, f"/api/v1/cis/{web['id']}", reader)
    assert shown["id"] == web["id"] and "drift" not in shown


@pytest.mark.parametrize("params,parameter", [
    ({"ci": "web-01"}, "ci"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2024-13-01"}, "until"),
    ({"since": "2024-05-02", "until": "2024-05-01"}, "since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"host": "x"}, None),
])
async def test_bad_parameters_are_400_naming_the_parameter(drifted, tokens, params, parameter):
    payload = await get_json(drifted, "/api/v1/drift", tokens["reader"], status=400, **params)
    name = parameter or "host"
    assert name in payload["error"], payload


async def test_drift_needs_a_reader_token(drifted, tokens):
    resp = await drifted.get("/api/v1/drift")
    assert resp.status == 401
    await get_json(drifted, "/api/v1/drift", tokens["agent"], status=403)
    assert (await get_json(drifted, "/api/v1/drift", tokens["admin"]))["count"] == 1
