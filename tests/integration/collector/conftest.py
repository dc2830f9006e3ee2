"""Fixtures for the collector: the real app over the real SQLite store, on a loopback port.

`collector(**config)` starts the app with aiohttp's TestServer (same runner arguments as
`fleetgraph collector serve`) and returns a TestClient; `tokens` holds a token of each role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cmdb.backends import sqlite_url
from cmdb.config import CollectorConfig


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite"


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
        settings: dict[str, Any] = {"store": sqlite_url(db_path), "reconcile": False} | overrides
        app = create_app(store, CollectorConfig(**settings))
        server = TestServer(app)
        # TestServer drops runner arguments given to its constructor; start_server takes them.
        await server.start_server(**RUNNER_KWARGS)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
