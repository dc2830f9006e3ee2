"""The managed known_hosts: lookups, refusals, trust on first use (the real handshakes are in
tests/integration/discovery/test_ssh_lab.py). Keys are real ones made by ssh-keygen."""

from __future__ import annotations

import logging
import subprocess
import threading

import paramiko
import pytest

from discovery.ssh.errors import HostKeyChanged, SshScanError, UnknownHostKey
from discovery.ssh.hostkeys import (
    HostKeyPolicy,
    fingerprint,
    host_key_name,
    load_known_hosts,
    offered_algorithms,
    verify_host_key,
)


def _key(tmp_path, name, kind="ed25519") -> paramiko.PKey:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return paramiko.PKey.from_path(path)


@pytest.fixture
def keys(tmp_path):
    return _key(tmp_path, "a"), _key(tmp_path, "b"), _key(tmp_path, "c", "rsa")


def test_names_and_fingerprints_are_openssh_spellings(tmp_path, keys):
    assert host_key_name("10.0.0.1", 22) == "10.0.0.1" and host_key_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "a.pub")], capture_output=True, text=True, check=True)
    assert fingerprint(keys[0]) == out.stdout.split()[1]


def test_a_known_key_passes_an_unknown_host_is_refused_a_changed_key_is_bad(tmp_path, keys):
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.12]:2222 {keys[0].get_name()} {keys[0].get_base64()}\n")
    policy = HostKeyPolicy(path)
    verify_host_key(policy, "127.0.0.12", 2222, keys[0])
    with pytest.raises(UnknownHostKey, match=r"unknown host key for \[127.0.0.13\]:2222 \(ssh-ed25519 SHA256:"):
        verify_host_key(policy, "127.0.0.13", 2222, keys[0])
    with pytest.raises(HostKeyChanged) as err:
        verify_host_key(policy, "127.0.0.12", 2222, keys[1])
    assert isinstance(err.value, paramiko.BadHostKeyException) and err.value.kind == "hostkey"
    assert err.value.expected_key == keys[0] and err.value.key == keys[1]
    # another key type for a known host is a changed key too, even with trust on first use
    with pytest.raises(HostKeyChanged):
        verify_host_key(HostKeyPolicy(path, trust_on_first_use=True), "127.0.0.12", 2222, keys[2])
    assert path.read_text().count("\n") == 1


def test_a_known_host_is_asked_for_the_key_type_we_recorded(tmp_path, keys):
    path = tmp_path / "known_hosts"
    path.write_text(f"[h]:22 ssh-rsa {keys[2].get_base64()}\nother ssh-ed25519 {keys[0].get_base64()}\n")
    known = load_known_hosts(path)
    supported = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256")
    assert offered_algorithms(known, "[h]:22", supported) == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert offered_algorithms(known, "other", supported) == ["ssh-ed25519"]
    assert offered_algorithms(known, "unknown", supported) is None


def test_trust_on_first_use_appends_once_owner_only_and_logs(tmp_path, keys, caplog):
    path = tmp_path / "dir" / "known_hosts"
    policy = HostKeyPolicy(path, trust_on_first_use=True)
    with caplog.at_level(logging.WARNING, logger="discovery.ssh.hostkeys"):
        threads = [threading.Thread(target=verify_host_key, args=(policy, f"127.0.0.{20 + i % 4}", 22, keys[0]))
                   for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = path.read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == [f"127.0.0.{20 + i}" for i in range(4)]
    assert (path.stat().st_mode & 0o777) == 0o600
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 4 and all(f"recorded host key ssh-ed25519 {fingerprint(keys[0])}" in m for m in logged)
    verify_host_key(HostKeyPolicy(path), "127.0.0.20", 22, keys[0])  # recorded: accepted without the option


def test_hostile_or_broken_known_hosts_files(tmp_path, keys):
    path = tmp_path / "known_hosts"
    path.write_text("garbage\nh ssh-ed25519 !!!notbase64!!!\n# comment\n\n"
                    f"h ssh-ed25519 {keys[0].get_base64()}\n" + "\x00\xff junk\n")
    verify_host_key(HostKeyPolicy(path), "h", 22, keys[0])  # unreadable lines skipped, as OpenSSH does
    clean = tmp_path / "hashed"
    clean.write_text(f"h ssh-ed25519 {keys[0].get_base64()}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(clean)], capture_output=True, check=True)
    assert clean.read_text().startswith("|1|")
    verify_host_key(HostKeyPolicy(clean), "h", 22, keys[0])  # hashed host names (HashKnownHosts) work
    with pytest.raises(SshScanError, match="is not a regular file"):
        verify_host_key(HostKeyPolicy(tmp_path), "h", 22, keys[0])
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(17 * 2**20)
    with pytest.raises(SshScanError, match="is it the right file"):
        verify_host_key(HostKeyPolicy(big), "h", 22, keys[0])
