"""POST /ocsinventory on the real collector app over a real SQLite store: the protocol as both
agents speak it, authentication (Basic after a challenge, Bearer), idempotency, and refusal of
malformed, oversized, hostile and unauthenticated requests with nothing stored."""

from __future__ import annotations

import base64
import gzip
import zlib
from datetime import UTC, datetime

import pytest

from cmdb.report import decode_report
from collector.auth import hash_token

from .conftest import FUSION_HEADERS, OCS_HEADERS, PATH, Case, basic, cases, prolog, reply_xml, snapshot

HOSTILE = cases("hostile")
INVENTORIES = {c.name: c for c in cases("inventories")}
FUSION = INVENTORIES["fusion-2.6-debian12-vm"]
OCS = INVENTORIES["ocs-2.10-debian12-vm"]


async def post(client, body: bytes, headers: dict[str, str], compress: bool = True):
    resp = await client.post(PATH, data=zlib.compress(body) if compress else body, headers=headers)
    return resp, await resp.read()


async def test_prolog_is_answered_send_with_a_frequency(collector, store, tokens):
    client = await collector()
    before = snapshot(store)
    resp, body = await post(client, prolog(), {**FUSION_HEADERS, **basic(tokens["agent"])})
    assert resp.status == 200 and resp.content_type == "application/x-compress"
    assert "<RESPONSE>SEND</RESPONSE><PROLOG_FREQ>24</PROLOG_FREQ>" in reply_xml(body)
    assert snapshot(store) == before  # a prolog stores nothing


@pytest.mark.parametrize("case, headers, kind", [(FUSION, FUSION_HEADERS, "fusion"), (OCS, OCS_HEADERS, "ocs")],
                         ids=["fusion", "ocs"])
async def test_an_inventory_is_stored_once_as_a_native_report(collector, store, tokens, case: Case, headers, kind):
    client = await collector()
    resp, body = await post(client, case.xml, {**headers, **basic(tokens["agent"])})
    assert resp.status == 200, reply_xml(body)
    assert "<RESPONSE>no_account_update</RESPONSE>" in reply_xml(body)
    assert store.count_reports() == 1
    stored = store.pending_reports(10)[0]
    report = decode_report(stored.body)  # the native format, valid by the native rules
    assert (report.source.kind, report.source.id) == (kind, case.expected["source"]["id"])
    assert sum(1 for i in report.items if i.class_ == "SoftwareInstall") == case.expected["softwares_in_xml"]

    # The agent sends the very same inventory again (a retry): acknowledged, stored once.
    resp, body = await post(client, case.xml, {**headers, **basic(tokens["agent"])})
    assert resp.status == 200 and "no_account_update" in reply_xml(body)
    assert store.count_reports() == 1
    # A new run (its LOGDATE moves) is a new report.
    changed = case.xml.replace(b"</REQUEST>", b"<!-- run 2 --></REQUEST>")
    resp, _ = await post(client, changed, {**headers, **basic(tokens["agent"])})
    assert resp.status == 200 and store.count_reports() == 2


async def test_a_gzip_body_and_a_bearer_token_and_an_admin_work_too(collector, store, tokens):
    client = await collector()
    resp = await client.post(PATH, data=gzip.compress(prolog()),
                             headers={**OCS_HEADERS, "Authorization": f"Bearer {tokens['agent']}"})
    assert resp.status == 200
    resp, _ = await post(client, prolog(), {**OCS_HEADERS, **basic(tokens["admin"], user="")})
    assert resp.status == 200


async def test_the_inventory_is_reconciled_into_a_computer(collector, store, tokens):
    client = await collector(reconcile=True)
    resp, _ = await post(client, FUSION.xml, {**FUSION_HEADERS, **basic(tokens["agent"])})
    assert resp.status == 200
    from collector.api import WORKER_KEY

    assert client.server.app[WORKER_KEY].drain(30)
    computers = store.list_cis("Computer")
    assert len(computers) == 1 and computers[0].attributes["hostname"].value == "vm"
    assert len(store.relationships(computers[0].ci_id, direction="in", type="INSTALLED_ON")) == 901


# -- authentication -------------------------------------------------------------------------------

