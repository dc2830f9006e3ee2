"""The SSH scanner against real OpenSSH servers on loopback (tests/integration/discovery/sshd_lab.py):
the Linux host's inventory equals the agent's for the same machine; host keys are verified;
credentials are tried in order; refused ports, silent listeners and wrong secrets each give a
clear reason, with no secret in any log line or error.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import paramiko
import pytest

from agent.builder import build_report as agent_report
from agent.collectors import COLLECTORS
from agent.collectors.hardware import HardwareCollector
from agent.collectors.hardware.filesystems import FilesystemCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.os import OsCollector
from agent.collectors.software.dpkg import DpkgCollector
from agent.context import CommandError, CommandFailed, CommandNotFound, CommandTimeout, LocalContext
from cmdb.report import check_report, decode_report, encode_report
from discovery.base import source_id
from discovery.ssh import HostKeyChanged, HostKeyPolicy, SshCredential, UnknownHostKey, scan_ssh_host
from discovery.ssh.client import PARAMIKO_LOG, connect
from discovery.ssh.context import SshContext
from tests.integration.discovery.sshd_lab import PASSWORD, USER, SilentListener, running_lab

SCANNER = "scanner-lab"
PASSPHRASE_NOT_USED = "never-shown-passphrase-42"

# Parts of the agent's report an SSH scan of the same machine cannot reproduce, and why.
CANNOT_MATCH = {
    "identifiers": {("Computer", "agent_id"): "no agent runs on a scanned host: the SSH source carries no agent id"},
    "attributes": {
        ("FileSystem", "used_bytes"): "a measurement, read at another moment (tests write files meanwhile)",
        ("FileSystem", "free_bytes"): "a measurement, read at another moment",
    },
    "classes": {"Service": "listening services come from psutil, which describes the machine the process "
                           "runs on: the services and connections collectors are not_applicable over SSH"},
    "collectors": {"services": "psutil: local only", "connections": "psutil: local only"},
}


@pytest.fixture(scope="module")
def ssh_lab():
    with running_lab() as lab:
        yield lab


@pytest.fixture
def secrets_logged(caplog):
    """Every log record at DEBUG, paramiko's own included, for the no-secret checks."""
    caplog.set_level(logging.DEBUG)
    paramiko_log = logging.getLogger(PARAMIKO_LOG)
    level = paramiko_log.level
    paramiko_log.setLevel(logging.DEBUG)
    yield caplog
    paramiko_log.setLevel(level)


def _no_secret(*texts: str, lab=None) -> None:
    secrets = [PASSWORD, PASSPHRASE_NOT_USED, "wrong-password-xyz"]
    if lab is not None:  # a line of the private key's body
        secrets += [line for line in lab.client_key.read_text().splitlines() if len(line) > 40][:2]
    for text in texts:
        for secret in secrets:
            assert secret not in (text or ""), "a secret reached a log line or an error"


def _key(lab) -> SshCredential:
    return SshCredential(USER, key_file=lab.client_key, name="lab-key")


def _policy(lab, tmp_path, *hosts, tofu=False) -> HostKeyPolicy:
    path = lab.known_hosts(tmp_path / "known_hosts", *hosts)
    return HostKeyPolicy(path, trust_on_first_use=tofu)


def _projection(report, skip_collectors=()):
    """{(class, ref): (identifiers, attributes)} minus what CANNOT_MATCH lists."""
    out = {}
    for item in report.items:
        if item.class_ in CANNOT_MATCH["classes"]:
            continue
        ids = {k: v for k, v in item.identifiers.items() if (item.class_, k) not in CANNOT_MATCH["identifiers"]}
        attrs = {k: v for k, v in item.attributes.items() if (item.class_, k) not in CANNOT_MATCH["attributes"]}
        out[(item.class_, item.ref)] = (ids, attrs)
    return out


def _relations(report):
    skipped = {i.ref for i in report.items if i.class_ in CANNOT_MATCH["classes"]}
    return {(r.from_, r.type, r.to) for r in report.relations if r.from_ not in skipped and r.to not in skipped}


# -- the Linux host: one parser, two transports -----------------------------------------------

