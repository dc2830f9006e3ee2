"""The agent side of enrollment against the real collector app: what it stores, where it refuses,
and how `agent run` picks the stored enrollment up (only for the server it enrolled with)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from agent.enroll import (
    EnrollmentError,
    check_server_url,
    enroll,
    load_enrollment,
    local_hostname,
    with_enrollment,
)
from cmdb.config import AgentConfig, ConfigError
from tests.integration.enroll.conftest import mode


@pytest.mark.parametrize("url", ["http://127.0.0.1:8420", "http://localhost:8420/", "http://[::1]:8420",
                                 "https://collector.example.org", "https://10.0.0.5:8420/fleet/"])
def test_allowed_server_urls(url):
    assert not check_server_url(url).endswith("/")


@pytest.mark.parametrize("url,words", [
    ("http://collector.example.org:8420", "refusing to enroll over plain http://"),
    ("http://10.0.0.5:8420", "refusing to enroll over plain http://"),
    ("ftp://127.0.0.1", "must be https://"),
    ("https://user:pw@collector.example.org", "no credentials"),
    ("collector.example.org", "must be https://"),
])
def test_refused_server_urls(url, words):
    with pytest.raises(EnrollmentError, match=None) as err:
        check_server_url(url)
    assert words in str(err.value)


def test_insecure_allows_plain_http_to_a_remote_host():
    assert check_server_url("http://10.0.0.5:8420", insecure=True) == "http://10.0.0.5:8420"


def test_local_hostname_fits_what_the_collector_accepts(monkeypatch):
    import re

    from collector.enroll import _HOSTNAME

    for raw in ("web-01", "bad host\n", "-x", "ünïcode", "", "a" * 400):
        monkeypatch.setattr("socket.gethostname", lambda raw=raw: raw)
        assert re.match(_HOSTNAME, local_hostname()), raw


async def test_enroll_stores_the_credential_and_run_finds_it(collector, store, enrollment_token, tmp_path):
    client = await collector()
    server = str(client.make_url("")).rstrip("/")
    state = tmp_path / "state"
    result = await asyncio.to_thread(enroll, server, enrollment_token(), state, hostname="web-01")
    assert (mode(state), mode(state / "credential"), mode(state / "enrollment.json")) == (0o700, 0o600, 0o600)
    assert not result.rotated and result.server == server
    assert [t.source_id for t in store.list_tokens()] == [result.agent_id]
    assert load_enrollment(state)["agent_id"] == result.agent_id
    assert not [p.name for p in state.iterdir() if p.name.startswith(".")]  # no temporary files left

    base = AgentConfig(state_dir=str(state))
    cfg = with_enrollment(base)
    assert (cfg.server, cfg.token_file, cfg.ca_file) == (server, str(state / "credential"), None)
    # a token given explicitly wins; another server never receives this collector's credential
    assert with_enrollment(dataclasses.replace(base, token="explicit")).token_file is None
    assert with_enrollment(dataclasses.replace(base, server="https://elsewhere:8420")).token_file is None
    assert with_enrollment(AgentConfig(state_dir=str(tmp_path / "never-enrolled"))).server is None

    again = await asyncio.to_thread(enroll, server, enrollment_token("second"), state, hostname="web-01")
    assert again.rotated and again.agent_id == result.agent_id


async def test_a_refused_enrollment_stores_nothing(collector, tmp_path):
    client = await collector()
    state = tmp_path / "state"
    with pytest.raises(EnrollmentError, match="HTTP 401.*not recognized"):
        await asyncio.to_thread(enroll, str(client.make_url("")), "z" * 43, state)
    assert not (state / "credential").exists() and not (state / "enrollment.json").exists()


def test_a_damaged_enrollment_record_says_what_to_do(tmp_path):
    (tmp_path / "enrollment.json").write_text("{not json")
    with pytest.raises(ConfigError, match="enroll again"):
        with_enrollment(AgentConfig(state_dir=str(tmp_path)))
    (tmp_path / "enrollment.json").write_text(json.dumps({"server": 5}))
    with pytest.raises(ConfigError, match="damaged"):
        load_enrollment(tmp_path)


def test_a_missing_ca_file_is_named(tmp_path):
    from agent.transport import TransportError

    with pytest.raises(TransportError, match="does not exist"):
        enroll("https://127.0.0.1:9", "t" * 43, tmp_path / "state", ca_file=str(tmp_path / "nope.pem"))
