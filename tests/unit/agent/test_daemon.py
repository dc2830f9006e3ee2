"""The daemon loop with real signals (sent to this process), and the priority drop (in a child)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from agent.daemon import Schedule, run_daemon


def test_schedule_splay_defaults_to_a_tenth_of_the_interval():
    schedule = Schedule.of(3600, None)
    assert schedule.splay == 360
    rand = random.Random(3)
    assert all(0 <= schedule.first_delay(rand) <= 360 for _ in range(100))
    assert all(3600 <= schedule.next_delay(rand) <= 3960 for _ in range(100))
    assert Schedule.of(10, 0).next_delay(rand) == 10
    with pytest.raises(ValueError, match="interval"):
        Schedule.of(0, None)


def test_sighup_runs_now_and_sigterm_finishes_the_step_then_exits_0():
    runs: list[tuple[bool, float]] = []

    def run(manual: bool) -> None:
        runs.append((manual, time.monotonic()))
        if len(runs) == 1:
            os.kill(os.getpid(), signal.SIGHUP)  # run again now, not in an hour
        else:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the step goes on after the signal
            runs.append((manual, time.monotonic()))

    previous = signal.getsignal(signal.SIGTERM)
    start = time.monotonic()
    assert run_daemon(run, lambda: None, lambda: None, Schedule(3600, 0)) == 0
    assert [manual for manual, _ in runs] == [False, True, True]
    assert time.monotonic() - start < 5
    assert signal.getsignal(signal.SIGTERM) == previous


def test_retries_the_outbox_between_runs_and_survives_a_failing_step():
    calls: list[str] = []
    due = [time.time()]

    def run(manual: bool) -> None:
        calls.append("run")
        raise RuntimeError("collector exploded")

    def flush() -> None:
        calls.append("flush")
        due[0] = time.time() + 0.05
        if calls.count("flush") == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    import agent.daemon as daemon

    old_gap, daemon.MIN_RETRY_GAP = daemon.MIN_RETRY_GAP, 0.01
    try:
        assert run_daemon(run, flush, lambda: due[0], Schedule(3600, 0)) == 0
    finally:
        daemon.MIN_RETRY_GAP = old_gap
    assert calls == ["run", "flush", "flush"]


def test_lower_priority_in_a_child_process():
    code = ("import os; from agent.daemon import lower_priority; lower_priority(); print(os.nice(0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert int(out.stdout.strip()) >= min(19, os.nice(0) + 10)
    child = subprocess.Popen([sys.executable, "-c", code + "; import time; time.sleep(5)"],
                             stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    try:
        child.stdout.readline()
        ionice = subprocess.run(["ionice", "-p", str(child.pid)], capture_output=True, text=True)
        if ionice.returncode == 0:
            assert "idle" in ionice.stdout
    finally:
        child.kill()
        child.wait()
