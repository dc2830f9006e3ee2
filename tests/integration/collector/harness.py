"""Helpers for the collector tests: a valid report, auth headers, store snapshots, draining."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from cmdb.report import SCHEMA_V1, CollectorStatus, Item, Relation, Report, Source, encode_report

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_report(report_id: str | None = None, *, hostname: str = "web-01", serial: str = "SN-0001",
                memory_mb: int = 8192, collected_at: datetime | None = None,
                os_version: str = "12") -> Report:
    """A small, valid agent report: one Computer and the OperatingSystem that RUNS_ON it."""
    return Report(
        schema=SCHEMA_V1,
        report_id=report_id or f"rpt-{uuid.uuid4().hex}",
        source=Source(kind="agent", id=f"agent-{hostname}", version="0.1.0"),
        collected_at=collected_at or T0,
        collectors={"hardware": CollectorStatus(status="ok"), "os": CollectorStatus(status="ok")},
        items=[
            Item(class_="Computer", ref="host", identifiers={"serial": serial, "hostname": hostname},
                 attributes={"hostname": hostname, "manufacturer": "Dell Inc.", "memory_mb": memory_mb},
                 collector="hardware"),
            Item(class_="OperatingSystem", ref="os", identifiers={"family": "linux"},
                 attributes={"name": "Debian GNU/Linux", "version": os_version}, collector="os"),
        ],
        relations=[Relation(from_="os", type="RUNS_ON", to="host")],
    )


def report_body(**kwargs: Any) -> bytes:
    return encode_report(make_report(**kwargs))


def store_snapshot(store: Any) -> tuple[int, dict[str, int], dict[str, int]]:
    """What a rejected request must leave unchanged."""
    return (store.count_reports(), store.count_cis(state=None), store.count_relationships(state=None))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def json_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **extra}


async def drain(client: TestClient, timeout: float = 20.0) -> None:
    """Wait until the app's reconcile worker has nothing pending."""
    from collector.api import WORKER_KEY

    worker = client.server.app[WORKER_KEY]
    assert worker is not None, "start the collector with reconcile=True"
    assert await asyncio.to_thread(worker.drain, timeout), "reconcile worker did not drain in time"


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def get_json(client: TestClient, path: str, token: str, status: int = 200, **params: Any) -> Any:
    """GET with a bearer token; asserts the status and returns the JSON answer."""
    resp = await client.get(path, params=params, headers=auth(token))
    payload = await resp.json()
    assert resp.status == status, payload
    return payload


async def post_and_reconcile(client: TestClient, token: str, reports: Any) -> TestClient:
    """POST each report (each must be accepted) and wait until all are reconciled."""
    for report in reports:
        resp = await client.post("/api/v1/reports", data=encode_report(report), headers=json_headers(token))
        assert resp.status == 202, await resp.text()
    await drain(client)
    return client
