"""Host key verification against a managed known_hosts file (OpenSSH format).

By default a host whose key is not in the file is refused (paramiko's RejectPolicy, with an
error that says how to trust it), and a host whose key differs from the recorded one is refused
as a possible man in the middle (BadHostKeyException). Trust on first use is an explicit option:
the key of a host the file does not know is recorded in the file and logged at WARNING with its
fingerprint; a host the file knows under another key type is never trusted that way (a changed
key is a changed key, whatever its type).

The file is shared by concurrent scans (threads, and possibly processes): additions take a lock
(`fcntl.flock` on the file), re-read it, and append one line; it is created owner-only.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from discovery.ssh.errors import HostKeyChanged, SshScanError, UnknownHostKey

log = logging.getLogger(__name__)

MAX_KNOWN_HOSTS_BYTES = 16 * 2**20
# The host key algorithms a known key type may be offered under (an RSA key signs with SHA-2).
_ALGORITHMS_OF_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}
_file_lock = threading.Lock()


@dataclass(frozen=True)
class HostKeyPolicy:
    """Where the scanner's known host keys live, and whether an unknown host may be trusted on
    first use (its key recorded in `known_hosts`, and logged)."""

    known_hosts: Path
    trust_on_first_use: bool = False


def host_key_name(address: str, port: int) -> str:
    """The name OpenSSH files a host's key under: `addr` on port 22, `[addr]:port` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """`SHA256:<base64>` as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    """The keys of `path` (empty when it does not exist). Lines paramiko cannot read are skipped
    (as OpenSSH skips them); a file that is not a regular file or is huge is an error."""
    keys = paramiko.HostKeys()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return keys
    except OSError as exc:
        raise SshScanError("config", f"known_hosts file {path} cannot be read: {exc.strerror}") from None
    if not os.path.isfile(path):
        raise SshScanError("config", f"known_hosts file {path} is not a regular file")
    if st.st_size > MAX_KNOWN_HOSTS_BYTES:
        raise SshScanError("config", f"known_hosts file {path} is {st.st_size} bytes (limit "
                                     f"{MAX_KNOWN_HOSTS_BYTES}): is it the right file?")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SshScanError("config", f"known_hosts file {path} cannot be read: {exc.strerror}") from None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = HostKeyEntry.from_line(line)
        except Exception:  # bad base64, unknown key type: OpenSSH ignores such a line too
            continue
        if entry is not None:
            keys._entries.append(entry)
    return keys


def offered_algorithms(keys: paramiko.HostKeys, name: str, supported: tuple[str, ...]) -> list[str] | None:
    """The host key algorithms to ask a known host for, so that it presents the key type we
    recorded (as OpenSSH does); None for a host we know nothing about (any algorithm)."""
    known = keys.lookup(name)
    if not known:
        return None
    wanted: list[str] = []
    for key_type in known.keys():
        wanted.extend(_ALGORITHMS_OF_TYPE.get(key_type, (key_type,)))
    return [alg for alg in supported if alg in wanted] or None


def verify_host_key(policy: HostKeyPolicy, address: str, port: int, key: paramiko.PKey) -> None:
    """Accept `key` for the host, record it (trust on first use), or raise UnknownHostKey /
    HostKeyChanged with what to do."""
    name = host_key_name(address, port)
    keys = load_known_hosts(policy.known_hosts)
    known = keys.lookup(name)
    if known:
        _match_known(policy, name, known, key)
        return
    if not policy.trust_on_first_use:
        raise UnknownHostKey(
            f"unknown host key for {name} ({key.get_name()} {fingerprint(key)}): refusing to connect. "
            f"Check the fingerprint with the host's owner, then add it to {policy.known_hosts} "
            f"(ssh-keyscan -p {port} {address} >> {policy.known_hosts}), or scan once with "
            "trust on first use enabled to record it")
    _record_first_use(policy, name, key)


def _match_known(policy: HostKeyPolicy, name: str, known: paramiko.hostkeys.SubDict, key: paramiko.PKey) -> None:
    recorded = known.get(key.get_name())
    if recorded is not None and recorded == key:
        return
    before = ", ".join(f"{t} {fingerprint(k)}" for t, k in known.items())
    raise HostKeyChanged(
        name, f"host key for {name} has CHANGED: it now presents {key.get_name()} {fingerprint(key)}, "
              f"{policy.known_hosts} records {before}. This may be a man-in-the-middle attack, or the host "
              f"was reinstalled: verify with its owner, then remove the old line (ssh-keygen -R '{name}' "
              f"-f {policy.known_hosts}) and scan again", recorded or next(iter(known.values())), key)


def _record_first_use(policy: HostKeyPolicy, name: str, key: paramiko.PKey) -> None:
    path = policy.known_hosts
    with _file_lock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise SshScanError("config", f"cannot record the host key of {name} in {path}: {exc.strerror}") from None
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                known = load_known_hosts(path).lookup(name)  # another scan may have added it meanwhile
                if known:
                    _match_known(policy, name, known, key)
                    return
                fh.write(HostKeyEntry([name], key).to_line())
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    log.warning("ssh %s: trust on first use: recorded host key %s %s in %s", name, key.get_name(),
                fingerprint(key), path)
