"""The no-change fast path (agent.fastpath): a delta run skips a collector group whose input files
are unchanged, and the delta it sends is the one a real collection would have sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from agent.collectors import UNCHANGED_WHILE_SAME
from agent.context import LocalContext
from agent.fastpath import FASTPATH_FILE, FastPath, InputGroup
from agent.runner import run_once
from cmdb.report import decode_report

from .fake_inventory import FakeMachine, fake_collectors

AGENT_ID = "6f1c2d3e-0000-4000-8000-0000000000fa"
TOKEN = "fg_agent_fastpath-test"
STATUS = "/var/lib/dpkg/status"  # under the test's sysroot


class Collector(ThreadingHTTPServer):
    """Answers 202 to every report, or what `answers` says first; keeps the reports it got."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reports: list[dict] = []
        self.answers: list[tuple[int, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        import gzip

        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.reports.append(json.loads(gzip.decompress(body)))
        status, payload = self.server.answers.pop(0) if self.server.answers else (202, b'{"status": "accepted"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    srv = Collector()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class Counted:
    """A collector that counts its real runs."""

    def __init__(self, inner):
        self.inner, self.name, self.runs = inner, inner.name, 0

    def is_enabled(self, ctx):
        return self.inner.is_enabled(ctx)

    def collect(self, ctx):
        self.runs += 1
        return self.inner.collect(ctx)


class Agent:
    """One agent installation on a fake machine whose software section follows a status file."""

    def __init__(self, root: Path, machine: FakeMachine, url: str, *, fast: bool, full_every: int = 24):
        self.root, self.machine, self.url, self.full_every = root, machine, url, full_every
        self.state = root / "state"
        self.sysroot = root / "sysroot"
        (self.sysroot / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
        self.write_status()
        self.collectors = [Counted(c) for c in fake_collectors(machine)]
        self.software = next(c for c in self.collectors if c.name == "fake.software")
        self.groups = (InputGroup(("fake.software",), (STATUS, "/var/lib/dpkg/absent")),) if fast else ()

    def write_status(self) -> None:
        """What dpkg would do on an install: rewrite the status file under a new inode."""
        path = self.sysroot / STATUS.lstrip("/")
        tmp = path.with_name("status-new")
        tmp.write_text("".join(f"Package: {p}\nVersion: {v}\n\n" for p, v in sorted(self.machine.packages.items())))
        tmp.replace(path)

    def run(self, **kwargs):
        ctx = LocalContext(agent_id=AGENT_ID, sysroot=self.sysroot)
        return run_once(self.url, TOKEN, self.state, collectors=self.collectors, context=ctx, timeout=5,
                        full_every=self.full_every, fast_path_groups=self.groups, **kwargs)


def comparable(report: dict) -> dict:
    """A report without what differs between two runs of the same inventory."""
    report = json.loads(json.dumps(report))
    for key in ("report_id", "collected_at", "base_report_id"):
        report.pop(key, None)
    report["source"].pop("id", None)
    for status in report["collectors"].values():
        status.pop("duration_ms", None)
    return report


def twins(tmp_path: Path, server: Collector, **kwargs) -> tuple[FakeMachine, Agent, Agent]:
    """The same machine seen by an agent with the fast path and one without."""
    machine = FakeMachine()
    return (machine, Agent(tmp_path / "fast", machine, server.url, fast=True, **kwargs),
            Agent(tmp_path / "slow", machine, server.url, fast=False, **kwargs))


def test_an_unchanged_group_is_skipped_and_the_delta_is_the_real_one(tmp_path, server):
    machine, fast, slow = twins(tmp_path, server)
    assert fast.run().mode == slow.run().mode == "full"
    assert fast.software.runs == 1 and (fast.state / FASTPATH_FILE).exists()
    assert not (slow.state / FASTPATH_FILE).exists()

    machine.memory_mb = 16384  # hardware changes, the software (and its status file) do not
    a, b = fast.run(), slow.run()
    assert a.mode == b.mode == "delta"
    assert fast.software.runs == 1, "the software group was collected although its inputs were unchanged"
    assert slow.software.runs == 2
    assert a.collectors["fake.software"].unchanged and a.collectors["fake.hardware"].unchanged is False
    assert comparable(decode_report_dict(a)) == comparable(decode_report_dict(b))
    assert a.counts == b.counts


def decode_report_dict(result) -> dict:
    return msgspec.json.decode(result.report_json)


def test_a_changed_status_file_collects_for_real(tmp_path, server):
    machine, fast, slow = twins(tmp_path, server)
    fast.run(), slow.run()
    machine.packages["curl"] = "8.6"
    fast.write_status()
    a, b = fast.run(), slow.run()
    assert fast.software.runs == 2
    assert not a.collectors["fake.software"].unchanged
    delta = decode_report(a.report_json)
    assert any(i.ref == "pkg:curl" and i.attributes.get("version") == "8.6" for i in delta.items)
    assert comparable(decode_report_dict(a)) == comparable(decode_report_dict(b))
    # and the next run, with nothing changed, skips it again
    fast.run()
    assert fast.software.runs == 2


def test_a_file_touched_without_a_change_collects_for_real_and_finds_it_unchanged(tmp_path, server):
    machine, fast, _ = twins(tmp_path, server)
    fast.run()
    fast.write_status()  # same content, new inode and mtime: the fast path cannot tell, so it collects
    result = fast.run()
    assert fast.software.runs == 2 and result.collectors["fake.software"].unchanged


@pytest.mark.parametrize("damage", ["garbage", "other format", "other digest", "removed"])
def test_a_stale_or_damaged_cache_collects_for_real(tmp_path, server, damage):
    _, fast, slow = twins(tmp_path, server)
    fast.run(), slow.run()
    path = fast.state / FASTPATH_FILE
    doc = json.loads(path.read_text())
    recorded = json.loads(path.read_text())["groups"]
    if damage == "garbage":
        path.write_text("{not json")
    elif damage == "other format":
        path.write_text(json.dumps({**doc, "format": 999}))
    elif damage == "other digest":  # the CMDB holds something else than what was recorded
        for group in doc["groups"].values():
            group["digests"] = {name: "0" * 64 for name in group["digests"]}
        path.write_text(json.dumps(doc))
    else:
        path.unlink()
    a, b = fast.run(), slow.run()
    assert fast.software.runs == 2
    assert comparable(decode_report_dict(a)) == comparable(decode_report_dict(b))
    assert json.loads(path.read_text())["groups"] == recorded  # recorded again


def test_a_full_report_always_collects_for_real(tmp_path, server):
    _, fast, _ = twins(tmp_path, server, full_every=3)
    modes = [fast.run().mode for _ in range(4)]
    assert modes == ["full", "delta", "delta", "full"]
    assert fast.software.runs == 2  # the first full and the second full; never the deltas


def test_the_ledger_decides_not_the_cache(tmp_path, server):
    """A delta whose software section was never acknowledged (the collector lost it): the CMDB's
    digest differs from the recorded one, so the group is collected and sent."""
    machine, fast, _ = twins(tmp_path, server)
    fast.run()
    ledger = json.loads((fast.state / "delta.json").read_text())
    ledger["sections"]["fake.software"] = "f" * 64
    (fast.state / "delta.json").write_text(json.dumps(ledger))
    result = fast.run()
    assert fast.software.runs == 2 and not result.collectors["fake.software"].unchanged


def test_a_failed_collection_is_not_recorded(tmp_path, server):
    machine, fast, _ = twins(tmp_path, server)
    machine.broken.add("fake.software")
    fast.run()
    assert json.loads((fast.state / FASTPATH_FILE).read_text())["groups"] == {} if (
        fast.state / FASTPATH_FILE).exists() else True
    machine.broken.clear()
    fast.run()  # the full report's base had no software section: it is collected, not skipped
    assert fast.software.runs == 2


def test_a_group_is_skipped_whole_or_not_at_all(tmp_path, server):
    machine = FakeMachine()
    agent = Agent(tmp_path / "a", machine, server.url, fast=True)
    agent.groups = (InputGroup(("fake.software", "fake.network"), (STATUS,)),)
    network = next(c for c in agent.collectors if c.name == "fake.network")
    agent.run(), agent.run()
    assert agent.software.runs == network.runs == 1
    agent.collectors = [c for c in agent.collectors if c.name != "fake.network"]  # half the group runs
    agent.run()
    assert agent.software.runs == 2


def test_base_refused_sends_a_full_report_collected_for_real(tmp_path, server):
    machine, fast, _ = twins(tmp_path, server)
    fast.run()
    server.answers = [(422, b'{"error": "base report unknown", "code": "base_unknown"}')]
    result = fast.run()
    assert result.mode == "full" and result.delivered
    sent = server.reports[-1]
    assert sent.get("mode", "full") == "full"
    assert {i["ref"] for i in sent["items"]} >= {f"pkg:{p}" for p in machine.packages}
    assert fast.software.runs == 2  # skipped for the delta, collected again for the full report


def test_dry_runs_neither_use_nor_write_the_cache(tmp_path, server):
    _, fast, _ = twins(tmp_path, server)
    ctx = LocalContext(agent_id=AGENT_ID, sysroot=fast.sysroot)
    run_once(None, None, fast.state, dry_run=True, collectors=fast.collectors, context=ctx,
             fast_path_groups=fast.groups)
    assert fast.software.runs == 1 and not (fast.state / FASTPATH_FILE).exists()


def test_this_machines_dpkg_fingerprint_is_stable_and_survives_json(tmp_path):
    """The registry's groups on this machine: two fingerprints in a row are equal, also after the
    JSON round trip through fastpath.json (nothing in them is a float or a tuple)."""
    from agent.collectors import COLLECTORS

    ctx = LocalContext(agent_id=AGENT_ID)
    first = FastPath.prepare(tmp_path, ctx, COLLECTORS, UNCHANGED_WHILE_SAME).fingerprints
    second = FastPath.prepare(tmp_path, ctx, COLLECTORS, UNCHANGED_WHILE_SAME).fingerprints
    assert first == second == json.loads(json.dumps(first))
    if Path(STATUS).exists():
        assert "software.dpkg+licenses.dpkg" in first


def test_contexts_without_file_signatures_get_no_fast_path(tmp_path):
    from .conftest import RecordedContext

    fast = FastPath.prepare(tmp_path, RecordedContext(), fake_collectors(FakeMachine()),
                            (InputGroup(("fake.software",), (STATUS,)),))
    assert fast.groups == [] and fast.skip_unchanged({"fake.software": "x"}) == {}
