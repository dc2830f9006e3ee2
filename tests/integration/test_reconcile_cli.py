"""`fleetgraph reconcile --dry-run REPORT`: the change set a report would cause, and nothing written."""

from __future__ import annotations

import gzip
import json

import pytest

from cmdb.backends import open_store, sqlite_url
from cmdb.report import encode_report
from reconcile.engine import reconcile_report
from tests.unit.reconcile.reports import again, machine_report

from .lab import fleetgraph


@pytest.fixture
def store_with_machine(tmp_path):
    """A CMDB holding one machine, and the same machine's next report with one package upgraded."""
    url = sqlite_url(tmp_path / "cmdb.sqlite")
    first = machine_report(packages={"bash": "5.2.15-2", "openssl": "3.0.11-1"})
    store = open_store(url)
    reconcile_report(store, first)
    store.close()
    upgraded = again(machine_report(packages={"bash": "5.2.15-2", "openssl": "3.0.13-1"}))
    return url, encode_report(upgraded)


def snapshot(url: str) -> tuple:
    store = open_store(url)
    try:
        ids = [c.ci_id for c in store.list_cis(state=None, limit=10_000)]
        return store.count_cis(None), sum(len(store.history(i, limit=10_000)) for i in ids), store.count_reports()
    finally:
        store.close()


def test_dry_run_prints_the_change_and_writes_nothing(store_with_machine, tmp_path):
    url, body = store_with_machine
    report = tmp_path / "report.json"
    report.write_bytes(body)
    before = snapshot(url)
    out = fleetgraph("reconcile", str(report), "--dry-run", "--store", url).stdout
    assert "attributes set (1)" in out and '"3.0.11-1" -> "3.0.13-1"' in out
    counts = json.loads(fleetgraph("reconcile", str(report), "--dry-run", "--json", "--store", url).stdout)
    assert counts["attribute_changes"] == 1 and counts["created"] == 0
    assert snapshot(url) == before


def test_a_gzipped_report_is_read_too(store_with_machine, tmp_path):
    url, body = store_with_machine
    report = tmp_path / "report.json.gz"
    report.write_bytes(gzip.compress(body))
    assert "attributes set (1)" in fleetgraph("reconcile", str(report), "--dry-run", "--store", url).stdout


@pytest.mark.parametrize("content,words", [
    (b"{not json", "body is not valid JSON"),
    (b'{"schema": "fleetgraph.report/9"}', "$.schema"),
    (b"\x1f\x8b\x08garbage", "not valid gzip"),
])
def test_a_bad_report_is_refused_with_the_reason(store_with_machine, tmp_path, content, words):
    url, _ = store_with_machine
    report = tmp_path / "bad.json"
    report.write_bytes(content)
    out = fleetgraph("reconcile", str(report), "--dry-run", "--store", url, check=False)
    assert out.returncode in (1, 2) and words in out.stderr, out.stderr


def test_no_store_no_file_no_flag(tmp_path, store_with_machine):
    _, body = store_with_machine
    report = tmp_path / "report.json"
    report.write_bytes(body)
    missing = tmp_path / "nope.sqlite"
    out = fleetgraph("reconcile", str(report), "--dry-run", "--store", sqlite_url(missing), check=False)
    assert out.returncode == 2 and "no CMDB at" in out.stderr and not missing.exists()
    out = fleetgraph("reconcile", str(tmp_path / "absent.json"), "--dry-run", "--store", sqlite_url(missing),
                     check=False)
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = fleetgraph("reconcile", str(report), check=False)
    assert out.returncode == 2 and "--dry-run" in out.stderr
