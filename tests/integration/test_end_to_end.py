"""The spine end to end, with real processes: collector on 127.0.0.1 (random port), the agent run
once on this machine against it, and the machine's own dpkg and ip as the oracle."""

from __future__ import annotations

import json
import subprocess

import pytest

from cmdb.backends import open_store
from cmdb.junk import clean_mac

from .lab import Collector, fleetgraph


def dpkg_count() -> int:
    out = subprocess.run(["dpkg-query", "-W"], capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def ip_interfaces() -> dict[str, tuple[str | None, set[str]]]:
    """{ifname: (mac or None, {addresses})} from `ip -j addr`."""
    doc = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
    return {
        link["ifname"]: (clean_mac(link.get("address")), {a["local"] for a in link.get("addr_info", [])})
        for link in doc
    }


def history_rows(store, ci_ids) -> int:
    return sum(len(store.history(ci_id, limit=100_000)) for ci_id in ci_ids)


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path / "cmdb.sqlite").start()
    yield c
    assert c.stop() == 0, "".join(c.log)


def run_agent(collector: Collector, token: str, state_dir) -> str:
    out = fleetgraph("agent", "run", "--once", "--server", collector.url, "--state-dir", str(state_dir),
                     env={"FLEETGRAPH_AGENT_TOKEN": token})
    return out.stdout


def test_agent_run_once_builds_this_machine_in_the_cmdb(collector, tmp_path):
    agent_token = collector.token("agent", "e2e-agent")
    reader = collector.token("reader", "e2e-reader")
    run_agent(collector, agent_token, tmp_path / "agent")
    collector.wait_reconciled()

    status, computers = collector.get("/api/v1/cis?class=Computer", reader)
    assert status == 200
    assert len(computers["items"]) == 1, computers
    computer_id = computers["items"][0]["id"]

    store = open_store(collector.store_url)
    try:
        installs = store.relationships(computer_id, direction="in", type="INSTALLED_ON")
        assert len(installs) == dpkg_count()

        interfaces = {}
        for rel in store.relationships(computer_id, direction="out", type="HAS_INTERFACE"):
            iface = store.get_ci(rel.to_ci)
            addrs = {store.get_ci(r.to_ci).attributes["address"].value
                     for r in store.relationships(iface.ci_id, direction="out", type="HAS_IP")}
            mac = iface.attributes.get("mac")
            interfaces[iface.attributes["name"].value] = (clean_mac(mac.value) if mac else None, addrs)
        assert interfaces == ip_interfaces()

        # A second identical run: no new CI, no history row; only last-seen stamps move.
        all_ids = [ci.ci_id for ci in store.list_cis(state=None, limit=100_000)]
        counts, rows = store.count_cis(), history_rows(store, all_ids)
        last_seen = store.get_ci(computer_id).last_seen
    finally:
        store.close()

    run_agent(collector, agent_token, tmp_path / "agent")
    collector.wait_reconciled()
    store = open_store(collector.store_url)
    try:
        assert store.count_cis() == counts
        assert history_rows(store, all_ids) == rows
        assert store.get_ci(computer_id).last_seen > last_seen
        assert store.count_reports("reconciled") == 2 and store.count_reports("failed") == 0
    finally:
        store.close()

    # The CLI reads the same store.
    listed = fleetgraph("ci", "list", "--class", "Computer", "--store", collector.store_url).stdout
    assert computer_id in listed
    shown = json.loads(fleetgraph("ci", "show", computer_id[:26], "--json", "--store", collector.store_url).stdout)
    assert shown["id"] == computer_id and shown["attributes"]["hostname"]["source"].startswith("agent:")
    hist = json.loads(fleetgraph("ci", "history", computer_id, "--json", "--store", collector.store_url).stdout)
    assert hist[0]["kind"] == "ci.create"


def test_agent_without_token_or_with_wrong_token_is_refused(collector, tmp_path):
    bad = fleetgraph("agent", "run", "--once", "--server", collector.url, "--state-dir", str(tmp_path),
                     env={"FLEETGRAPH_AGENT_TOKEN": "not-a-real-token"}, check=False)
    assert bad.returncode == 1 and "401" in bad.stderr
    none = fleetgraph("agent", "run", "--once", "--server", collector.url, "--state-dir", str(tmp_path),
                      env={"FLEETGRAPH_AGENT_TOKEN": ""}, check=False)
    assert none.returncode == 2 and "token" in none.stderr


def test_cli_rejects_bad_ids_and_times(collector):
    for args, words in [(("ci", "show", "zzz"), "not a CI id"), (("ci", "show", "abc123"), "no CI"),
                        (("ci", "history", "'; drop table ci; --"), "not a CI id")]:
        out = fleetgraph(*args, "--store", collector.store_url, check=False)
        assert out.returncode != 0 and words in out.stderr, out.stderr
    out = fleetgraph("ci", "list", "--attr", "novalue", "--store", collector.store_url, check=False)
    assert out.returncode == 2 and "NAME=VALUE" in out.stderr
