"""The SSH lab: real OpenSSH sshd servers on loopback, children of the test session, in a temp
dir, stopped by PID (LAB.md "SSH host").

- 127.0.0.12:2222  key auth, SFTP on: the Linux host (this very machine)
- 127.0.0.13:2222  password auth without PAM, no SFTP subsystem (file reads go through commands)
- 127.0.0.14:2222  a network device: recorded real Cisco IOS outputs (corpora/ssh/ntc) played back
                   by a ForceCommand script; no switch can run here, so this is the stand-in for one

The scanning user `fgscan` is unprivileged (/bin/sh, no sudo). It exists only inside each
sshd's private mount namespace: `unshare --mount` binds a copy of /etc/passwd and /etc/shadow
with that one user added over the real ones for the sshd process alone, so password auth works
with `UsePAM no` and the machine's account files are never touched. Needs root (unshare, bind
mounts, sshd privilege separation): the fixture skips otherwise, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "fgscan"
PASSWORD = "Lab-pass-7Qx!secret"  # a test secret: the tests check it never shows in logs or errors
_UID = 64123
NTC = Path("/work/shared/corpora/ssh/ntc")
if not NTC.is_dir():
    NTC = Path(__file__).resolve().parents[3].parent / "shared" / "corpora" / "ssh" / "ntc"

# What the played-back switch answers: `show <x>` -> a recorded output of a real IOS device.
DEVICE_OUTPUTS = {
    "show_version": "cisco_ios/show_version/cisco_ios_show_version1.raw",
    "show_inventory": "cisco_ios/show_inventory/cisco_ios_show_inventory.raw",
    "show_interfaces": "cisco_ios/show_interfaces/cisco_ios_show_interfaces.raw",
    "show_lldp_neighbors_detail": "cisco_ios/show_lldp_neighbors_detail/cisco_ios_show_lldp_neighbors_detail_01.raw",
}
_DEVICE_SCRIPT = """#!/bin/sh
# A recorded Cisco IOS switch: answers `show ...` with recorded real outputs, anything else as IOS does.
cmd=$(printf '%s' "$SSH_ORIGINAL_COMMAND" | tr ' ' '_')
case "$cmd" in
  ''|*[!a-z_]*) printf "\\n%% Invalid input detected at '^' marker.\\n\\n"; exit 0;;
  show_cdp_neighbors_detail) printf "%% CDP is not enabled\\n"; exit 0;;