def _basic_raw(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


@pytest.mark.parametrize("auth, words", [
    ({}, "authentication required"),
    ({"Authorization": "Digest username=x"}, "authentication required"),
    ({"Authorization": "Basic !!!not-base64!!!"}, "not base64"),
    ("no-colon", "no password"),
    ("user:", "no password"),
    ("user:wrong-token", "invalid, expired or revoked token"),
    ({"Authorization": "Bearer wrong-token"}, "invalid, expired or revoked token"),
])
async def test_no_or_bad_credentials_get_a_basic_challenge(collector, store, auth, words):
    client = await collector()
    headers = _basic_raw(auth.encode()) if isinstance(auth, str) else auth
    before = snapshot(store)
    resp, body = await post(client, FUSION.xml, {**FUSION_HEADERS, **headers})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm=""'  # what both agents' LWP answers by default
    text = reply_xml(body)
    assert words in text and "--password" in text
    assert words in resp.reason or len(resp.reason) == 160
    assert snapshot(store) == before


async def test_a_reader_token_is_forbidden(collector, store, tokens):
    client = await collector()
    before = snapshot(store)
    resp, body = await post(client, FUSION.xml, {**FUSION_HEADERS, **basic(tokens["reader"])})
    assert resp.status == 403 and "role 'reader'" in reply_xml(body)
    assert snapshot(store) == before


async def test_an_enrolled_agents_credential_may_not_write_as_ocs_or_fusion(collector, store):
    now = datetime.now(UTC)
    store.add_enrollment_token(hash_token("enroll-me"), "rack-1")
    store.enroll(hash_token("enroll-me"), now, hash_token("bound-credential"), "agent-a", "agent", "agent-a")
    client = await collector()
    before = snapshot(store)
    for body in (prolog(), FUSION.xml):
        resp, answer = await post(client, body, {**FUSION_HEADERS, **basic("bound-credential")})
        assert resp.status == 403 and "credential of agent agent-a" in reply_xml(answer)
    assert snapshot(store) == before


# -- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
async def test_hostile_requests_are_refused_and_store_nothing(collector, store, tokens, case: Case):
    client = await collector()
    before = snapshot(store)
    resp, body = await post(client, case.xml, {**OCS_HEADERS, **basic(tokens["agent"])})
    assert resp.status == case.expected["status"]
    assert resp.content_type == "application/x-compress"
    assert case.expected["error"] in reply_xml(body)
    assert snapshot(store) == before


@pytest.mark.parametrize("body, compress, status, words", [
    (b"", False, 400, "empty body"),
    (FUSION.xml, False, 400, "not zlib-compressed"),
    (zlib.compress(FUSION.xml)[:-100], False, 400, "truncated"),
    (zlib.compress(b"\0" * (8 * 1024 * 1024)), False, 413, "max_report_bytes"),  # a bomb, past 1 MiB
])
async def test_bodies_that_cannot_be_read(collector, store, tokens, body, compress, status, words):
    client = await collector(max_report_bytes=1024 * 1024)
    before = snapshot(store)
    resp, answer = await post(client, body, {**FUSION_HEADERS, **basic(tokens["agent"])}, compress=compress)
    assert resp.status == status and words in reply_xml(answer)
    assert snapshot(store) == before


async def test_a_body_over_the_wire_limit_is_refused(collector, store, tokens):
    client = await collector(max_body_bytes=10_000)
    resp, answer = await post(client, FUSION.xml, {**FUSION_HEADERS, **basic(tokens["agent"])})
    assert resp.status == 413 and "max_body_bytes" in reply_xml(answer)
    assert store.count_reports() == 0


async def test_an_unknown_content_encoding_is_refused(collector, store, tokens):
    client = await collector()
    resp, answer = await post(client, prolog(), {**FUSION_HEADERS, **basic(tokens["agent"]), "Content-Encoding": "br"})
    assert resp.status == 415 and "Content-Encoding" in reply_xml(answer)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_says_what_the_endpoint_is(collector, method):
    client = await collector()
    for path in (PATH, PATH + "/"):
        resp = await client.request(method, path)
        assert resp.status == 405 and resp.headers["Allow"] == "POST"
        if method == "GET":
            assert "agents POST zlib-compressed XML here" in reply_xml(await resp.read())


async def test_other_methods_are_refused_with_a_clear_405(collector):
    client = await collector()
    resp = await client.put(PATH, data=b"x")
    assert resp.status == 405
