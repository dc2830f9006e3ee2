"""`fleetgraph scan` end to end, as an operator runs it: real snmpd and sshd on loopback, a real
collector process, the scan's reports through ingest, reconciled into CIs. Plus what the command
refuses before it scans anything."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from cmdb.backends import open_store
from tests.integration.discovery import snmp_lab
from tests.integration.discovery.sshd_lab import USER, running_lab
from tests.integration.lab import Collector, fleetgraph

SNMP_PORT = 16171  # not the SNMP lab module's port: its snmpd may still be running


@pytest.fixture(scope="module")
def lab():
    root = Path(tempfile.mkdtemp(prefix="fleetgraph-scanlab-"))
    snmpd = snmp_lab.start_snmpd(root, port=SNMP_PORT)
    try:
        with running_lab() as ssh:
            yield snmpd, ssh
    finally:
        snmpd.stop()


def _credentials(folder: Path, client_key: Path, mode: int = 0o600) -> Path:
    path = folder / "scan-credentials.toml"
    path.write_text(f'[[snmp]]\nversion = "2c"\ncommunity = "wrong-first"\n\n'
                    f'[[snmp]]\nversion = "2c"\ncommunity = "public"\n\n'
                    f'[[ssh]]\nusername = "{USER}"\nkey_file = "{client_key}"\n')
    path.chmod(mode)
    return path


def test_a_scan_reports_through_ingest_and_becomes_cis(lab, tmp_path):
    _snmpd, ssh = lab
    collector = Collector(tmp_path / "cmdb.sqlite").start()
    try:
        token_file = tmp_path / "token"
        token_file.write_text(collector.token("agent", "scanner-test"))
        state = tmp_path / "state"
        state.mkdir()
        ssh.known_hosts(state / "known_hosts", ssh.linux)
        creds = _credentials(tmp_path, ssh.client_key)
        out = fleetgraph("scan", "--targets", "127.0.0.11,127.0.0.12", "--protocols", "snmp,ssh",
                         "--snmp-port", str(SNMP_PORT), "--ssh-port", "2222", "--timeout", "3",
                         "--credentials", str(creds), "--server", collector.url, "--token-file", str(token_file),
                         "--state-dir", str(state), "--scanner-id", "lab-scanner", timeout=300)
        text = out.stderr
        assert "127.0.0.11 snmp: ok" in text and "127.0.0.12 ssh: ok" in text, text
        assert "127.0.0.11 ssh: failed" in text  # nothing listens on 127.0.0.11:2222: refused, said so
        assert "2 hosts, 2 found" in text, text
        assert "public" not in text and "wrong-first" not in text  # no secret echoed
        collector.wait_reconciled(timeout=120)
        status, cis = collector.get("/api/v1/cis?class=Computer", collector.token("reader", "r"))
        assert status == 200 and cis["count"] >= 1
        store = open_store(collector.store_url)
        try:
            assert store.count_reports("reconciled") == 2 and store.count_reports("pending") == 0
            packages = store.count_cis().get("SoftwareInstall", 0)
            assert packages > 100  # this machine's dpkg list, over SNMP and SSH
        finally:
            store.close()
    finally:
        collector.stop()


def test_scan_to_a_folder_writes_valid_reports(lab, tmp_path):
    _snmpd, _ssh = lab
    creds = _credentials(tmp_path, tmp_path / "unused-key")
    creds.write_text('[[snmp]]\nversion = "2c"\ncommunity = "public"\n')
    out_dir = tmp_path / "reports"
    fleetgraph("scan", "--targets", "127.0.0.11", "--protocols", "snmp", "--snmp-port", str(SNMP_PORT),
               "--credentials", str(creds), "--output", str(out_dir), "--state-dir", str(tmp_path), timeout=120)
    [report] = [json.loads(p.read_text()) for p in out_dir.glob("*.json")]
    assert report["source"]["kind"] == "snmp" and report["source"]["id"].endswith("/snmp/127.0.0.11:16171")
    assert oct(os.stat(next(out_dir.glob("*.json"))).st_mode & 0o777) == "0o600"


def test_nmap_first_then_ssh_only_where_its_port_is_open(lab, tmp_path):
    _snmpd, ssh = lab
    state = tmp_path / "state"
    state.mkdir()
    ssh.known_hosts(state / "known_hosts", ssh.linux)
    creds = _credentials(tmp_path, ssh.client_key)
    out = fleetgraph("scan", "--targets", "127.0.0.11-12", "--protocols", "nmap,ssh", "--ports", "2222",
                     "--no-service-version", "--ssh-port", "2222", "--credentials", str(creds),
                     "--output", str(tmp_path / "reports"), "--state-dir", str(state), "--scanner-id", "lab",
                     timeout=300)
    assert "127.0.0.12 nmap: ok" in out.stderr and "127.0.0.12 ssh: ok" in out.stderr, out.stderr
    assert "ssh: skipped: nmap saw tcp/2222 closed" in out.stderr, out.stderr
    kinds = sorted(json.loads(p.read_text())["source"]["kind"] for p in (tmp_path / "reports").glob("*.json"))
    assert kinds == ["nmap", "ssh"]


@pytest.mark.parametrize("args,words", [
    (("--targets", "127.0.0.11;rm -rf /"), "scan targets"),
    (("--targets=-iL/etc/passwd",), "scan targets"),
    (("--targets", "127.0.0.11", "--allowed", "127.0.0.20/30"), "outside the allowed"),
    (("--targets", "127.0.0.11", "--protocols", "telnet"), "telnet"),
    (("--targets", "127.0.0.11", "--concurrency", "0"), "concurrency"),
    (("--targets", "127.0.0.0/24", "--exclude", "127.0.0.0/24"), "excluded"),
    (("--targets", "127.0.0.0/8"), "limit is 65536"),
    (("--profile", "nope"), "no scan profile 'nope'"),
    ((), "nothing to scan"),
    (("--targets", "127.0.0.11"), "--server"),
])
def test_bad_scan_input_is_refused_before_anything_is_scanned(tmp_path, args, words):
    out = fleetgraph("scan", *args, "--state-dir", str(tmp_path), check=False, timeout=60)
    assert out.returncode == 2 and words in out.stderr, out.stderr


def test_a_credentials_file_others_can_read_is_refused(tmp_path):
    creds = _credentials(tmp_path, tmp_path / "k", mode=0o644)
    out = fleetgraph("scan", "--targets", "127.0.0.11", "--credentials", str(creds), "--output", str(tmp_path / "o"),
                     check=False, timeout=60)
    assert out.returncode == 2 and "chmod 600" in out.stderr and "public" not in out.stderr


def test_a_malformed_credentials_file_names_the_entry_not_the_secret(tmp_path):
    creds = tmp_path / "c.toml"
    creds.write_text('[[snmp]]\nversion = "3"\nuser = "mon"\nauth_protocol = "SHA"\nauth_key = "short"\n')
    creds.chmod(0o600)
    out = fleetgraph("scan", "--targets", "127.0.0.11", "--credentials", str(creds), "--output", str(tmp_path / "o"),
                     check=False, timeout=60)
    assert out.returncode == 2 and "auth_key" in out.stderr and "short" not in out.stderr.replace("shorter", "")


def test_a_scanner_enrolls_once_then_reports_with_its_bound_credential(lab, tmp_path):
    collector = Collector(tmp_path / "cmdb.sqlite").start()
    try:
        enroll_token = fleetgraph("enroll-token", "create", "--name", "scanners", "--store",
                                  collector.store_url).stdout.strip().splitlines()[-1]
        creds = tmp_path / "c.toml"
        creds.write_text('[[snmp]]\nversion = "2c"\ncommunity = "public"\n')
        creds.chmod(0o600)
        state = tmp_path / "state"
        common = ("--targets", "127.0.0.11", "--protocols", "snmp", "--snmp-port", str(SNMP_PORT), "--credentials",
                  str(creds), "--server", collector.url, "--state-dir", str(state), "--scanner-id", "dc1-scanner")
        out = fleetgraph("scan", *common, env={"FLEETGRAPH_SCAN_ENROLL_TOKEN": enroll_token}, timeout=120)
        assert "1 found" in out.stderr and enroll_token not in out.stderr + out.stdout
        assert oct((state / "credential").stat().st_mode & 0o777) == "0o600"
        # the stored credential; the token left in the environment is not spent again
        again = fleetgraph("scan", *common, env={"FLEETGRAPH_SCAN_ENROLL_TOKEN": enroll_token}, timeout=120)
        assert "not delivered" not in again.stderr, again.stderr
        collector.wait_reconciled()
        store = open_store(collector.store_url)
        try:
            assert store.count_reports("reconciled") == 2
        finally:
            store.close()
        (state / "credential").unlink()  # enroll anew: the token was for one use
        used = fleetgraph("scan", *common, "--enroll-token", enroll_token, check=False, timeout=60)
        assert used.returncode == 2 and "enrollment failed" in used.stderr  # one use only
    finally:
        collector.stop()
