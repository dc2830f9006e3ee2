"""How a collector reaches the machine it inventories: the only I/O collectors may do.

A collector asks its `Context` to run (or start) a command, read a file (as text or bytes), list a
directory or read a link; it never calls subprocess, open() or os.listdir itself. `LocalContext` serves the machine the
agent runs on; an SSH transport serves a remote host through the same narrow protocol, so the
same collectors and the same pure parsers work over both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

DEFAULT_COMMAND_TIMEOUT = 20.0
# Commands run with a fixed PATH and the C locale: their output is parsed, not read by people.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_FILE_BYTES = 16 * 2**20
_STDERR_EXCERPT = 300


class CommandError(Exception):
    """A command could not give its output. `argv` is what was run, `reason` says why."""

    def __init__(self, argv: Sequence[str], reason: str):
        self.argv = tuple(argv)
        self.reason = reason
        super().__init__(f"{' '.join(self.argv[:3])}: {reason}")


class CommandNotFound(CommandError):
    """The program is not installed (or not on the safe PATH)."""


class CommandTimeout(CommandError):
    """The program ran longer than its timeout and was killed."""


class CommandFailed(CommandError):
    """The program exited non-zero; `returncode` and the start of its stderr are kept."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.returncode = returncode
        self.stderr = stderr
        detail = f": {stderr}" if stderr else ""
        super().__init__(argv, f"exit status {returncode}{detail}")


