"""Connecting to a host: TCP, the SSH handshake, host key verification, authentication with
the credential sets in order, and running commands on the authenticated connection.

Everything here is blocking paramiko; `discovery.ssh.scan_ssh_host` runs it in a bounded thread
pool. Each failure becomes an `SshScanError` whose reason names the cause and what to do:
connection refused, no answer (timeout), not an SSH server, unknown or changed host key,
authentication failed with every credential. Secrets never reach a log line or an error.

No agent forwarding, no ~/.ssh keys of the scanning machine (`look_for_keys` would offer keys
nobody configured for scanning), no pty (output is parsed, not displayed), no sudo.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from discovery.ssh.credentials import SshCredential
from discovery.ssh.errors import AuthenticationFailed, SshScanError
from discovery.ssh.hostkeys import (
    HostKeyPolicy,
    host_key_name,
    load_known_hosts,
    offered_algorithms,
    verify_host_key,
)

log = logging.getLogger(__name__)
# paramiko logs handshake failures at ERROR with a traceback; the scanner reports them itself, in
# one line. Its own messages go to this logger (quiet unless an operator lowers its level).
PARAMIKO_LOG = "discovery.ssh.paramiko"
if logging.getLogger(PARAMIKO_LOG).level == logging.NOTSET:
    logging.getLogger(PARAMIKO_LOG).setLevel(logging.CRITICAL)

MAX_STDERR_BYTES = 64 * 1024
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: bytes  # the first MAX_STDERR_BYTES
    exit_status: int | None  # None: the server sent none (network devices often don't)


class RemoteCommandTimeout(Exception):
    pass


class RemoteOutputTooLarge(Exception):
    pass


class RemoteCommand:
    """A command started on its own channel; `wait()` collects its output. Channels of one
    connection run side by side, so a command may run while the caller runs others."""

    def __init__(self, channel: paramiko.Channel, timeout: float, max_bytes: int):
        self._channel = channel
        self._fd = channel.fileno()  # a pipe paramiko sets when stdout or stderr data arrives
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._max_bytes = max_bytes

    def wait(self) -> CommandResult:
        chan, out, err = self._channel, bytearray(), bytearray()
        try:
            while True:
                while chan.recv_ready():
                    out += chan.recv(_READ_CHUNK)
                    if len(out) > self._max_bytes:
                        raise RemoteOutputTooLarge(f"output larger than {self._max_bytes} bytes: not read")
                while chan.recv_stderr_ready():
                    chunk = chan.recv_stderr(_READ_CHUNK)
                    if len(err) < MAX_STDERR_BYTES:
                        err += chunk[:MAX_STDERR_BYTES - len(err)]
                if (chan.eof_received or chan.closed) and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise RemoteCommandTimeout(f"no result after {self._timeout:g}s")
                select.select([self._fd], [], [], min(remaining, 1.0))
            # The exit status follows the output; a server that sends none (a switch) is not waited on long.
            chan.status_event.wait(max(0.0, min(self._deadline - time.monotonic(), 2.0)))
            status = chan.exit_status if chan.status_event.is_set() and chan.exit_status != -1 else None
            return CommandResult(bytes(out), bytes(err), status)
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Close the channel (sshd then hangs up on the command); idempotent."""
        try:
            self._channel.close()
        except Exception:  # a dead transport: nothing left to close
            pass


