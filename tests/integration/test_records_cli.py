"""`fleetgraph change` and `fleetgraph incident` as an operator runs them, on a real store."""

from __future__ import annotations

import json

import pytest

from cmdb.backends.sqlite import SQLiteStore
from tests.integration.lab import fleetgraph


@pytest.fixture
def store_flag(tmp_path):
    SQLiteStore(tmp_path / "cmdb.sqlite").close()
    return ("--store", f"sqlite:///{tmp_path}/cmdb.sqlite")


def test_a_change_from_creation_to_verification(store_flag):
    out = fleetgraph("change", "create", "--title", "upgrade RAM", "--start", "2025-01-01T10:00Z",
                     "--end", "2025-01-01T11:00Z", "--expect", "memory_bytes=34359738368", "--actor", "alice",
                     *store_flag)
    assert "created CHG0000001" in out.stdout
    for state in ("assess", "authorize"):
        fleetgraph("change", "move", "CHG0000001", state, *store_flag)
    fleetgraph("change", "approve", "CHG0000001", "--actor", "cab", *store_flag)
    verified = fleetgraph("change", "verify", *store_flag)
    assert "verified=not_observed" in verified.stdout  # the window is long closed and nothing changed
    shown = json.loads(fleetgraph("change", "show", "chg1", "--json", *store_flag).stdout)
    assert shown["state"] == "scheduled" and shown["approved_by"] == "cab" and shown["created_by"] == "alice"
    assert [e["event"] for e in shown["events"]] == ["created", "transitioned", "transitioned", "transitioned",
                                                     "verified"]


@pytest.mark.parametrize("args,words", [
    (("change", "move", "CHG0000001", "closed"), "may go to assess, cancelled, not closed"),
    (("change", "show", "CHG0000042"), "no record CHG0000042"),
    (("change", "show", "'; DROP TABLE change_record; --"), "not a record number"),
    (("change", "create", "--title", "x" * 300), "longer than 200"),
    (("change", "create", "--title", "x", "--start", "2025-01-01T10:00Z"), "needs both"),
    (("change", "create", "--title", "x", "--expect", "os.version~[unclosed"), "pattern"),
    (("change", "create", "--title", "x", "--ci", "ffff"), "ffff"),
    (("incident", "update", "INC0000001", "--state", "closed"), "no record"),
    (("incident", "create", "--title", "x", "--impact", "apocalyptic"), "high, medium or low"),
])
def test_bad_requests_say_why_and_change_nothing(store_flag, args, words):
    fleetgraph("change", "create", "--title", "seed", *store_flag)
    before = fleetgraph("change", "list", "--json", *store_flag).stdout
    out = fleetgraph(*args, *store_flag, check=False)
    assert out.returncode != 0 and words in out.stderr, out.stderr
    assert fleetgraph("change", "list", "--json", *store_flag).stdout == before


def test_incidents_are_listed_open_first_and_resolved_with_a_resolution(store_flag):
    fleetgraph("incident", "create", "--title", "db01 slow", "--impact", "high", "--urgency", "high", *store_flag)
    fleetgraph("incident", "create", "--title", "printer jam", "--impact", "low", "--urgency", "low", *store_flag)
    listed = fleetgraph("incident", "list", *store_flag).stdout.splitlines()
    assert listed[0].startswith("INC0000002") and " P5 " in listed[0] and " P1 " in listed[1]
    out = fleetgraph("incident", "update", "INC0000001", "--state", "resolved", *store_flag, check=False)
    assert out.returncode == 2 and "needs a resolution" in out.stderr
    fleetgraph("incident", "update", "INC0000001", "--state", "resolved", "--resolution", "index rebuilt",
               *store_flag)
    open_ = json.loads(fleetgraph("incident", "list", "--open", "--json", *store_flag).stdout)
    assert [i["number"] for i in open_] == ["INC0000002"]
