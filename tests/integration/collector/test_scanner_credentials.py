"""Enrollment kinds and source binding: an agent's credential writes its own source, a scanner's
only nmap/snmp/ssh sources under "<scanner id>/"."""

from __future__ import annotations

import json

import pytest

from collector.enroll import create_enrollment_token
from tests.integration.collector.access_harness import (
    AGENT_ID,
    ENROLL,
    REPORTS,
    enroll,
    enroll_scanner,
    report_from,
)
from tests.integration.collector.harness import auth, json_headers, store_snapshot

SCANNER = "dc1-scanner"


async def test_agents_enroll_as_before_with_or_without_kind(collector, store):
    client = await collector()
    plain = await enroll(client, store, name="a", agent_id=AGENT_ID)
    assert (plain["kind"], plain["role"], plain["source_id"], plain["agent_id"]) == ("agent", "agent", AGENT_ID, AGENT_ID)
    other = "0c7d9a52-8f1e-4f0a-b6a2-2d8f6c0e9b02"
    explicit = await enroll(client, store, name="b", kind="agent", agent_id=other)
    assert explicit["source_id"] == other
    resp = await client.post(REPORTS, data=report_from("agent", AGENT_ID), headers=json_headers(plain["token"]))
    assert resp.status == 202, await resp.text()


async def test_a_scanner_enrolls_for_a_bound_scanner_credential(collector, store):
    client = await collector()
    answer = await enroll(client, store, kind="scanner", scanner_id=SCANNER)
    assert (answer["kind"], answer["role"], answer["scanner_id"], answer["token_name"]) == \
        ("scanner", "scanner", SCANNER, f"scanner-{SCANNER}")
    assert answer["source_kinds"] == ["nmap", "snmp", "ssh"]
    (stored,) = [t for t in store.list_tokens() if t.name == f"scanner-{SCANNER}"]
    assert stored.role == "scanner" and answer["token"] not in repr(stored)


@pytest.mark.parametrize("kind,source_id", [("snmp", f"{SCANNER}/snmp/127.0.0.11"),
                                            ("ssh", f"{SCANNER}/ssh/127.0.0.12:2222"),
                                            ("nmap", f"{SCANNER}/nmap/127.0.0.13")])
async def test_a_scanner_submits_its_own_sources(collector, store, kind, source_id):
    client = await collector()
    token = await enroll_scanner(client, store, SCANNER)
    resp = await client.post(REPORTS, data=report_from(kind, source_id), headers=json_headers(token))
    assert resp.status == 202, await resp.text()


@pytest.mark.parametrize("kind,source_id", [
    ("agent", f"{SCANNER}/agent/x"),           # not a scanner's kind
    ("ocs", f"{SCANNER}/ocs/x"),
    ("snmp", "other-scanner/snmp/127.0.0.11"),  # another scanner's prefix
    ("snmp", f"{SCANNER}x/snmp/127.0.0.11"),    # a longer id that starts with ours
    ("snmp", SCANNER),                          # the bare id, no "/"
    ("snmp", f"{SCANNER}/"),                    # the prefix and nothing after it (not a valid id anyway)
    ("agent", AGENT_ID),
])
async def test_a_scanner_cannot_write_other_sources(collector, store, kind, source_id):
    client = await collector()
    token = await enroll_scanner(client, store, SCANNER)
    before = store_snapshot(store)
    resp = await client.post(REPORTS, data=report_from(kind, source_id), headers=json_headers(token))
    assert resp.status in (400, 403), await resp.text()
    if resp.status == 403:
        error = await resp.json()
        assert error["rule"] == "source_binding" and error["bound_scanner_id"] == SCANNER
        assert f"'{SCANNER}/'" in error["error"]
    assert store_snapshot(store) == before


async def test_a_scanner_credential_only_submits_reports(collector, store):
    client = await collector()
    token = await enroll_scanner(client, store, SCANNER)
    for method, path in (("GET", "/api/v1/cis"), ("GET", "/api/v1/cis/export"), ("GET", "/api/v1/tokens")):
        assert (await client.request(method, path, headers=auth(token))).status == 403


async def test_a_scanner_named_like_an_agent_does_not_revoke_the_agent(collector, store):
    """Scanner bindings live in their own namespace: enrolling scanner <agent's UUID> is a rotation
    of nothing, never of the agent's credential."""
    client = await collector()
    agent = await enroll(client, store, name="agent", agent_id=AGENT_ID)
    scanner = await enroll(client, store, name="scanner", kind="scanner", scanner_id=AGENT_ID)
    assert (await client.post(REPORTS, data=report_from("agent", AGENT_ID),
                              headers=json_headers(agent["token"]))).status == 202
    assert (await client.post(REPORTS, data=report_from("ssh", f"{AGENT_ID}/ssh/127.0.0.12"),
                              headers=json_headers(scanner["token"]))).status == 202


async def test_enrolling_a_scanner_again_rotates_its_credential(collector, store):
    client = await collector()
    first = await enroll_scanner(client, store, SCANNER)
    second = await enroll_scanner(client, store, SCANNER)
    source = f"{SCANNER}/snmp/127.0.0.11"
    assert (await client.post(REPORTS, data=report_from("snmp", source), headers=json_headers(first))).status == 401
    assert (await client.post(REPORTS, data=report_from("snmp", source), headers=json_headers(second))).status == 202


def test_a_scanner_token_cannot_be_created_unbound(store):
    from collector.auth import create_token

    with pytest.raises(ValueError, match="enroll the scanner"):
        create_token(store, "loose-scanner", "scanner")


async def test_an_unbound_scanner_token_in_the_store_writes_nothing(collector, store):
    """Defence in depth: a scanner-role row without a binding (written by hand) is refused."""
    from collector.auth import hash_token

    client = await collector()
    store.add_token(hash_token("S" * 43), "hand-made", "scanner")
    resp = await client.post(REPORTS, data=report_from("snmp", "any/snmp/127.0.0.11"), headers=json_headers("S" * 43))
    assert resp.status == 403
    assert "bound to no scanner id" in (await resp.json())["error"]


BAD_SCANNER_REQUESTS = [
    ("kind unknown", {"kind": "printer", "scanner_id": SCANNER}),
    ("no scanner_id", {"kind": "scanner"}),
    ("slash in id", {"kind": "scanner", "scanner_id": "dc1/evil"}),
    ("colon in id", {"kind": "scanner", "scanner_id": "scanner:dc1"}),
    ("empty id", {"kind": "scanner", "scanner_id": ""}),
    ("id too long", {"kind": "scanner", "scanner_id": "s" * 65}),
    ("leading dot", {"kind": "scanner", "scanner_id": ".hidden"}),
    ("both ids", {"kind": "scanner", "scanner_id": SCANNER, "agent_id": AGENT_ID}),
    ("scanner_id for an agent", {"agent_id": AGENT_ID, "scanner_id": SCANNER}),
    ("kind not a string", {"kind": 1, "scanner_id": SCANNER}),
    ("control characters", {"kind": "scanner", "scanner_id": "dc1\n\x00"}),
]


@pytest.mark.parametrize("name,fields", BAD_SCANNER_REQUESTS, ids=[c[0] for c in BAD_SCANNER_REQUESTS])
async def test_malformed_scanner_enrollments_are_400_and_spend_nothing(collector, store, name, fields):
    client = await collector()
    token = create_enrollment_token(store, "batch")
    body = json.dumps({"enrollment_token": token, "hostname": "scan-01", **fields})
    resp = await client.post(ENROLL, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]
    assert store.list_tokens() == [] and store.list_enrollment_tokens()[0].uses == 0
