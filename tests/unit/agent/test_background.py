"""agent.background: work started by a collector's prepare() and picked up by its collect()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.background import Background
from agent.builder import build_report, prepare_collectors
from agent.collectors.base import Contribution
from agent.collectors.licenses import DpkgLicensesCollector
from agent.collectors.software.dpkg import DpkgCollector
from agent.context import LocalContext
from tests.unit.agent.conftest import RecordedContext

AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000001"


def _pid_and(value):
    return [os.getpid(), value]


def _fails(message):
    raise LookupError(message)


_CHILD_CHECK = """
import os
from agent.background import Background
from agent.context import LocalContext
from tests.unit.agent.test_background import AGENT_ID, _pid_and
pending = Background.start(LocalContext(agent_id=AGENT_ID), _pid_and, {"a": [1, 2.5, None, "\u00e9"]})
pid, value = pending.result()
assert pid != os.getpid(), "ran inline"
assert value == {"a": [1, 2.5, None, "\u00e9"]}, value
pending.cancel()  # reaped already: nothing to do
"""


def test_on_this_machine_the_work_runs_in_a_child():
    # In a fresh interpreter, as the agent runs: Background forks only a single-threaded process,
    # and a test session may hold threads other tests started (servers, log drains).
    _in_fresh_interpreter(_CHILD_CHECK)


def test_elsewhere_the_work_runs_inline_when_the_result_is_asked_for():
    pending = Background.start(RecordedContext(), _pid_and, "x")
    assert pending.result() == [os.getpid(), "x"]


def test_work_that_fails_in_the_child_fails_here_with_its_own_error():
    pending = Background.start(LocalContext(agent_id=AGENT_ID), _fails, "no such thing")
    with pytest.raises(LookupError, match="no such thing"):
        pending.result()


_CANCEL_CHECK = """
import os
from agent.background import Background
from agent.context import LocalContext
from tests.unit.agent.test_background import AGENT_ID, _pid_and
pending = Background.start(LocalContext(agent_id=AGENT_ID), _pid_and, "x")
pid = pending._pid
assert pid is not None, "ran inline"
pending.cancel()
try:
    os.waitpid(pid, os.WNOHANG)
except ChildProcessError:
    pass
else:
    raise AssertionError("the child was not reaped")
"""


def test_cancel_stops_and_reaps_the_child():
    _in_fresh_interpreter(_CANCEL_CHECK)


def _in_fresh_interpreter(code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


class _BrokenPrepare:
    name = "broken"

    def is_enabled(self, ctx):
        return True

    def prepare(self, ctx):
        raise OSError("prepare failed")

    def collect(self, ctx):
        return Contribution()


def test_a_failing_prepare_costs_nothing_but_the_head_start():
    prepare_collectors(RecordedContext(), [_BrokenPrepare()])
    report = build_report(RecordedContext(), [_BrokenPrepare()])
    assert report.collectors["broken"].status == "ok"


def test_prepared_and_unprepared_collections_agree_on_this_machine():
    if not os.path.exists("/var/lib/dpkg/status"):
        pytest.skip("not a dpkg machine")
    ctx = LocalContext(agent_id=AGENT_ID)
    for collector in (DpkgCollector(), DpkgLicensesCollector()):
        plain = collector.collect(ctx)
        collector.prepare(ctx)
        prepared = collector.collect(ctx)
        assert {r: (i.identifiers, i.attributes) for r, i in prepared.items.items()} == \
            {r: (i.identifiers, i.attributes) for r, i in plain.items.items()}
        assert prepared.relations == plain.relations


def test_a_preparation_for_another_context_is_not_used():
    if not os.path.exists("/var/lib/dpkg/status"):
        pytest.skip("not a dpkg machine")
    collector = DpkgLicensesCollector()
    collector.prepare(LocalContext(agent_id=AGENT_ID))
    recorded = RecordedContext(files={"/var/lib/dpkg/status": "", "/usr/share/doc/x/copyright": ""})
    assert collector.collect(recorded).items == {}
