"""Helpers for the access-control tests: a credential of every role, scanner enrollment, reports of a
given source."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp.test_utils import TestClient

from cmdb.report import Source, encode_report
from collector.roles import ROLES, SCANNER
from tests.integration.collector.harness import make_report

ENROLL = "/api/v1/enroll"
REPORTS = "/api/v1/reports"
AGENT_ID = "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01"


def report_from(kind: str, source_id: str, **kwargs: Any) -> bytes:
    """A valid report whose source is kind/source_id."""
    report = make_report(**kwargs)
    return encode_report(msgspec.structs.replace(report, source=Source(kind=kind, id=source_id, version="0.1.0")))


async def enroll(client: TestClient, store: Any, *, name: str = "enroll", **fields: Any) -> dict:
    """Enroll through the API with a fresh enrollment token; the 201 answer."""
    from collector.enroll import create_enrollment_token

    token = create_enrollment_token(store, f"{name}-{len(store.list_enrollment_tokens())}")
    resp = await client.post(ENROLL, json={"enrollment_token": token, "hostname": "host-01", **fields})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def enroll_scanner(client: TestClient, store: Any, scanner_id: str = "dc1-scanner") -> str:
    answer = await enroll(client, store, name=f"enroll-{scanner_id}", kind="scanner", scanner_id=scanner_id)
    return answer["token"]


async def role_tokens(client: TestClient, store: Any) -> dict[str, str]:
    """A token of every role: scanner through enrollment (it must be bound), the rest created."""
    from collector.auth import create_token

    tokens = {role: create_token(store, f"role-{role}", role) for role in ROLES if role != SCANNER}
    tokens[SCANNER] = await enroll_scanner(client, store)
    return tokens