async def test_the_ssh_inventory_of_this_machine_equals_the_agents(ssh_lab, tmp_path, secrets_logged):
    scan = await scan_ssh_host("127.0.0.12", 2222, [_key(ssh_lab)], SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.linux), 10)
    local = agent_report(LocalContext("local-agent"))
    assert scan.error is None, scan.error
    report = scan.report
    check_report(decode_report(encode_report(report)))  # what the collector's ingest will accept
    assert report.source.kind == "ssh"
    assert report.source.id == source_id(SCANNER, "ssh", "127.0.0.12", 2222) == "scanner-lab/ssh/127.0.0.12:2222"

    ours, theirs = _projection(report), _projection(local)
    assert sorted(set(theirs) - set(ours)) == [] and sorted(set(ours) - set(theirs)) == []
    different = {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]}
    assert different == {}
    assert _relations(report) == _relations(local)
    counts = {cls: sum(1 for c, _ in ours if c == cls) for cls in ("SoftwareInstall", "Interface", "FileSystem",
                                                                    "OperatingSystem", "IPAddress")}
    assert counts["SoftwareInstall"] > 100 and counts["Interface"] >= 1 and counts["OperatingSystem"] == 1
    computer = next(i for i in report.items if i.class_ == "Computer")
    assert "agent_id" not in computer.identifiers

    for name, status in local.collectors.items():
        if name in CANNOT_MATCH["collectors"]:
            assert report.collectors[name].status == "not_applicable", name
        else:
            assert report.collectors[name].status == status.status, (name, report.collectors[name])
    assert scan.summary["type"] == "computer" and scan.summary["os"]
    _no_secret(secrets_logged.text, lab=ssh_lab)


async def test_password_auth_without_pam_and_without_sftp(ssh_lab, tmp_path, secrets_logged):
    """127.0.0.13 has no SFTP subsystem: files are read through commands, with the same result."""
    collectors = [OsCollector(), NetworkCollector(), FilesystemCollector(), DpkgCollector(), HardwareCollector()]
    creds = [SshCredential(USER, password=PASSWORD, name="lab-password")]
    scan = await scan_ssh_host("127.0.0.13", 2222, creds, SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.password_host),
                               10, collectors=collectors)
    assert scan.error is None, scan.error
    local = agent_report(LocalContext("local-agent"), collectors)
    assert _projection(scan.report) == _projection(local)
    assert all(s.status == "ok" for s in scan.report.collectors.values()), scan.report.collectors
    assert "no SFTP subsystem" in secrets_logged.text
    _no_secret(secrets_logged.text, scan.error or "")


# -- host keys --------------------------------------------------------------------------------

async def test_an_unknown_host_key_is_refused_with_how_to_trust_it(ssh_lab, tmp_path, secrets_logged):
    policy = _policy(ssh_lab, tmp_path)  # an empty known_hosts
    scan = await scan_ssh_host("127.0.0.12", 2222, [_key(ssh_lab)], SCANNER, policy, 5)
    assert scan.report is None
    assert "unknown host key for [127.0.0.12]:2222" in scan.error
    assert "ssh-keyscan -p 2222 127.0.0.12" in scan.error and "trust on first use" in scan.error
    assert "SHA256:" in scan.error
    assert policy.known_hosts.read_text() == ""  # nothing recorded without the option
    with pytest.raises(UnknownHostKey):
        connect("127.0.0.12", 2222, [_key(ssh_lab)], policy, 5)


async def test_a_changed_host_key_is_refused_as_bad_host_key(ssh_lab, tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.12]:2222 {ssh_lab.spare_host_key}\n")
    for tofu in (False, True):  # trust on first use never overrides a recorded key
        policy = HostKeyPolicy(path, trust_on_first_use=tofu)
        scan = await scan_ssh_host("127.0.0.12", 2222, [_key(ssh_lab)], SCANNER, policy, 5)
        assert scan.report is None and "host key for [127.0.0.12]:2222 has CHANGED" in scan.error
        assert "ssh-keygen -R" in scan.error
        with pytest.raises(paramiko.BadHostKeyException) as err:
            connect("127.0.0.12", 2222, [_key(ssh_lab)], policy, 5)
        assert isinstance(err.value, HostKeyChanged)
    assert path.read_text() == f"[127.0.0.12]:2222 {ssh_lab.spare_host_key}\n"