esac
if [ -f "{outputs}/$cmd" ]; then cat "{outputs}/$cmd"; else printf "\\n%% Invalid input detected at '^' marker.\\n\\n"; fi
"""


@dataclass
class Sshd:
    address: str
    port: int
    dir: Path
    proc: subprocess.Popen
    host_public_key: str  # "ssh-ed25519 AAAA..."

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_public_key}\n"

    def log(self) -> str:
        path = self.dir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class SshLab:
    linux: Sshd
    password_host: Sshd
    device: Sshd
    client_key: Path  # authorized for USER on every host
    other_key: Path  # a valid key nobody authorized
    spare_host_key: str  # a host public key no lab server uses (a "changed key")
    dir: Path

    def known_hosts(self, path: Path, *hosts: Sshd) -> Path:
        path.write_text("".join(h.known_hosts_line for h in hosts))
        path.chmod(0o600)
        return path


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    path.chmod(0o600)
    return path.with_suffix(".pub").read_text().strip()


def _sha512_crypt(password: str) -> str:
    """A shadow(5) SHA-512 hash: openssl's when installed, else Python's crypt (3.11 has it)."""
    if shutil.which("openssl"):
        return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
                              text=True, check=True).stdout.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def _account_files(tmp: Path) -> tuple[Path, Path]:
    passwd, shadow = tmp / "passwd", tmp / "shadow"
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    digest = _sha512_crypt(PASSWORD)
    passwd.write_text(Path("/etc/passwd").read_text() + f"{USER}:x:{_UID}:{_UID}:fleetgraph scan lab:{home}:/bin/sh\n")
    # Only the lab user: sshd reads the shadow entry of the user logging in, nothing else, and a
    # copy of the machine's password hashes has no business in a temp dir.
    shadow.write_text(f"{USER}:{digest}:19000:0:99999:7:::\n")
    shadow.chmod(0o600)
    return passwd, shadow


def _start(tmp: Path, address: str, port: int, accounts: tuple[Path, Path], authorized: Path, *,
           password: bool, sftp: bool, force_command: Path | None = None) -> Sshd:
    tmp.mkdir(parents=True, exist_ok=True)
    public = _keygen(tmp / "ssh_host_ed25519_key")
    config = tmp / "sshd_config"
    lines = [f"ListenAddress {address}:{port}", f"HostKey {tmp / 'ssh_host_ed25519_key'}",
             f"PidFile {tmp / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}/%u", "StrictModes no",
             "PubkeyAuthentication yes", f"PasswordAuthentication {'yes' if password else 'no'}",
             "KbdInteractiveAuthentication no", "UsePAM no", "MaxAuthTries 6", "LogLevel VERBOSE"]
    if sftp:
        lines.append("Subsystem sftp internal-sftp")
    if force_command:
        lines.append(f"ForceCommand {force_command}")
    config.write_text("\n".join(lines) + "\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && exec /usr/sbin/sshd -D -f "$3" -E "$4"'
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                             str(accounts[0]), str(accounts[1]), str(config), str(tmp / "sshd.log")])
    sshd = Sshd(address, port, tmp, proc, public)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited {proc.returncode}: {sshd.log()}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return sshd
        except OSError:
            time.sleep(0.02)
    sshd.stop()
    raise RuntimeError(f"sshd on {address}:{port} did not listen within 10 s: {sshd.log()}")


def start_lab(tmp: Path) -> SshLab:
    if os.geteuid() != 0:
        pytest.skip("the SSH lab needs root (unshare --mount, bind mounts, sshd privilege separation)")
    for tool in ("/usr/sbin/sshd", "ssh-keygen", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make sysdeps installs openssh-server)")
    accounts = _account_files(tmp)
    authorized = tmp / "authorized_keys"
    authorized.mkdir()
    client_key = tmp / "client_key"
    (authorized / USER).write_text(_keygen(client_key) + "\n")
    other_key = tmp / "other_key"
    _keygen(other_key)
    spare = _keygen(tmp / "spare_host_key")

    outputs = tmp / "device_outputs"
    outputs.mkdir()
    for command, recorded in DEVICE_OUTPUTS.items():
        shutil.copyfile(NTC / recorded, outputs / command)
    outputs.chmod(0o755)
    device_script = tmp / "recorded_ios_switch.sh"
    device_script.write_text(_DEVICE_SCRIPT.replace("{outputs}", str(outputs)))
    device_script.chmod(0o755)
    tmp.chmod(0o755)  # the unprivileged user reads the device outputs and runs the script

    started: list[Sshd] = []
    try:
        for args, kwargs in ((("127.0.0.12",), {"password": False, "sftp": True}),
                             (("127.0.0.13",), {"password": True, "sftp": False}),
                             (("127.0.0.14",), {"password": False, "sftp": False, "force_command": device_script})):
            started.append(_start(tmp / args[0], args[0], 2222, accounts, authorized, **kwargs))
    except BaseException:
        for sshd in started:
            sshd.stop()
        raise
    return SshLab(*started, client_key=client_key, other_key=other_key, spare_host_key=spare, dir=tmp)


class SilentListener:
    """A TCP port that accepts connections and never says a word (the kernel completes the
    handshake from the backlog): what a hung service or a tarpit looks like to a scanner."""

    def __init__(self, address: str = "127.0.0.13", port: int = 2299):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.address, self.port = address, port

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def running_lab() -> Iterator[SshLab]:
    """The three servers, started; stopped by PID and their folder removed on exit."""
    # Not pytest's tmp_path: its folders are root-only (0700), and the unprivileged lab user must
    # reach its authorized_keys, its home and the device's recorded outputs.
    tmp = Path(tempfile.mkdtemp(prefix="fleetgraph-sshlab-"))
    try:
        lab = start_lab(tmp)
        try:
            yield lab
        finally:
            for sshd in (lab.linux, lab.password_host, lab.device):
                sshd.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
