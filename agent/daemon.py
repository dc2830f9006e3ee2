"""`fleetgraph agent run` without --once: inventory every `agent.interval` seconds, forever.

- Each run waits `interval` plus a random splay (0..`agent.splay`, default 10% of the interval),
  and the first run waits a random 0..splay, so a fleet started together does not report together.
- Between runs, queued reports are retried when the outbox's backoff allows (agent.outbox).
- Low priority: nice 10 and the idle I/O class (ioprio_set, else the `ionice` command); best
  effort, a failure is logged and ignored.
- SIGTERM / SIGINT: finish the current step, then exit 0. SIGHUP: run now.

Signals only set flags; the loop sleeps in select() on the signal wakeup fd, so a signal ends
the sleep at once and a running step is never interrupted halfway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform
import random
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("fleetgraph.agent.daemon")

NICE_INCREMENT = 10
MIN_RETRY_GAP = 5.0  # seconds between two outbox retries, whatever the backoff says
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13
_SYS_IOPRIO_SET = {"x86_64": 251, "amd64": 251, "aarch64": 30, "arm64": 30, "i686": 289, "i386": 289,
                   "armv7l": 314, "ppc64le": 273, "s390x": 282, "riscv64": 30}


def lower_priority() -> None:
    """nice +10 and the idle I/O scheduling class; never fatal."""
    try:
        os.nice(NICE_INCREMENT)
    except OSError as exc:
        log.info("could not lower the CPU priority: %s", exc.strerror or exc)
    if _ioprio_idle_syscall():
        return
    ionice = shutil.which("ionice")
    if ionice:
        try:
            subprocess.run([ionice, "-c", "3", "-p", str(os.getpid())], check=True, timeout=5,
                           stdin=subprocess.DEVNULL, capture_output=True)
            return
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("ionice failed: %s", exc)
    log.info("could not set the idle I/O class; running at the normal I/O priority")


def _ioprio_idle_syscall() -> bool:
    number = _SYS_IOPRIO_SET.get(platform.machine().lower())
    if number is None or not platform.system() == "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        prio = _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT
        return libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, prio) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class Schedule:
    interval: float
    splay: float

    @classmethod
    def of(cls, interval: float, splay: float | None) -> Schedule:
        if interval <= 0:
            raise ValueError(f"agent.interval must be positive, got {interval:g}")
        return cls(interval, interval * 0.1 if splay is None else max(0.0, splay))

    def first_delay(self, rand: random.Random) -> float:
        return rand.uniform(0, self.splay)

    def next_delay(self, rand: random.Random) -> float:
        return self.interval + rand.uniform(0, self.splay)


class _Signals:
    """SIGTERM/SIGINT -> stop, SIGHUP -> run now; wakes the select() sleep through a pipe."""

    def __init__(self) -> None:
        self.stop = False
        self.run_now = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._old_fd = signal.set_wakeup_fd(self._w)
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}

    def _handle(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self.run_now = True
        else:
            self.stop = True

    def sleep(self, seconds: float) -> None:
        if self.stop or self.run_now or seconds <= 0:
            return
        select.select([self._r], [], [], seconds)
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(self._old_fd)
        os.close(self._r)
        os.close(self._w)


def run_daemon(run: Callable[[bool], None], flush: Callable[[], None], next_retry: Callable[[], float | None],
               schedule: Schedule, *, rand: random.Random | None = None) -> int:
    """The loop. `run(manual)` is one inventory run (manual: a SIGHUP asked for it), `flush()`
    retries the outbox, `next_retry()` says when the outbox wants its next attempt (epoch s)."""
    rand = rand or random.Random()
    signals = _Signals()
    try:
        next_run = time.monotonic() + schedule.first_delay(rand)
        log.info("agent running every %gs (+ up to %gs splay); first run in %.1fs",
                 schedule.interval, schedule.splay, next_run - time.monotonic())
        last_flush = 0.0
        while not signals.stop:
            retry_at = next_retry()
            if retry_at is not None:  # never spin, even if a flush fails without a backoff
                retry_at = max(retry_at, last_flush + MIN_RETRY_GAP)
            wait = next_run - time.monotonic()
            if retry_at is not None:
                wait = min(wait, retry_at - time.time())
            signals.sleep(wait)
            if signals.stop:
                break
            if signals.run_now or time.monotonic() >= next_run:
                manual, signals.run_now = signals.run_now, False
                _step(functools.partial(run, manual), "inventory run")
                next_run = time.monotonic() + schedule.next_delay(rand)
            elif retry_at is not None and time.time() >= retry_at:
                _step(flush, "outbox retry")
                last_flush = time.time()
        log.info("agent stopping (signal received)")
        return 0
    finally:
        signals.close()


def _step(fn: Callable[[], None], what: str) -> None:
    try:
        fn()
    except Exception as exc:  # a daemon outlives a bad run: log it, try again next time
        log.error("%s failed: %s", what, exc, exc_info=not isinstance(exc, (OSError, RuntimeError, ValueError)))
