"""Enrollment with real processes: `fleetgraph collector serve` (HTTP on loopback, and HTTPS with a
throwaway CA), `fleetgraph enroll-token`, `fleetgraph agent enroll`, then `fleetgraph agent run`
with nothing but the state folder."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cmdb.backends import open_store
from tests.integration.enroll.conftest import mode, report_for
from tests.integration.enroll.tls import ThrowawayPKI
from tests.integration.lab import REPO, Collector


def _env(**extra: str) -> dict[str, str]:
    drop = ("FLEETGRAPH_", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, "PYTHONPATH": str(REPO), **extra}


def fg(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cmdb.cli", *args], cwd=REPO, env=_env(**env),
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"fleetgraph {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def create_enrollment_token(c: Collector, name: str, *extra: str) -> str:
    out = fg("enroll-token", "create", "--name", name, "--store", c.store_url, *extra)
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 40, out.stdout  # the token and nothing else
    return lines[0]


def agent_enroll(c: Collector, token: str, state: Path, *extra: str, check: bool = True):
    return fg("agent", "enroll", "--server", c.url, "--state-dir", str(state), *extra, check=check,
              FLEETGRAPH_AGENT_ENROLL_TOKEN=token)


def post_report(url: str, credential: str, body: bytes, cafile: Path | None = None) -> int:
    req = urllib.request.Request(url + "/api/v1/reports", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {credential}"})
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_reconciled(url: str, cafile: Path | None = None, timeout: float = 60) -> None:
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/healthz", timeout=10, context=context) as resp:
            if json.loads(resp.read()).get("pending_reports") == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"reports still pending after {timeout}s")


def computers(c: Collector):
    store = open_store(c.store_url)
    try:
        return store.list_cis("Computer")
    finally:
        store.close()


@pytest.fixture
def http_collector(tmp_path):
    c = Collector(tmp_path / "cmdb.sqlite").start()
    yield c
    assert c.stop() == 0, "".join(c.log)


@pytest.fixture
def https_collector(tmp_path, pki: ThrowawayPKI):
    c = Collector(tmp_path / "cmdb.sqlite", ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)))
    c.start()
    yield c
    assert c.stop() == 0, "".join(c.log)


def test_enroll_then_run_with_nothing_but_the_state_folder(http_collector, tmp_path):
    c = http_collector
    token = create_enrollment_token(c, "rollout", "--ttl", "1h")
    state = tmp_path / "agent"
    out = agent_enroll(c, token, state)
    agent_id = (state / "agent_id").read_text().strip()
    assert f"agent {agent_id} enrolled" in out.stdout
    credential = (state / "credential").read_text().strip()
    assert credential and credential not in out.stdout + out.stderr
    assert (mode(state), mode(state / "credential"), mode(state / "enrollment.json")) == (0o700, 0o600, 0o600)
    record = json.loads((state / "enrollment.json").read_text())
    assert (record["server"], record["agent_id"], record["ca_file"]) == (c.url, agent_id, None)
    assert credential not in (state / "enrollment.json").read_text()

    fg("agent", "run", "--once", "--state-dir", str(state))  # no --server, no token
    wait_reconciled(c.url)
    (computer,) = computers(c)
    assert {i.kind: i.value for i in computer.identifiers}.get("agent_id") == agent_id

    listed = fg("token", "list", "--store", c.store_url).stdout
    row = next(line for line in listed.splitlines() if line.startswith(f"agent-{agent_id}"))
    assert f"agent/{agent_id}" in row and "valid" in row and credential not in listed
    enroll_list = fg("enroll-token", "list", "--store", c.store_url).stdout
    assert any(line.startswith("rollout") and "1/1" in line and "used up" in line for line in enroll_list.splitlines())

    # the credential writes its own source only
    assert post_report(c.url, credential, report_for("0c7d9a52-8f1e-4f0a-b6a2-2d8f6c0e9b02")) == 403

    # single use: a second agent cannot enroll with the same token, and stores nothing
    other = tmp_path / "other-agent"
    refused = agent_enroll(c, token, other, check=False)
    assert refused.returncode == 1 and "no uses left" in refused.stderr, refused.stderr
    assert not (other / "credential").exists()

    # re-enrolling rotates: the old credential is refused from now on
    agent_enroll(c, create_enrollment_token(c, "rotate"), state)
    rotated = (state / "credential").read_text().strip()
    assert rotated != credential
    assert post_report(c.url, credential, report_for(agent_id)) == 401
    assert post_report(c.url, rotated, report_for(agent_id)) == 202


def test_https_with_a_pinned_ca(https_collector, pki: ThrowawayPKI, tmp_path):
    c = https_collector
    assert c.url.startswith("https://127.0.0.1:")
    token = create_enrollment_token(c, "tls")

    for wrong in (("--ca-file", str(pki.other_ca_cert)), ()):  # another CA; the system store
        state = tmp_path / f"wrong-{len(wrong)}"
        failed = agent_enroll(c, token, state, *wrong, check=False)
        assert failed.returncode == 1
        assert "certificate verify failed" in failed.stderr and "--ca-file" in failed.stderr, failed.stderr
        assert not (state / "credential").exists()

    state = tmp_path / "agent"
    agent_enroll(c, token, state, "--ca-file", str(pki.ca_cert))
    assert json.loads((state / "enrollment.json").read_text())["ca_file"] == str(pki.ca_cert)
    fg("agent", "run", "--once", "--state-dir", str(state))  # server, CA and credential from the state folder
    wait_reconciled(c.url, pki.ca_cert)
    assert len(computers(c)) == 1


def test_plain_http_to_a_remote_collector_is_refused(tmp_path):
    state = tmp_path / "agent"
    out = fg("agent", "enroll", "--server", "http://192.0.2.10:8420", "--state-dir", str(state), check=False,
             FLEETGRAPH_AGENT_ENROLL_TOKEN="t" * 43)
    assert out.returncode == 1
    assert "refusing to enroll over plain http://" in out.stderr and "--insecure" in out.stderr
    assert not (state / "credential").exists()
    missing = fg("agent", "enroll", "--server", "https://127.0.0.1:9", "--state-dir", str(state), check=False)
    assert missing.returncode == 2 and "FLEETGRAPH_AGENT_ENROLL_TOKEN" in missing.stderr


def test_enroll_token_commands(tmp_path):
    from cmdb.backends import sqlite_url

    store = sqlite_url(tmp_path / "cmdb.sqlite")
    token = fg("enroll-token", "create", "--name", "batch", "--uses", "3", "--store", store)
    assert token.stdout.count("\n") == 1 and "shown only this once" in token.stderr
    dup = fg("enroll-token", "create", "--name", "batch", "--store", store, check=False)
    assert dup.returncode == 1 and dup.stdout == "" and "batch" in dup.stderr
    for bad in (("--ttl", "soon"), ("--ttl", "0h"), ("--uses", "0"), ("--expires", "2001-01-01T00:00:00Z")):
        out = fg("enroll-token", "create", "--name", "x", *bad, "--store", store, check=False)
        assert out.returncode == 2 and out.stdout == "", (bad, out.stderr)
    both = fg("enroll-token", "create", "--name", "x", "--ttl", "1h", "--expires", "2099-01-01T00:00:00Z",
              "--store", store, check=False)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    listed = fg("enroll-token", "list", "--store", store).stdout
    assert "batch" in listed and "0/3" in listed and token.stdout.strip() not in listed
    assert "revoked enrollment token 'batch'" in fg("enroll-token", "revoke", "--name", "batch", "--store", store).stderr
    again = fg("enroll-token", "revoke", "--name", "batch", "--store", store, check=False)
    assert again.returncode == 1 and "no live enrollment token" in again.stderr


def test_agents_racing_for_a_single_use_token(http_collector, tmp_path):
    c = http_collector
    token = create_enrollment_token(c, "race")
    procs = [subprocess.Popen([sys.executable, "-m", "cmdb.cli", "agent", "enroll", "--server", c.url,
                               "--state-dir", str(tmp_path / f"agent-{n}")], cwd=REPO,
                              env=_env(FLEETGRAPH_AGENT_ENROLL_TOKEN=token),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    results = [(p.wait(60), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in results) == [0, 1, 1, 1], results
    assert sum((tmp_path / f"agent-{n}" / "credential").exists() for n in range(4)) == 1
    store = open_store(c.store_url)
    try:
        assert len(store.list_tokens()) == 1 and store.list_enrollment_tokens()[0].uses == 1
    finally:
        store.close()