class SshSession:
    """An authenticated SSH connection to one host."""

    def __init__(self, transport: paramiko.Transport, address: str, port: int, credential: SshCredential,
                 timeout: float):
        self.transport = transport
        self.address, self.port = address, port
        self.credential = credential
        self.timeout = timeout
        self._sftp: paramiko.SFTPClient | None | bool = False  # False: not tried yet

    @property
    def server_version(self) -> str:
        """The server's identification string (`SSH-2.0-OpenSSH_9.2p1 Debian-2`, `SSH-2.0-Cisco-1.25`)."""
        return self.transport.remote_version or ""

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self, command: str, timeout: float, max_bytes: int) -> RemoteCommand:
        """Run `command` (a string the server's login shell or CLI reads) on a new channel."""
        try:
            channel = self.transport.open_session(timeout=self.timeout)
            remote = RemoteCommand(channel, timeout, max_bytes)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionError(f"ssh {self.where}: could not start a command: {_describe(exc)}") from None
        return remote

    def run(self, command: str, timeout: float, max_bytes: int) -> CommandResult:
        return self.start(command, timeout, max_bytes).wait()

    def sftp(self) -> paramiko.SFTPClient | None:
        """The SFTP client of this connection, None when the server offers no SFTP subsystem
        (network devices, hardened hosts): file reads then go through commands."""
        if self._sftp is False:
            try:
                client = self.transport.open_sftp_client()
                if client is None:
                    raise paramiko.SSHException("no SFTP channel")
                client.get_channel().settimeout(self.timeout)
                self._sftp = client
            except (paramiko.SSHException, OSError, EOFError) as exc:
                log.info("ssh %s: no SFTP subsystem (%s): reading files with commands", self.where, _describe(exc))
                self._sftp = None
        return self._sftp  # type: ignore[return-value]

    def close(self) -> None:
        if self._sftp:
            try:
                self._sftp.close()  # type: ignore[union-attr]
            except Exception:
                pass
        self.transport.close()

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _open_transport(address: str, port: int, host_keys: HostKeyPolicy, timeout: float) -> paramiko.Transport:
    """TCP connect, SSH handshake and host key verification; raises SshScanError."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise SshScanError("refused", "connection refused: no SSH server listens on that port "
                                      "(wrong port, or sshd is down)") from None
    except TimeoutError:
        raise SshScanError("timeout", f"no answer within {timeout:g}s (host down, or a firewall "
                                      "drops the connection)") from None
    except OSError as exc:
        raise SshScanError("unreachable", f"cannot connect: {exc.strerror or exc}") from None
    # Small request/answer packets: without TCP_NODELAY, Nagle's algorithm and the server's delayed
    # ACK hold each channel open and each command's answer for ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.set_log_channel(PARAMIKO_LOG)
    transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = timeout
    name = host_key_name(address, port)
    options = transport.get_security_options()
    wanted = offered_algorithms(load_known_hosts(host_keys.known_hosts), name, tuple(options.key_types))
    if wanted:
        options.key_types = wanted  # a known host presents the key type we recorded
    try:
        # The banner and the key exchange are each bounded by `timeout` (banner_timeout,
        # handshake_timeout); the whole start by both, so that their own errors say which one.
        transport.start_client(timeout=2 * timeout + 1)
    except paramiko.SSHException as exc:
        transport.close()
        raise _handshake_error(exc, timeout) from None
    except (EOFError, OSError) as exc:
        transport.close()
        raise SshScanError("protocol", "the server closed the connection during the SSH handshake "
                                       f"({_describe(exc)}): not an SSH server, or one refusing us "
                                       "(MaxStartups, tcp wrappers)") from None
    try:
        server_key = transport.get_remote_server_key()
    except paramiko.SSHException:
        transport.close()
        raise SshScanError("timeout", f"the SSH handshake did not complete within {2 * timeout + 1:g}s") from None
    try:
        verify_host_key(host_keys, address, port, server_key)
    except BaseException:
        transport.close()
        raise
    return transport


def _handshake_error(exc: paramiko.SSHException, timeout: float) -> SshScanError:
    text = _describe(exc)
    if "banner" in text.lower():
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (TimeoutError, socket.timeout)) or "timeout" in text.lower() or cause is None:
            return SshScanError("timeout", "the port accepted the connection but sent no SSH banner within "
                                           f"{timeout:g}s: not an SSH server, or an overloaded one")
        return SshScanError("protocol", f"not an SSH server (bad protocol banner: {text})")
    if "indecipherable" in text.lower() or "protocol" in text.lower():
        return SshScanError("protocol", f"not an SSH server ({text})")
    if "incompatible" in text.lower() or "no acceptable" in text.lower() or "negotiat" in text.lower():
        return SshScanError("protocol", f"no SSH algorithm in common ({text})")
    return SshScanError("protocol", f"SSH handshake failed ({text})")


class _KeyUnusable(Exception):
    pass


def _load_key(credential: SshCredential) -> paramiko.PKey:
    passphrase = credential.key_passphrase.encode() if credential.key_passphrase is not None else None
    try:
        return paramiko.PKey.from_path(credential.key_file, password=passphrase)
    except paramiko.PasswordRequiredException:
        raise _KeyUnusable("the key file is encrypted: set key_passphrase") from None
    except TypeError as exc:  # cryptography: "Password was not given but private key is encrypted"
        if passphrase is None:
            raise _KeyUnusable("the key file is encrypted: set key_passphrase") from None
        raise _KeyUnusable(f"cannot load the key file: {type(exc).__name__}") from None
    except (paramiko.SSHException, ValueError) as exc:
        hint = " (wrong key_passphrase?)" if credential.key_passphrase else ""
        raise _KeyUnusable(f"cannot load the key file{hint}: {type(exc).__name__}") from None
    except OSError as exc:
        raise _KeyUnusable(f"cannot read the key file: {exc.strerror or exc}") from None


def _authenticate(transport: paramiko.Transport, credential: SshCredential) -> None:
    """Log in with one credential set; raises paramiko.AuthenticationException or _KeyUnusable."""
    failure: Exception | None = None
    if credential.key_file is not None:
        try:
            transport.auth_publickey(credential.username, _load_key(credential))
        except (paramiko.AuthenticationException, _KeyUnusable) as exc:
            failure = exc
        if transport.is_authenticated():
            return
    if credential.password is not None:
        password = credential.password
        try:
            transport.auth_password(credential.username, password)
        except paramiko.BadAuthenticationType as exc:
            if "keyboard-interactive" not in exc.allowed_types:
                raise
            # PAM-backed servers ask for the password through keyboard-interactive prompts.
            transport.auth_interactive(credential.username, lambda _title, _instr, prompts: [
                password if "password" in prompt.lower() else "" for prompt, _echo in prompts])
        if transport.is_authenticated():
            return
    if failure is not None:
        raise failure
    raise paramiko.AuthenticationException("not authenticated")


def connect(address: str, port: int, credentials: Sequence[SshCredential], host_keys: HostKeyPolicy,
            timeout: float) -> SshSession:
    """An authenticated session with the first credential set the host accepts. Credentials are
    tried in order on one connection; a server that hangs up after too many failures
    (MaxAuthTries) is reconnected for the next one."""
    if not credentials:
        raise SshScanError("config", "no ssh credentials configured")
    where = f"{address}:{port}"
    transport = _open_transport(address, port, host_keys, timeout)
    attempts: list[str] = []
    try:
        for credential in credentials:
            if not transport.is_active():
                transport.close()
                transport = _open_transport(address, port, host_keys, timeout)
            try:
                _authenticate(transport, credential)
            except _KeyUnusable as exc:
                attempts.append(f"{credential.label}: {exc}")
                log.warning("ssh %s: credential %s: %s; trying the next", where, credential.label, exc)
                continue
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if "timeout" in str(exc).lower():
                    outcome = f"no authentication answer within {timeout:g}s"
                elif isinstance(exc, paramiko.AuthenticationException):
                    outcome = "authentication failed"
                else:
                    outcome = f"connection lost during authentication ({_describe(exc)})"
                attempts.append(f"{credential.label}: {outcome}")
                log.info("ssh %s: credential %s: %s; trying the next", where, credential.label, outcome)
                continue
            log.info("ssh %s: logged in with credential %s", where, credential.label)
            return SshSession(transport, address, port, credential, timeout)
    except BaseException:
        transport.close()
        raise
    transport.close()
    raise AuthenticationFailed("authentication failed with every credential "
                               f"({'; '.join(attempts)}): check the user names, keys and passwords",
                               attempts)
