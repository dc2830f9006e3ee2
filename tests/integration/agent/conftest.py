"""Shared by the agent's integration tests: a real collector process, the real agent CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.integration.lab import Collector, fleetgraph


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path / "cmdb.sqlite").start()
    yield c
    assert c.stop() == 0, "".join(c.log)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def agent_cli(collector_url: str, token: str, state_dir: Path, *extra: str, check: bool = True):
    return fleetgraph("agent", "run", "--once", "--server", collector_url, "--state-dir", str(state_dir),
                      *extra, env={"FLEETGRAPH_AGENT_TOKEN": token}, check=check)


def stored_reports(store_url: str) -> dict[str, dict]:
    """{report_id: report JSON} of every report the collector stored, read straight from its
    SQLite file (read-only; the store contract has no "every raw report" query, nor needs one)."""
    path = store_url.removeprefix("sqlite://")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT report_id, body FROM report ORDER BY seq").fetchall()
    return {report_id: json.loads(body) for report_id, body in rows}
