"""Delta reports and the durable outbox against a real collector process on 127.0.0.1.

The agent runs either as the real CLI (`fleetgraph agent run`, this machine's own inventory) or
in-process through agent.runner with a fake machine (tests.unit.agent.fake_inventory), when a test
needs to change one section of the inventory on purpose.
"""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest

from agent.runner import flush_outbox, run_once
from cmdb.backends import open_store
from tests.integration.agent.conftest import agent_cli, stored_reports
from tests.integration.lab import Collector
from tests.unit.agent.conftest import RecordedContext
from tests.unit.agent.fake_inventory import FakeMachine, fake_collectors

NO_CHANGE_LIMIT = 2048  # bytes on the wire (gzip) of a run where nothing changed




def dead_url() -> str:
    """A loopback URL nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def history_rows(store_url: str) -> int:
    store = open_store(store_url)
    try:
        return sum(len(store.history(ci.ci_id, limit=100_000))
                   for ci in store.list_cis(state=None, limit=100_000))
    finally:
        store.close()


def computer_attribute(store_url: str, name: str):
    store = open_store(store_url)
    try:
        (computer,) = store.list_cis("Computer")
        return computer.attributes[name].value
    finally:
        store.close()


def fake_run(url: str, token: str, state_dir: Path, machine: FakeMachine, **kwargs):
    return run_once(url, token, state_dir, collectors=fake_collectors(machine), context=RecordedContext(),
                    timeout=5, **kwargs)


def test_no_change_run_sends_a_tiny_delta_and_leaves_the_cmdb_unchanged(collector, tmp_path):
    """This machine, through the real CLI. Listening services change whenever another process
    opens a port (other tests run collectors here), so a run may find the services section
    changed: then the next run, relative to that acknowledged state, is the no-change run."""
    token = collector.token("agent", "delta-agent")
    first = agent_cli(collector.url, token, tmp_path / "agent", "--output", str(tmp_path / "full.json"))
    assert first.stdout.startswith("full report")
    full_id = json.loads((tmp_path / "full.json").read_bytes())["report_id"]
    for _attempt in range(5):
        collector.wait_reconciled()
        rows = history_rows(collector.store_url)
        out = agent_cli(collector.url, token, tmp_path / "agent", "--output", str(tmp_path / "delta.json"))
        assert out.stdout.startswith("delta report") and "HTTP 202" in out.stdout
        raw = (tmp_path / "delta.json").read_bytes()
        delta = json.loads(raw)
        assert delta["mode"] == "delta" and delta["base_report_id"] == full_id
        changed = {n for n, s in delta["collectors"].items() if s["status"] == "ok" and not s.get("unchanged")}
        if not changed:
            break
        assert changed <= {"services", "connections"}, changed  # only what other processes move
    else:
        pytest.fail("five runs in a row found the services on this machine changed")
    wire = len(gzip.compress(raw, 6))
    print(f"no-change delta: {len(raw)} bytes raw, {wire} bytes gzip "
          f"(full: {len(gzip.compress((tmp_path / 'full.json').read_bytes(), 6))} bytes gzip)")
    assert wire <= NO_CHANGE_LIMIT and f"{wire} bytes" in out.stdout
    assert [i["ref"] for i in delta["items"]] == ["computer"] and "agent_id" in delta["items"][0]["identifiers"]
    collector.wait_reconciled()
    assert history_rows(collector.store_url) == rows
    store = open_store(collector.store_url)
    try:
        assert store.count_reports("failed") == 0 and store.count_reports("pending") == 0
    finally:
        store.close()
    state = tmp_path / "agent"
    assert all((p.stat().st_mode & 0o077) == 0 for p in [state, *state.rglob("*")])


def test_no_change_delta_of_a_fixed_machine(collector, tmp_path):
    token = collector.token("agent", "fixed-agent")
    machine = FakeMachine()
    fake_run(collector.url, token, tmp_path, machine)
    collector.wait_reconciled()
    rows = history_rows(collector.store_url)
    result = fake_run(collector.url, token, tmp_path, machine)
    assert result.mode == "delta" and result.http_status == 202 and result.bytes_sent <= NO_CHANGE_LIMIT
    assert result.counts == {"Computer": 1}
    collector.wait_reconciled()
    assert history_rows(collector.store_url) == rows


def test_a_changed_section_is_sent_alone_and_lands_in_the_cmdb(collector, tmp_path):
    token = collector.token("agent", "fake-agent")
    machine = FakeMachine()
    assert fake_run(collector.url, token, tmp_path, machine).mode == "full"
    machine.packages["curl"] = "8.6"
    result = fake_run(collector.url, token, tmp_path, machine, output=tmp_path / "sent-delta.json")
    assert result.mode == "delta" and result.http_status == 202
    delta = json.loads((tmp_path / "sent-delta.json").read_bytes())
    assert {name for name, s in delta["collectors"].items() if not s.get("unchanged")} == {"fake.software"}
    assert {i["class"] for i in delta["items"]} == {"Computer", "SoftwareInstall"}
    collector.wait_reconciled()
    store = open_store(collector.store_url)
    try:
        (computer,) = store.list_cis("Computer")
        installs = {store.get_ci(r.from_ci).attributes["name"].value: store.get_ci(r.from_ci)
                    for r in store.relationships(computer.ci_id, direction="in", type="INSTALLED_ON")}
        assert installs["curl"].attributes["version"].value == "8.6"
        assert installs["bash"].attributes["version"].value == "5.2"
        changes = store.history(installs["curl"].ci_id, name="version")
        assert [(h.before, h.after) for h in changes] == [(None, "8.5"), ("8.5", "8.6")]
        assert changes[-1].provenance.report_id == result.report_id
        assert store.count_cis()["SoftwareInstall"] == 3 and store.count_cis()["Computer"] == 1
    finally:
        store.close()


def test_collector_down_for_50_runs_then_every_report_arrives_once_in_order(tmp_path):
    """Deltas are not superseded, so all 50 queued reports are delivered: 50 distinct report ids
    in the store, the full one first, and the CMDB ends at the last run's value."""
    collector = Collector(tmp_path / "cmdb.sqlite")
    token = collector.token("agent", "offline-agent")
    machine = FakeMachine()
    down = dead_url()
    for run in range(50):
        machine.memory_mb = 1024 + run
        result = fake_run(down, token, tmp_path / "agent", machine, full_every=1000)
        assert result.http_status is None and "unreachable" in result.flush.error
        assert result.mode == ("full" if run == 0 else "delta")
    queued = [p.name.split("-", 1)[1].removesuffix(".report")
              for p in sorted((tmp_path / "agent" / "outbox").glob("*.report"))]
    assert len(queued) == 50

    collector.start()
    try:
        done = flush_outbox(collector.url, token, tmp_path / "agent", respect_backoff=False)
        assert [report_id for report_id, _ in done.delivered] == queued and done.pending == 0
        assert {status for _, status in done.delivered} == {202}
        stored = stored_reports(collector.store_url)
        assert list(stored) == queued  # each exactly once, in the order they were made
        assert stored[queued[0]].get("mode", "full") == "full"
        assert {r["base_report_id"] for r in list(stored.values())[1:]} == {queued[0]}
        collector.wait_reconciled()
        assert computer_attribute(collector.store_url, "memory_mb") == 1024 + 49
        # Delivered again (an ack lost): 200 duplicate, nothing stored twice.
        again = fake_run(collector.url, token, tmp_path / "agent", machine, full_every=1000)
        assert again.mode == "delta" and again.http_status == 202
        assert len(stored_reports(collector.store_url)) == 51
    finally:
        assert collector.stop() == 0