async def test_trust_on_first_use_records_the_key_and_logs_it(ssh_lab, tmp_path, secrets_logged):
    path = tmp_path / "managed" / "known_hosts"  # neither the file nor its folder exists yet
    policy = HostKeyPolicy(path, trust_on_first_use=True)
    scans = await asyncio.gather(*(scan_ssh_host(addr, 2222, [_key(ssh_lab)], SCANNER, policy, 10,
                                                 collectors=[OsCollector()])
                                   for addr in ("127.0.0.12", "127.0.0.14")))
    assert [s.error for s in scans] == [None, None]
    lines = sorted(path.read_text().splitlines())
    assert lines == sorted([ssh_lab.linux.known_hosts_line.strip(), ssh_lab.device.known_hosts_line.strip()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    warnings = [r.getMessage() for r in secrets_logged.records if r.levelno == logging.WARNING]
    assert any("trust on first use: recorded host key ssh-ed25519 SHA256:" in w and "[127.0.0.12]:2222" in w
               for w in warnings), warnings
    # Recorded: a later scan without the option connects, and nothing is added twice.
    again = await scan_ssh_host("127.0.0.12", 2222, [_key(ssh_lab)], SCANNER, HostKeyPolicy(path), 10,
                                collectors=[OsCollector()])
    assert again.error is None and sorted(path.read_text().splitlines()) == lines


# -- credentials, in order --------------------------------------------------------------------

async def test_a_wrong_key_and_a_wrong_password_fail_and_the_next_credential_is_tried(ssh_lab, tmp_path,
                                                                                    secrets_logged):
    creds = [SshCredential(USER, key_file=ssh_lab.other_key, name="stale-key"),
             SshCredential(USER, password="wrong-password-xyz", name="old-password"),
             SshCredential("nobody-here", password=PASSWORD, name="wrong-user"),
             SshCredential(USER, password=PASSWORD, name="good-password")]
    scan = await scan_ssh_host("127.0.0.13", 2222, creds, SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.password_host),
                               10, collectors=[OsCollector()])
    assert scan.error is None, scan.error
    messages = secrets_logged.text
    for name in ("stale-key", "old-password", "wrong-user"):
        assert f"credential '{name}'" in messages and "authentication failed; trying the next" in messages
    assert "logged in with credential 'good-password'" in messages
    _no_secret(messages, lab=ssh_lab)


async def test_when_every_credential_fails_the_error_names_them_and_no_secret(ssh_lab, tmp_path, secrets_logged):
    creds = [SshCredential(USER, key_file=ssh_lab.other_key, name="stale-key"),
             SshCredential(USER, password="wrong-password-xyz", name="old-password")]
    for address, sshd in (("127.0.0.12", ssh_lab.linux), ("127.0.0.13", ssh_lab.password_host)):
        scan = await scan_ssh_host(address, 2222, creds, SCANNER, _policy(ssh_lab, tmp_path, sshd), 5)
        assert scan.report is None
        assert scan.error.startswith(f"ssh {address}:2222: authentication failed with every credential")
        assert "'stale-key'" in scan.error and "'old-password'" in scan.error
        _no_secret(scan.error, secrets_logged.text, lab=ssh_lab)


async def test_an_encrypted_key_without_its_passphrase_says_so_and_the_next_is_tried(ssh_lab, tmp_path):
    encrypted = tmp_path / "encrypted_key"
    encrypted.write_bytes(ssh_lab.client_key.read_bytes())
    encrypted.chmod(0o600)
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", PASSPHRASE_NOT_USED, "-f", str(encrypted)], check=True,
                   capture_output=True)
    creds = [SshCredential(USER, key_file=encrypted, name="no-passphrase"),
             SshCredential(USER, key_file=encrypted, key_passphrase="not-it", name="bad-passphrase")]
    scan = await scan_ssh_host("127.0.0.12", 2222, creds, SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.linux), 5)
    assert "the key file is encrypted: set key_passphrase" in scan.error
    assert "wrong key_passphrase?" in scan.error
    _no_secret(scan.error)
    good = SshCredential(USER, key_file=encrypted, key_passphrase=PASSPHRASE_NOT_USED, name="right-passphrase")
    scan = await scan_ssh_host("127.0.0.12", 2222, [*creds, good], SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.linux),
                               10, collectors=[OsCollector()])
    assert scan.error is None, scan.error


