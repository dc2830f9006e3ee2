"""The real collector app (aiohttp TestServer, the runner arguments `fleetgraph collector serve`
uses) over a real SQLite store in a temp dir, for the OCS / FusionInventory endpoint; the recorded
fixture cases under tests/fixtures/legacy/."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cmdb.backends import sqlite_url
from cmdb.config import CollectorConfig

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "legacy"
PATH = "/ocsinventory"
FUSION_HEADERS = {"User-Agent": "FusionInventory-Agent_v2.6-3", "Content-Type": "application/x-compress-zlib"}
OCS_HEADERS = {"User-Agent": "OCS-NG_unified_unix_agent_v2.10.0", "Content-Type": "application/x-compress"}
NO_RATE_LIMITS = {"rate_limit_token": 0, "rate_limit_anonymous": 0, "rate_limit_source": 0}


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    xml: bytes
    expected: dict[str, Any]


def cases(group: str) -> list[Case]:
    folder = FIXTURES / group
    return [Case(p.name, p, (p / "request.xml").read_bytes(), json.loads((p / "expected.json").read_text()))
            for p in sorted(folder.iterdir()) if p.is_dir()]


def basic(token: str, user: str = "any-user") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def prolog(device_id: str = "vm-2026-11-21-20-37-42") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8" ?>\n<REQUEST>\n  <DEVICEID>{device_id}</DEVICEID>\n'
            "  <QUERY>PROLOG</QUERY>\n  <TOKEN>12345678</TOKEN>\n</REQUEST>\n").encode()


def reply_xml(body: bytes) -> str:
    """A reply body (zlib-compressed XML, always) as text, the error message unescaped."""
    return unescape(zlib.decompress(body).decode("utf-8"))


def snapshot(store: Any) -> tuple[int, dict[str, int], dict[str, int]]:
    """What a refused request must leave unchanged."""
    return store.count_reports(), store.count_cis(state=None), store.count_relationships(state=None)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cmdb.sqlite"


@pytest.fixture
def store(db_path: Path):
    from cmdb.backends.sqlite import SQLiteStore

    s = SQLiteStore(db_path)
    yield s
    s.close()


@pytest.fixture
def tokens(store) -> dict[str, str]:
    from collector.auth import create_token

    return {role: create_token(store, f"test-{role}", role) for role in ("agent", "reader", "admin")}


Starter = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def collector(store, db_path: Path) -> AsyncIterator[Starter]:
    from collector.app import RUNNER_KWARGS, create_app

    clients: list[TestClient] = []

    async def start(**overrides: Any) -> TestClient:
        settings: dict[str, Any] = {"store": sqlite_url(db_path), "reconcile": False, **NO_RATE_LIMITS} | overrides
        server = TestServer(create_app(store, CollectorConfig(**settings)))
        await server.start_server(**RUNNER_KWARGS)  # TestServer drops runner arguments given to it
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