def test_a_full_report_supersedes_what_is_queued(tmp_path):
    collector = Collector(tmp_path / "cmdb.sqlite")
    token = collector.token("agent", "supersede-agent")
    machine = FakeMachine()
    down = dead_url()
    ids = [fake_run(down, token, tmp_path, machine, full_every=3).report_id for _ in range(4)]
    # full, delta, delta, then the 3rd run since the full: a full, which supersedes all three.
    assert [p.name.split("-", 1)[1] for p in (tmp_path / "outbox").glob("*.report")] == [f"{ids[3]}.report"]
    collector.start()
    try:
        flush_outbox(collector.url, token, tmp_path, respect_backoff=False)
        assert list(stored_reports(collector.store_url)) == [ids[3]]
    finally:
        assert collector.stop() == 0


def test_base_unknown_is_refused_and_the_agent_sends_a_full_report_at_once(collector, tmp_path):
    token = collector.token("agent", "first-agent")
    agent_cli(collector.url, token, tmp_path / "agent")
    assert agent_cli(collector.url, token, tmp_path / "agent").stdout.startswith("delta report")

    # Another collector, an empty store: it has never seen the base of the agent's deltas.
    other = Collector(tmp_path / "other.sqlite").start()
    try:
        token2 = other.token("agent", "moved-agent")
        out = agent_cli(other.url, token2, tmp_path / "agent")
        assert out.stdout.startswith("full report") and "HTTP 202" in out.stdout, out.stderr
        assert "does not know base report" in out.stderr
        stored = list(stored_reports(other.store_url).values())
        assert len(stored) == 1 and stored[0].get("mode", "full") == "full"
        assert agent_cli(other.url, token2, tmp_path / "agent").stdout.startswith("delta report")
    finally:
        assert other.stop() == 0