# -- the network: refused, silent ------------------------------------------------------------

async def test_a_refused_port_and_a_silent_listener_each_give_a_clear_reason(ssh_lab, tmp_path, secrets_logged):
    silent = SilentListener("127.0.0.13", 2299)
    try:
        policy = _policy(ssh_lab, tmp_path)
        refused, quiet = await asyncio.gather(
            scan_ssh_host("127.0.0.12", 2299, [_key(ssh_lab)], SCANNER, policy, 5),
            scan_ssh_host("127.0.0.13", 2299, [_key(ssh_lab)], SCANNER, policy, 1.0))
    finally:
        silent.close()
    assert refused.report is None and quiet.report is None
    assert refused.error == ("ssh 127.0.0.12:2299: connection refused: no SSH server listens on that port "
                             "(wrong port, or sshd is down)")
    assert quiet.error.startswith("ssh 127.0.0.13:2299: the port accepted the connection but sent no SSH banner "
                                  "within 1s")
    _no_secret(secrets_logged.text, lab=ssh_lab)
    ours = [r for r in secrets_logged.records if not r.name.startswith(PARAMIKO_LOG)]
    assert not any(r.exc_info for r in ours)  # one line per failure, no stack (paramiko's own is opt-in)


async def test_bad_targets_are_errors_not_crashes(ssh_lab, tmp_path):
    policy = _policy(ssh_lab, tmp_path)
    for address, port, timeout in (("127.0.0.12\n; rm -rf /", 2222, 5), ("127.0.0.12", 0, 5),
                                   ("127.0.0.12", 70000, 5), ("127.0.0.12", 2222, -1)):
        scan = await scan_ssh_host(address, port, [_key(ssh_lab)], SCANNER, policy, timeout)
        assert scan.report is None and scan.error.startswith("ssh ") and "invalid" in scan.error


# -- the network device (recorded IOS outputs played back behind a real sshd) ------------------

async def test_a_network_device_is_detected_and_inventoried(ssh_lab, tmp_path):
    scan = await scan_ssh_host("127.0.0.14", 2222, [_key(ssh_lab)], SCANNER, _policy(ssh_lab, tmp_path, ssh_lab.device), 10)
    assert scan.error is None, scan.error
    report = scan.report
    check_report(decode_report(encode_report(report)))
    device = next(i for i in report.items if i.class_ == "NetworkDevice" and not i.reference)
    assert device.identifiers == {"serial": "FOC11111111", "chassis_mac": "f8:7b:20:11:aa:80",
                                  "sysname_ip": "city-building-4-sw@127.0.0.14"}
    assert device.attributes["vendor"] == "Cisco" and device.attributes["model"] == "WS-C3850-48U"
    assert device.attributes["os_name"] == "IOS XE" and device.attributes["os_version"] == "03.06.05E"
    assert device.attributes["stack_serials"] == ["FOC11111111", "FCW22222222", "FCW33333333", "FCW44444444"]
    statuses = {k: v.status for k, v in report.collectors.items()}
    assert statuses == {"netdev.version": "ok", "netdev.inventory": "ok", "netdev.interfaces": "ok",
                        "netdev.lldp": "ok", "netdev.cdp": "not_applicable"}
    assert report.collectors["netdev.cdp"].reason == "CDP is not enabled on the device"
    modules = [i for i in report.items if i.class_ == "HardwareModule"]
    assert {m.identifiers["slot"] for m in modules} == {"3640 chassis", "One port Fastethernet TX"}
    neighbours = [r for r in report.relations if r.type == "CONNECTED_TO"]
    assert {(r.from_, r.to) for r in neighbours} == {("if:GigabitEthernet1/1/2", "neighbor:172.16.1.1"),
                                                     ("if:GigabitEthernet1/0/1", "neighbor:10.65.1.11")}
    references = [i for i in report.items if i.reference]
    assert references and all(i.ref.startswith("neighbor:") for i in references)
    assert scan.summary["type"] == "network_device" and scan.summary["serial"] == "FOC11111111"


