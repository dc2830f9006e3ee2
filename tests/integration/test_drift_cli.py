"""`fleetgraph drift list`: drift events read from the store by the real CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cmdb.backends import open_store, sqlite_url
from reconcile.engine import reconcile_report
from tests.unit.reconcile.reports import machine_report

from .lab import fleetgraph

PACKAGES = {"bash": "5.2.15-2", "openssl": "3.0.11-1"}


@pytest.fixture
def drifted(tmp_path):
    """One machine: first report, then telnet installed (1 event), then openssl upgraded (1 event)."""
    url = sqlite_url(tmp_path / "cmdb.sqlite")
    store = open_store(url)
    first = machine_report(packages=PACKAGES)
    t = first.collected_at
    reconcile_report(store, first)
    reconcile_report(store, machine_report(packages={**PACKAGES, "telnet": "0.17"}, collected_at=t + timedelta(hours=1)))
    reconcile_report(store, machine_report(packages={**PACKAGES, "telnet": "0.17", "openssl": "3.0.13-1"},
                                           collected_at=t + timedelta(hours=2)))
    [host] = store.list_cis("Computer")
    store.close()
    return url, host.ci_id, t


def test_drift_list_json_and_filters(drifted):
    url, host, t = drifted
    events = json.loads(fleetgraph("drift", "list", "--json", "--store", url).stdout)
    assert [(e["class"], e["attribute"], e["before"], e["after"] if not isinstance(e["after"], dict)
             else e["after"]["name"]) for e in events] == [
        ("Computer", "software", None, "telnet"), ("SoftwareInstall", "version", "3.0.11-1", "3.0.13-1")]
    assert events[0]["ci_id"] == host and events[1]["related_ci"] == host
    assert events[0]["source"] == "agent:agent-01"

    for_host = json.loads(fleetgraph("drift", "list", "--ci", host, "--json", "--store", url).stdout)
    assert len(for_host) == 2
    since = (t + timedelta(hours=2)).isoformat()
    later = json.loads(fleetgraph("drift", "list", "--since", since, "--json", "--store", url).stdout)
    assert [e["attribute"] for e in later] == ["version"]

    text = fleetgraph("drift", "list", "--store", url)
    assert "software" in text.stdout and "- -> telnet 0.17" in text.stdout
    assert "3.0.11-1 -> 3.0.13-1" in text.stdout and "(2 drift events)" in text.stderr


def test_drift_list_errors(drifted, tmp_path):
    url, _, _ = drifted
    bad = fleetgraph("drift", "list", "--since", "yesterday", "--store", url, check=False)
    assert bad.returncode == 2 and "--since" in bad.stderr
    unknown = fleetgraph("drift", "list", "--ci", "abcdef", "--store", url, check=False)
    assert unknown.returncode == 1 and "no CI with id" in unknown.stderr
    missing = fleetgraph("drift", "list", "--store", sqlite_url(tmp_path / "none.sqlite"), check=False)
    assert missing.returncode == 2 and "no CMDB at" in missing.stderr