def _post(url: str, token: str, report: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url + "/api/v1/reports", data=json.dumps(report).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_collector_refuses_a_delta_on_a_base_it_cannot_use(collector):
    token = collector.token("agent", "raw-agent")
    full = {"schema": "fleetgraph.report/1", "report_id": "full-a-0001", "collected_at": "2024-05-01T12:00:00Z",
            "source": {"kind": "agent", "id": "agent-a"},
            "items": [{"class": "Computer", "ref": "computer", "identifiers": {"agent_id": "agent-a"}}]}
    assert _post(collector.url, token, full)[0] == 202
    delta = full | {"report_id": "delta-a-0002", "mode": "delta", "base_report_id": "full-a-0001"}
    cases = [
        (delta | {"base_report_id": "never-sent-0001"}, "is not in this collector's store"),
        (delta | {"report_id": "delta-b-0002", "source": {"kind": "agent", "id": "agent-b"}}, "another source"),
    ]
    for report, words in cases:
        status, answer = _post(collector.url, token, report)
        assert (status, answer["code"]) == (422, "base_unknown") and words in answer["error"], answer
    assert _post(collector.url, token, delta)[0] == 202
    status, answer = _post(collector.url, token, delta | {"report_id": "delta-a-0003", "base_report_id": "delta-a-0002"})
    assert (status, answer["code"]) == (422, "base_unknown") and "not a full report" in answer["error"]
    assert set(stored_reports(collector.store_url)) == {"full-a-0001", "delta-a-0002"}


def test_outbox_over_its_cap_drops_the_oldest_says_so_and_recovers_with_a_full(tmp_path):
    collector = Collector(tmp_path / "cmdb.sqlite")
    token = collector.token("agent", "capped-agent")
    down = dead_url()
    state = tmp_path / "agent"
    first = agent_cli(down, token, state, "--outbox-max-bytes", "4000", check=False)
    assert first.returncode == 1 and "kept in the outbox" in first.stderr
    assert "alone" in first.stderr  # a full report of this machine is larger than 4000 bytes
    second = agent_cli(down, token, state, "--outbox-max-bytes", "4000", check=False)
    assert "dropping queued report" in second.stderr and "over agent.outbox_max_bytes" in second.stderr
    assert json.loads((state / "delta.json").read_text())["force_full"]
    (entry,) = (state / "outbox").glob("*.report")  # only the delta is left
    collector.start()
    try:
        out = agent_cli(collector.url, token, state, "--outbox-max-bytes", "4000", check=False)
        # The lone delta is refused (its base never arrived), and this run's report is full.
        assert out.stdout.startswith("full report") and "HTTP 202" in out.stdout, out.stderr
        stored = list(stored_reports(collector.store_url).values())
        assert [r.get("mode", "full") for r in stored] == ["full"]
        assert not list((state / "outbox").glob("*.report"))
    finally:
        assert collector.stop() == 0
