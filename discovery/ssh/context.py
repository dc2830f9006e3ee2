"""`SshContext`: the agent's collector `Context` protocol (agent/context.py) over an SSH session,
so that the agent's own collectors and pure parsers inventory a remote Linux host: one parser,
two transports.

- Commands run as the agent runs them: argv only (every word shell-quoted for the remote login
  shell), a clean environment with the agent's fixed PATH and the C locale
  (`env -i PATH=... LC_ALL=C LANG=C`), bounded by coreutils `timeout` on the host when it has one
  and by a local deadline in any case; output is capped (MAX_OUTPUT_BYTES). Failures map to the
  agent's CommandError family: CommandNotFound (not on the fixed PATH, exit 127), CommandTimeout,
  CommandFailed (exit status, start of stderr), CommandError (connection lost, output too big).
- Files are read over SFTP when the server offers it, else with `head -c`/`sh` commands; reads
  are bounded by `limit` like the local ones. Absent or unreadable: None. A lost connection
  raises ConnectionError, so a collector fails (and says so) instead of reporting "absent".
- `has_command` answers from one listing of the executables on the fixed PATH, made on first use.
- `local` is False: collectors that read this process's own machine (psutil) stand down.
"""

from __future__ import annotations

import shlex
import socket
from collections import Counter
from collections.abc import Sequence

import paramiko

from agent.context import (
    DEFAULT_COMMAND_TIMEOUT,
    MAX_FILE_BYTES,
    SAFE_PATH,
    CommandError,
    CommandFailed,
    CommandNotFound,
    CommandTimeout,
    DeferredCommand,
    StartedCommand,
)
from discovery.ssh.client import RemoteCommand, RemoteCommandTimeout, RemoteOutputTooLarge, SshSession

MAX_OUTPUT_BYTES = 64 * 2**20
# The remote `timeout` ends a command at its timeout; the local deadline leaves it this long to
# report that before the channel is closed on it.
_LOCAL_GRACE_S = 3.0
_STDERR_EXCERPT = 300
_LIST_EXECUTABLES = ('IFS=:; for d in $PATH; do for f in "$d"/*; do '
                     'if [ -f "$f" ] && [ -x "$f" ]; then echo "${f##*/}"; fi; done; done')
_LIST_DIR = ('cd -- "$1" || exit 1; for f in * .*; do case "$f" in .|..) continue;; esac; '
             'if [ -e "$f" ] || [ -L "$f" ]; then printf "%s\\000" "$f"; fi; done')


def _check_argv(argv: Sequence[str]) -> None:
    if not argv or not isinstance(argv, (list, tuple)) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    if any("\x00" in a for a in argv):
        raise ValueError("argv must not contain NUL characters")


class _StartedSshCommand:
    def __init__(self, ctx: SshContext, argv: Sequence[str], timeout: float, remote: RemoteCommand):
        self._ctx, self._argv, self._timeout, self._remote = ctx, tuple(argv), timeout, remote

    def output(self) -> str:
        return self._ctx._finish(self._argv, self._timeout, self._remote)

    def cancel(self) -> None:
        self._remote.cancel()


