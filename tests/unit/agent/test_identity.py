"""The agent id file: created once, owner-only, stable, never silently replaced."""

from __future__ import annotations

import stat
import uuid

import pytest

from agent.identity import AgentIdError, load_agent_id, load_or_create_agent_id


def test_created_on_first_run_then_stable(tmp_path):
    state = tmp_path / "var" / "lib" / "fleetgraph"
    assert load_agent_id(state) is None
    first = load_or_create_agent_id(state)
    assert uuid.UUID(first).version == 4
    assert load_or_create_agent_id(state) == first == load_agent_id(state)
    assert stat.S_IMODE((state / "agent_id").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert [p.name for p in state.iterdir()] == ["agent_id"]  # no temporary file left


def test_damaged_file_is_an_error_not_a_new_identity(tmp_path):
    (tmp_path / "agent_id").write_text("not-a-uuid\n")
    with pytest.raises(AgentIdError, match="delete it"):
        load_or_create_agent_id(tmp_path)
    assert (tmp_path / "agent_id").read_text() == "not-a-uuid\n"


def test_existing_id_is_normalised(tmp_path):
    (tmp_path / "agent_id").write_text("6F1C2D3E-0000-4000-8000-000000000001")
    assert load_or_create_agent_id(tmp_path) == "6f1c2d3e-0000-4000-8000-000000000001"
