"""GET /api/v1/cis/export: NDJSON and CSV of reconciled CIs, paging, formula-safe CSV, roles."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.integration.collector.access_harness import role_tokens
from tests.integration.collector.harness import auth, make_report, post_and_reconcile

EXPORT = "/api/v1/cis/export"


@pytest.fixture
async def fleet(collector, store):
    """A collector with three reconciled machines, one of them named like a spreadsheet formula."""
    client = await collector(reconcile=True)
    tokens = await role_tokens(client, store)
    reports = [make_report(hostname=h, serial=f"SN-{i}") for i, h in enumerate(("web-01", "db-01", "-cmd"))]
    await post_and_reconcile(client, tokens["agent"], reports)
    return client, tokens


async def _export(client, token, **params) -> tuple[int, str, str]:
    resp = await client.get(EXPORT, params=params, headers=auth(token))
    return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_ndjson_is_one_ci_per_line_with_current_attributes(fleet, store):
    client, tokens = fleet
    status, ctype, text = await _export(client, tokens["auditor"])
    assert status == 200 and ctype.startswith("application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == sum(store.count_cis().values())
    computers = {c["attributes"]["hostname"]: c for c in lines if c["class"] == "Computer"}
    assert set(computers) == {"web-01", "db-01", "-cmd"}
    assert computers["web-01"]["attributes"]["memory_mb"] == 8192
    assert {"id", "class", "state", "first_seen", "last_seen", "attributes"} == set(computers["web-01"])


async def test_csv_with_fields_has_a_column_per_attribute_and_neutralizes_formulas(fleet):
    client, tokens = fleet
    status, ctype, text = await _export(client, tokens["admin"], format="csv", **{"class": "Computer"},
                                        fields="hostname,memory_mb,absent_attr")
    assert status == 200 and ctype.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "class", "state", "first_seen", "last_seen", "attr.hostname", "attr.memory_mb",
                       "attr.absent_attr"]
    by_name = {r[5]: r for r in rows[1:]}
    assert set(by_name) == {"web-01", "db-01", "'-cmd"}  # a leading '-' would run as a formula
    assert by_name["web-01"][6] == "8192" and by_name["web-01"][7] == ""


async def test_csv_without_fields_carries_the_attributes_as_json(fleet):
    client, tokens = fleet
    _, _, text = await _export(client, tokens["auditor"], format="csv", **{"class": "Computer"})
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][-1] == "attributes"
    assert {json.loads(r[-1])["hostname"] for r in rows[1:]} == {"web-01", "db-01", "-cmd"}


async def test_the_export_pages_through_the_whole_cmdb(fleet, store, monkeypatch):
    from collector import export

    monkeypatch.setattr(export, "EXPORT_PAGE", 2)  # many pages of a small CMDB
    client, tokens = fleet
    _, _, text = await _export(client, tokens["auditor"], state="all")
    ids = [json.loads(line)["id"] for line in text.splitlines()]
    assert len(ids) == len(set(ids)) == sum(store.count_cis(state=None).values())


async def test_fields_restrict_ndjson_attributes(fleet):
    client, tokens = fleet
    _, _, text = await _export(client, tokens["auditor"], **{"class": "Computer"}, fields="hostname")
    assert all(set(json.loads(line)["attributes"]) == {"hostname"} for line in text.splitlines())


async def test_readers_operators_and_agents_may_not_export(fleet):
    client, tokens = fleet
    for role in ("reader", "operator", "agent", "scanner"):
        assert (await _export(client, tokens[role]))[0] == 403, role


@pytest.mark.parametrize("params,word", [
    ({"format": "xlsx"}, "format"), ({"class": "Toaster"}, "class"), ({"state": "gone"}, "state"),
    ({"fields": "Bad Name"}, "fields"), ({"fields": ","}, "fields"), ({"fields": ",".join(["a"] * 201)}, "fields"),
    ({"fields": "a;DROP TABLE ci"}, "fields"), ({"limit": "5"}, "limit"),
])
async def test_bad_parameters_are_400_naming_them(fleet, params, word):
    client, tokens = fleet
    status, ctype, text = await _export(client, tokens["auditor"], **params)
    assert status == 400 and ctype.startswith("application/json")
    assert word in json.loads(text)["error"]


async def test_an_empty_cmdb_exports_only_the_header(collector, store):
    client = await collector()
    tokens = await role_tokens(client, store)
    assert (await _export(client, tokens["auditor"]))[2] == ""
    assert (await _export(client, tokens["auditor"], format="csv"))[2].splitlines() == [
        "id,class,state,first_seen,last_seen,attributes"]