# -- SshContext: the agent's Context contract, over both file transports ----------------------

@pytest.fixture(params=["sftp", "commands"])
def remote_ctx(request, ssh_lab, tmp_path):
    if request.param == "sftp":
        session = connect("127.0.0.12", 2222, [_key(ssh_lab)], _policy(ssh_lab, tmp_path, ssh_lab.linux), 5)
    else:
        session = connect("127.0.0.13", 2222, [SshCredential(USER, password=PASSWORD)],
                          _policy(ssh_lab, tmp_path, ssh_lab.password_host), 5)
    with session:
        yield SshContext(session, "ctx-test")


def test_remote_commands_map_to_the_agents_command_errors(remote_ctx, tmp_path):
    assert remote_ctx.local is False
    assert remote_ctx.run(["printf", "%s|%s", "a b", "$HOME;`id`"]) == "a b|$HOME;`id`"  # argv, not shell text
    assert remote_ctx.run(["sh", "-c", "echo $LC_ALL $LANG $PATH"]).split() == [
        "C", "C", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    with pytest.raises(CommandNotFound):
        remote_ctx.run(["no-such-command-fleetgraph"])
    assert not remote_ctx.has_command("no-such-command-fleetgraph") and remote_ctx.has_command("uname")
    with pytest.raises(CommandFailed) as failed:
        remote_ctx.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert failed.value.returncode == 3 and failed.value.stderr == "oops"
    with pytest.raises(CommandTimeout):
        remote_ctx.run(["sleep", "5"], timeout=0.5)
    started = remote_ctx.start(["uname", "-s"])
    assert remote_ctx.run(["echo", "meanwhile"]) == "meanwhile\n"
    assert started.output() == "Linux\n"
    marker = tmp_path / "injected"
    remote_ctx.run(["echo", f"; touch {marker}"])
    assert not marker.exists()


def test_remote_output_is_bounded(remote_ctx):
    remote_ctx.max_output_bytes = 1000
    with pytest.raises(CommandError) as err:
        remote_ctx.run(["head", "-c", "5000", "/dev/zero"])
    assert "larger than 1000 bytes" in err.value.reason


def test_remote_files_read_like_local_ones(remote_ctx):
    local = LocalContext("x")
    for path in ("/etc/os-release", "/proc/cpuinfo", "/proc/mounts"):
        assert remote_ctx.read_file(path) is not None
    assert remote_ctx.read_file("/etc/os-release") == local.read_file("/etc/os-release")
    assert remote_ctx.read_bytes("/etc/os-release", 10) == local.read_bytes("/etc/os-release", 10)
    assert remote_ctx.read_file("/no/such/file") is None
    assert remote_ctx.read_file("/etc/shadow") is None  # unreadable for the unprivileged user
    assert remote_ctx.read_file("relative/path") is None
    assert remote_ctx.list_dir("/etc/apt") == local.list_dir("/etc/apt")
    assert remote_ctx.list_dir("/no/such/dir") is None and remote_ctx.list_dir("/etc/os-release") is None
    assert remote_ctx.read_link("/etc/localtime") == local.read_link("/etc/localtime")
    assert remote_ctx.read_link("/etc/os-release") == local.read_link("/etc/os-release")
    assert remote_ctx.read_link("/no/such/link") is None


def test_every_agent_collector_knows_what_a_remote_context_can_do(remote_ctx):
    """The psutil collectors stand down remotely; every other collector's probe is answerable."""
    enabled = {c.name: c.is_enabled(remote_ctx) for c in COLLECTORS}
    assert enabled["services"] is False and enabled["connections"] is False
    assert enabled["os"] and enabled["network"] and enabled["filesystems"] and enabled["software.dpkg"]


def test_the_lab_user_is_unprivileged_and_the_machine_accounts_untouched(remote_ctx):
    assert remote_ctx.run(["id", "-u"]).strip() != "0"
    assert USER not in Path("/etc/passwd").read_text()