@runtime_checkable
class Context(Protocol):
    """What a collector may ask of the inventoried machine.

    `local` is True when this process runs on that machine, so process-local facts (psutil,
    socket) describe it; an SSH context or a context over a foreign sysroot sets it False.
    """

    agent_id: str

    @property
    def local(self) -> bool: ...

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> str:
        """stdout of `argv` (never through a shell); raises a CommandError subclass."""
        ...

    def start(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> StartedCommand:
        """`run`, begun now: the command may run while the caller does other work, and its
        `output()` is what `run` returns (or raises). A context that cannot start commands
        early runs it in `output()` (DeferredCommand)."""
        ...

    def has_command(self, name: str) -> bool: ...

    def read_file(self, path: str) -> str | None:
        """The text of an absolute path, or None when it is absent or unreadable."""
        ...

    def read_bytes(self, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """At most `limit` bytes of an absolute path, undecoded, or None when it is absent or
        unreadable. For files scanned, not read (17 MB of copyright files: decoding them would
        cost more than finding the few lines that matter)."""
        ...

    def list_dir(self, path: str) -> list[str] | None:
        """Sorted entry names of a directory, or None when it is absent or unreadable."""
        ...

    def read_link(self, path: str) -> str | None:
        """The target of a symbolic link, or None when `path` is not a readable link."""
        ...


class StartedCommand(Protocol):
    def output(self) -> str:
        """The command's stdout, once it has ended; raises what `Context.run` raises."""
        ...

    def cancel(self) -> None:
        """Kill the command if it still runs (its output is not wanted)."""
        ...


@dataclass
class DeferredCommand:
    """A command that runs when its output is asked for."""

    ctx: Context
    argv: Sequence[str]
    timeout: float = DEFAULT_COMMAND_TIMEOUT

    def output(self) -> str:
        return self.ctx.run(self.argv, self.timeout)

    def cancel(self) -> None:
        pass


class _RunningCommand:
    """A command of LocalContext.start. Its output goes to anonymous in-memory files, not pipes,
    so that it never waits for a reader (dpkg-query writes ~200 KB; a pipe holds 64 KB)."""

    def __init__(self, argv: Sequence[str], proc: subprocess.Popen, stdout_fd: int, stderr_fd: int,
                 timeout: float):
        self.argv, self._proc, self._fds = tuple(argv), proc, (stdout_fd, stderr_fd)
        self._timeout, self._deadline = timeout, time.monotonic() + timeout

    def output(self) -> str:
        try:
            try:
                self._proc.wait(max(0.0, self._deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
                raise CommandTimeout(self.argv, f"no result after {self._timeout:g}s") from None
            stdout, stderr = (_read_all(fd) for fd in self._fds)
        finally:
            self.cancel()
        if self._proc.returncode != 0:
            raise CommandFailed(self.argv, self._proc.returncode,
                                stderr.decode("utf-8", "replace").strip()[:_STDERR_EXCERPT])
        return stdout.decode("utf-8", "replace")

    def cancel(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.wait()
        for fd in self._fds:
            if fd != -1:
                os.close(fd)
        self._fds = (-1, -1)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


@dataclass
class LocalContext:
    """The machine this process runs on. Files resolve under `sysroot` (a mounted image or a
    recorded tree in tests). Commands run with a fixed PATH, and only when the sysroot is "/":
    this machine's commands say nothing true about a foreign tree."""

    agent_id: str
    sysroot: Path = Path("/")
    path_env: str = SAFE_PATH
    env: dict[str, str] = field(default_factory=lambda: {"LC_ALL": "C", "LANG": "C"})

    def __post_init__(self) -> None:
        self.sysroot = Path(self.sysroot)
        self._local = self.sysroot.resolve() == Path("/")
        # Joined as strings: a pathlib join per file costs more than reading a small file.
        self._prefix = "" if str(self.sysroot) == "/" else str(self.sysroot).rstrip("/")

    @property
    def local(self) -> bool:
        return self._local

    def path(self, path: str) -> Path:
        """`path` (absolute, as seen on the inventoried machine) under the sysroot."""
        return Path(self._os_path(path))

    def _os_path(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"context paths are absolute, got {path!r}")
        return self._prefix + path

    def _which(self, name: str) -> str | None:
        return shutil.which(name, path=self.path_env)

    def has_command(self, name: str) -> bool:
        return self.local and self._which(name) is not None

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> str:
        if not argv or not isinstance(argv, (list, tuple)):
            raise ValueError("argv must be a non-empty list of strings")
        if not self.local:
            raise CommandNotFound(argv, f"commands are not run for the foreign sysroot {self.sysroot}")
        executable = self._which(argv[0])
        if executable is None:
            raise CommandNotFound(argv, "command not found")
        try:
            done = subprocess.run(
                [executable, *argv[1:]], stdin=subprocess.DEVNULL, capture_output=True,
                timeout=timeout, env={"PATH": self.path_env, **self.env}, check=False,
            )
        except subprocess.TimeoutExpired:
            raise CommandTimeout(argv, f"no result after {timeout:g}s") from None
        except OSError as exc:
            raise CommandError(argv, f"could not start: {exc.strerror or exc}") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()[:_STDERR_EXCERPT]
            raise CommandFailed(argv, done.returncode, stderr)
        return done.stdout.decode("utf-8", "replace")

    def start(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> StartedCommand:
        executable = self._which(argv[0]) if self.local and argv and isinstance(argv, (list, tuple)) else None
        if executable is None or not hasattr(os, "memfd_create"):
            return DeferredCommand(self, argv, timeout)  # run() raises what there is to raise
        fds: list[int] = []
        try:
            fds = [os.memfd_create("stdout", os.MFD_CLOEXEC), os.memfd_create("stderr", os.MFD_CLOEXEC)]
            proc = subprocess.Popen([executable, *argv[1:]], stdin=subprocess.DEVNULL, stdout=fds[0],
                                    stderr=fds[1], env={"PATH": self.path_env, **self.env})
        except OSError:
            for fd in fds:
                os.close(fd)
            return DeferredCommand(self, argv, timeout)
        return _RunningCommand(argv, proc, fds[0], fds[1], timeout)

    def read_file(self, path: str) -> str | None:
        data = self._read(path, MAX_FILE_BYTES)
        return None if data is None else data.decode("utf-8", "replace")

    def read_bytes(self, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        return self._read(path, limit)

    def _read(self, path: str, limit: int) -> bytes | None:
        try:
            with open(self._os_path(path), "rb", buffering=0) as fh:
                return read_bounded(fh, limit)
        except (OSError, ValueError):
            return None

    def file_signature(self, path: str) -> list[int] | None:
        """[device, inode, size, mtime ns, ctime ns] of a file or folder (links followed), None
        when it does not exist; other errors raise OSError. Not a collector's business: the
        runner's fast path (agent.fastpath) tells with it whether a collector's inputs changed."""
        try:
            st = os.stat(self._os_path(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def list_dir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(self._os_path(path)))
        except OSError:
            return None

    def read_link(self, path: str) -> str | None:
        try:
            return os.readlink(self._os_path(path))
        except OSError:
            return None


_CHUNK = 64 * 1024


def read_bounded(fh: BinaryIO, limit: int) -> bytes:
    """At most `limit` bytes of an unbuffered file. A regular file is read in one call sized by
    fstat: `read(limit)` would allocate `limit` bytes for every small file (a license scan reads
    ~900 of them). /proc files report a size of 0 whatever they hold: those are read in chunks
    until EOF."""
    size = os.fstat(fh.fileno()).st_size
    if size:
        want = min(size, limit)
        data = fh.read(want)
        if len(data) >= want or not data:
            return data
        parts = [data]  # a short read: go on until EOF or the size fstat gave
        total = len(data)
        while total < want and (chunk := fh.read(want - total)):
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)
    parts, total = [], 0
    while total < limit and (chunk := fh.read(min(_CHUNK, limit - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)