class SshContext:
    """The host behind an authenticated SshSession, as agent collectors see it."""

    def __init__(self, session: SshSession, agent_id: str, *, path_env: str = SAFE_PATH,
                 max_output_bytes: int = MAX_OUTPUT_BYTES):
        self.agent_id = agent_id
        self.session = session
        self.path_env = path_env
        self.max_output_bytes = max_output_bytes
        self._commands: frozenset[str] | None = None
        self._listed = False
        self.counts: Counter[str] = Counter()  # commands and file operations, for benchmarks and logs

    @property
    def local(self) -> bool:
        return False

    # -- commands ---------------------------------------------------------------------------

    def commands(self) -> frozenset[str] | None:
        """Names of the executables on the fixed PATH of the host (None: could not list them)."""
        if not self._listed:
            self._listed = True
            try:
                result = self.session.run(self._command_line(["sh", "-c", _LIST_EXECUTABLES], None),
                                          DEFAULT_COMMAND_TIMEOUT, self.max_output_bytes)
                self.counts["commands"] += 1
                if result.exit_status == 0:
                    self._commands = frozenset(result.stdout.decode("utf-8", "replace").split())
            except (ConnectionError, RemoteCommandTimeout, RemoteOutputTooLarge):
                self._commands = None
        return self._commands

    def has_command(self, name: str) -> bool:
        commands = self.commands()
        return True if commands is None else name in commands  # unknown: let run() find out

    def _command_line(self, argv: Sequence[str], timeout: float | None) -> str:
        words = ["env", "-i", f"PATH={self.path_env}", "LC_ALL=C", "LANG=C"]
        if timeout is not None and self._commands and "timeout" in self._commands:
            words += ["timeout", "-k", "2", f"{timeout:g}"]
        return " ".join(shlex.quote(w) for w in [*words, *argv])

    def _not_found(self, argv: Sequence[str]) -> bool:
        commands = self.commands()
        return commands is not None and "/" not in argv[0] and argv[0] not in commands

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> str:
        _check_argv(argv)
        if self._not_found(argv):
            raise CommandNotFound(argv, "command not found")
        return self._finish(tuple(argv), timeout, self._start(argv, timeout))

    def start(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> StartedCommand:
        _check_argv(argv)
        if self._not_found(argv):
            return DeferredCommand(self, argv, timeout)  # run() raises CommandNotFound
        try:
            remote = self._start(argv, timeout)
        except CommandError:
            return DeferredCommand(self, argv, timeout)
        return _StartedSshCommand(self, argv, timeout, remote)

    def _start(self, argv: Sequence[str], timeout: float) -> RemoteCommand:
        self.counts["commands"] += 1
        try:
            return self.session.start(self._command_line(argv, timeout), timeout + _LOCAL_GRACE_S,
                                      self.max_output_bytes)
        except ConnectionError as exc:
            raise CommandError(argv, f"connection lost: {exc}") from None

    def _finish(self, argv: Sequence[str], timeout: float, remote: RemoteCommand) -> str:
        try:
            result = remote.wait()
        except RemoteCommandTimeout:
            raise CommandTimeout(argv, f"no result after {timeout:g}s") from None
        except RemoteOutputTooLarge as exc:
            raise CommandError(argv, str(exc)) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise CommandError(argv, f"connection lost: {exc or type(exc).__name__}") from None
        stderr = result.stderr.decode("utf-8", "replace").strip()[:_STDERR_EXCERPT]
        if result.exit_status == 0:
            return result.stdout.decode("utf-8", "replace")
        if result.exit_status is None:
            raise CommandError(argv, "no exit status from the host (connection lost?)")
        if result.exit_status == 127:
            raise CommandNotFound(argv, "command not found")
        if result.exit_status == 124 and self._commands and "timeout" in self._commands:
            raise CommandTimeout(argv, f"no result after {timeout:g}s")
        raise CommandFailed(argv, result.exit_status, stderr)

    # -- files ------------------------------------------------------------------------------

    def read_file(self, path: str) -> str | None:
        data = self.read_bytes(path, MAX_FILE_BYTES)
        return None if data is None else data.decode("utf-8", "replace")

    def read_bytes(self, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        if not _absolute(path):
            return None
        self.counts["file_reads"] += 1
        sftp = self.session.sftp()
        if sftp is None:
            return self._command_output(["head", "-c", str(max(0, int(limit))), "--", path], limit)
        try:
            with sftp.open(path, "rb") as fh:
                return fh.read(limit) if limit > 0 else b""
        except (TimeoutError, socket.timeout, paramiko.SSHException, EOFError) as exc:
            raise ConnectionError(f"ssh {self.session.where}: reading {path}: {exc or type(exc).__name__}") from None
        except OSError:
            return None  # absent, unreadable, a directory

    def list_dir(self, path: str) -> list[str] | None:
        if not _absolute(path):
            return None
        self.counts["dir_lists"] += 1
        sftp = self.session.sftp()
        if sftp is None:
            out = self._command_output(["sh", "-c", _LIST_DIR, "sh", path], self.max_output_bytes)
            return None if out is None else sorted(n.decode("utf-8", "replace") for n in out.split(b"\0") if n)
        try:
            return sorted(sftp.listdir(path))
        except (TimeoutError, socket.timeout, paramiko.SSHException, EOFError) as exc:
            raise ConnectionError(f"ssh {self.session.where}: listing {path}: {exc or type(exc).__name__}") from None
        except OSError:
            return None

    def read_link(self, path: str) -> str | None:
        if not _absolute(path):
            return None
        self.counts["link_reads"] += 1
        sftp = self.session.sftp()
        if sftp is None:
            out = self._command_output(["readlink", "--", path], 64 * 1024)
            return None if not out else out.decode("utf-8", "replace").rstrip("\n") or None
        try:
            return sftp.readlink(path)
        except (TimeoutError, socket.timeout, paramiko.SSHException, EOFError) as exc:
            raise ConnectionError(f"ssh {self.session.where}: reading link {path}: {exc or type(exc).__name__}") from None
        except OSError:
            return None

    def _command_output(self, argv: list[str], limit: int) -> bytes | None:
        """stdout of a file-reading command, None when it fails (absent, unreadable); a lost
        connection raises ConnectionError like the SFTP path."""
        try:
            remote = self._start(argv, DEFAULT_COMMAND_TIMEOUT)
            result = remote.wait()
        except CommandError as exc:
            raise ConnectionError(exc.reason) from None
        except RemoteCommandTimeout:
            return None
        except RemoteOutputTooLarge:
            return None
        if result.exit_status != 0:
            return None
        return result.stdout[:limit]


def _absolute(path: str) -> bool:
    return isinstance(path, str) and path.startswith("/") and "\x00" not in path
