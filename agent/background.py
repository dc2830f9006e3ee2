"""Work a collector starts early and picks up later, on another core when there is one.

    pending = Background.start(ctx, scan, packages)   # in the collector's prepare(ctx)
    ...                                                # the collectors before it run meanwhile
    result = pending.result()                          # in its collect(ctx)

A full inventory is CPU-bound Python (one core), and some of it depends on nothing the other
collectors do: licenses.dpkg reads and scans ~900 copyright files (17 MB). On this machine
(`ctx.local`) such work runs in a forked child of the agent while the parent runs the other
collectors, and comes back as JSON through a pipe. Elsewhere (an SSH or recorded context, a
process with threads, where fork is not safe, or no fork at all) `start` runs nothing and
`result()` does the work then, in this process: the same function, the same result. Work that
failed in the child is done again in this process, so that the error raised (and the reason the
report gives) is the one an inline run gives.

The child shares the parent's memory copy-on-write, never returns into the caller (it leaves by
os._exit whatever happens, so no atexit handler, buffered output or `finally` of the parent runs
twice) and is reaped by `result()` or `cancel()`.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from agent.context import Context


class Background:
    """`fn(*args)`, in a child (see `start`) or, made directly, in this process by `result()`."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]):
        self._fn, self._args = fn, args
        self._pid: int | None = None
        self._fd: int | None = None

    @classmethod
    def start(cls, ctx: Context, fn: Callable[..., Any], *args: Any) -> Background:
        """`fn(*args)` started in a child when this machine's context allows it; its return
        value must be JSON (lists, dicts, strings, numbers, None)."""
        pending = cls(fn, args)
        if ctx.local and hasattr(os, "fork") and threading.active_count() == 1:
            pending._fork()
        return pending

    def _fork(self) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: do the work, hand it over, leave
            # No cycle collection in the child: a full one writes to the header of every object
            # the parent had, copying all of the parent's pages into the child; it lives for
            # one task, and refcounting frees what that task drops.
            gc.disable()
            status = 0
            try:
                os.close(read_fd)
                try:
                    body = msgspec.json.encode({"result": self._fn(*self._args)})
                except Exception:  # the parent does it again, and raises what it raises
                    body = b""
                with open(write_fd, "wb") as out:
                    out.write(body)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def result(self) -> Any:
        """What `fn` returned; computed now when no child was started or the child failed."""
        if self._pid is None:
            return self._fn(*self._args)
        try:
            with open(self._fd, "rb") as pipe:  # type: ignore[arg-type]
                self._fd = None
                body = pipe.read()
        finally:
            self._reap()
        if not body:
            return self._fn(*self._args)
        return msgspec.json.decode(body)["result"]

    def cancel(self) -> None:
        """Stop and reap a child whose result is not wanted (idempotent)."""
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()

    def _reap(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
