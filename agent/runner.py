"""One agent run: flush the outbox, collect, build a full or delta report, spool it, send it.

    run_once(server, token, state_dir)    # what `fleetgraph agent run --once` and each daemon tick do
    flush_outbox(server, token, state_dir)  # only deliver what is queued (the daemon's retries)

The report is written to the outbox (agent.outbox) before it is sent and leaves it only once the
collector acknowledged it; delta planning and the acknowledged-state ledger are agent.delta. A
run holds `<state_dir>/lock` (flock) so a manual run and the daemon never interleave.

The state directory (owner-only: 0700, files 0600):

    agent_id          this installation's id (agent.identity)
    lock              flock held during a run or a flush
    delta.json        the acknowledged base report and section hashes, run counter (agent.delta)
    fastpath.json     input fingerprints and section hashes of skippable collectors (agent.fastpath)
    outbox/           queued reports, retry.json, rejected/ (agent.outbox)

Prints nothing: the CLI decides what to show from the RunResult (the outbox logs its policy
decisions: supersede, drops, refusals, backoff).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.builder import build_report, count_by_class
from agent.collectors import COLLECTORS, UNCHANGED_WHILE_SAME
from agent.collectors.base import Collector
from agent.context import Context, LocalContext
from agent.files import write_private_atomically
from agent.identity import load_or_create_agent_id
from cmdb.report import CollectorStatus, Report, encode_report

# Delivery (agent.delta, agent.fastpath, agent.outbox, agent.transport, gzip) is imported by the
# functions that deliver: a dry run (`agent run --dry-run`) builds and prints a report only, and
# its start-up is part of what it costs.
if TYPE_CHECKING:
    from agent.delta import SectionRecorder
    from agent.fastpath import FastPath, InputGroup
    from agent.outbox import FlushResult, Outbox
    from agent.transport import SendResult

log = logging.getLogger("fleetgraph.agent")

LOCK_FILE = "lock"
DEFAULT_FULL_EVERY = 24
DEFAULT_OUTBOX_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_RETRY_MAX = 900.0


class AgentBusy(RuntimeError):
    """Another agent process holds the state directory."""


@dataclass(frozen=True)
class RunResult:
    report_id: str
    agent_id: str
    counts: dict[str, int]  # items per CI class
    collectors: dict[str, CollectorStatus]
    bytes_raw: int  # the encoded JSON report
    bytes_sent: int | None  # the gzip body actually sent; None when not sent
    http_status: int | None  # 202 stored, 200 already stored; None when not sent
    output: Path | None = None
    report_json: bytes = field(default=b"", repr=False)  # the encoded report, as sent
    mode: str = "full"
    base_report_id: str | None = None
    plan_reason: str = ""  # why full, or what the delta is relative to
    flush: FlushResult | None = None  # every delivery attempt of this run, queued reports included

    @property
    def bytes_gzip(self) -> int:
        """The report gzip-compressed, as it goes on the wire; compressed when asked for (a dry
        run need not compress a 1 MB report for a number it does not print)."""
        if self.bytes_sent is not None:
            return self.bytes_sent
        import gzip

        return len(gzip.compress(self.report_json, 6))

    @property
    def complete(self) -> bool:
        """Every applicable collector succeeded."""
        return all(s.status != "failed" for s in self.collectors.values())

    @property
    def delivered(self) -> bool:
        return self.http_status in (200, 202)


@contextmanager
def state_lock(state_dir: Path, wait: float = 120.0) -> Iterator[None]:
    """Exclusive use of the state directory (released by the kernel if the process dies)."""
    fd = os.open(Path(state_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AgentBusy(f"another agent run holds {Path(state_dir) / LOCK_FILE}; "
                                    "try again when it has finished") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


class _DeltaLedger:
    """Keeps agent.delta's acknowledged state in step with what the outbox settles."""

    def __init__(self, state_dir: Path):
        from agent.delta import DeltaState

        self.state_dir = state_dir
        self.state = DeltaState.load(state_dir)

    def acknowledged(self, meta: Mapping[str, Any], result: SendResult) -> None:
        self.state.acknowledged(meta)
        self.state.save(self.state_dir)

    def rejected(self, meta: Mapping[str, Any], reason: str) -> None:
        self._lost(f"queued report {meta.get('report_id')} was refused: {reason}")

    def dropped(self, meta: Mapping[str, Any], why: str) -> None:
        self._lost(f"queued report {meta.get('report_id')} was dropped: {why}")

    def base_refused(self, meta: Mapping[str, Any]) -> None:
        self.state.base_refused(meta.get("base_report_id"))
        self.state.save(self.state_dir)

    def _lost(self, why: str) -> None:
        # Whatever it said is not in the CMDB: the projection is off until a full report.
        self.state.force_full = why[:500]
        self.state.save(self.state_dir)


def _sender(server_url: str, token: str, timeout: float, cafile: str | None = None):
    from agent.transport import send_report

    return lambda body: send_report(server_url, token, body, timeout, cafile=cafile)


def _merge_flush(into: FlushResult, more: FlushResult) -> None:
    into.delivered += more.delivered
    into.rejected += more.rejected
    into.base_refused += more.base_refused
    into.error, into.deferred_until, into.pending = more.error, more.deferred_until, more.pending


def flush_outbox(server_url: str, token: str, state_dir: Path, *, timeout: float = 30,
                 outbox_max_bytes: int = DEFAULT_OUTBOX_MAX_BYTES, retry_max: float = DEFAULT_RETRY_MAX,
                 respect_backoff: bool = True, cafile: str | None = None) -> FlushResult:
    """Deliver what the outbox holds, oldest first (no inventory)."""
    from agent.outbox import Outbox

    state_dir = Path(state_dir)
    load_or_create_agent_id(state_dir)  # creates the state directory owner-only
    with state_lock(state_dir):
        outbox = Outbox(state_dir, outbox_max_bytes, retry_max=retry_max)
        outbox.remove_stale_temporaries()
        return outbox.flush(_sender(server_url, token, timeout, cafile), _DeltaLedger(state_dir),
                            respect_backoff=respect_backoff)


def run_once(server_url: str | None, token: str | None, state_dir: Path, *,
             output: Path | None = None, dry_run: bool = False, timeout: float = 30, cafile: str | None = None,
             full_every: int = DEFAULT_FULL_EVERY, outbox_max_bytes: int = DEFAULT_OUTBOX_MAX_BYTES,
             retry_max: float = DEFAULT_RETRY_MAX, respect_backoff: bool = False,
             collectors: Iterable[Collector] | None = None, context: Context | None = None,
             fast_path_groups: Iterable[InputGroup] | None = None) -> RunResult:
    """Flush the outbox, collect this machine, spool the report (full or delta) and send it.
    `output` (JSON; gzip when the name ends in .gz) gets the report as built. A report that
    could not be delivered stays queued: the result says why (`flush.error`), nothing raises.
    `dry_run` builds a full report and touches neither the outbox nor the delta state.
    `fast_path_groups` (default: agent.collectors.UNCHANGED_WHILE_SAME) are the collectors a
    delta run may skip while their input files are unchanged (agent.fastpath)."""
    if not dry_run and not (server_url and token):
        raise ValueError("a server URL and an agent token are needed to send; use dry_run to only collect")
    state_dir = Path(state_dir)
    agent_id = load_or_create_agent_id(state_dir)
    ctx = context or LocalContext(agent_id=agent_id)
    if dry_run:
        report = build_report(ctx, collectors)
        body = encode_report(report)
        _write_output(output, body)
        return _result(report, agent_id, body, None, output, "full", "dry run")

    from agent.delta import build_delta, plan_mode, plan_report, project
    from agent.outbox import Outbox

    send = _sender(server_url, token, timeout, cafile)  # type: ignore[arg-type]
    collectors = list(COLLECTORS if collectors is None else collectors)
    groups = UNCHANGED_WHILE_SAME if fast_path_groups is None else tuple(fast_path_groups)
    with state_lock(state_dir):
        outbox = Outbox(state_dir, outbox_max_bytes, retry_max=retry_max)
        outbox.remove_stale_temporaries()
        ledger = _DeltaLedger(state_dir)
        flushed = outbox.flush(send, ledger, respect_backoff=respect_backoff)
        queued = outbox.metas()
        full, recorder, fast = _collect(ctx, collectors, state_dir, groups,
                                        plan_mode(ledger.state, queued, full_every).mode == "delta",
                                        project(ledger.state, queued).sections)
        plan = plan_report(ledger.state, queued, full.collectors, recorder.sections, full_every)
        report = full if plan.mode == "full" else build_delta(full, recorder.sections, plan.unchanged,
                                                              plan.base_report_id or "")
        body = _spool(outbox, ledger, report, recorder, full_every)
        _write_output(output, body)
        if flushed.error is None and flushed.deferred_until is None:
            _merge_flush(flushed, outbox.flush(send, ledger, respect_backoff=respect_backoff))
        else:  # the collector just failed us: one attempt per run, the backoff decides the next
            flushed.pending = len(outbox.entries())
        if report.mode == "delta" and report.report_id in flushed.base_refused:
            # The collector lacks the base (its store was replaced, or the full report never
            # arrived): send the same inventory as a full report, now.
            log.warning("the collector does not know base report %s; sending a full report",
                        report.base_report_id)
            plan_reason = f"the collector did not know base report {report.base_report_id}"
            if fast.skipped:  # `full` lacks the skipped sections: inventory again, for real
                full, recorder, fast = _collect(ctx, collectors, state_dir, groups, False, {})
            report = full
            body = _spool(outbox, ledger, report, recorder, full_every)
            _write_output(output, body)
            _merge_flush(flushed, outbox.flush(send, ledger, respect_backoff=False))
        else:
            plan_reason = plan.reason
    status = dict(flushed.delivered).get(report.report_id)
    return _result(report, agent_id, body, status, output, report.mode, plan_reason, flushed)


def _collect(ctx: Context, collectors: list[Collector], state_dir: Path, groups: tuple[InputGroup, ...],
             delta: bool, known_digests: Mapping[str, str]) -> tuple[Report, SectionRecorder, FastPath]:
    """Run the collectors; in a `delta` run, the groups whose inputs did not change since the CMDB
    got their sections are skipped (agent.fastpath). Returns the report (missing the skipped
    sections), every section (the skipped ones with their stored digest) and the fast path."""
    from agent.delta import SectionRecorder
    from agent.fastpath import FastPath

    fast = FastPath.prepare(state_dir, ctx, collectors, groups)
    if delta:
        fast.skip_unchanged(known_digests)
    recorder = SectionRecorder()
    report = build_report(ctx, fast.substitute(collectors), observe=recorder)
    recorder.sections.update(fast.skipped)
    fast.record(report.collectors, recorder.sections)
    return report, recorder, fast


def _spool(outbox: Outbox, ledger: _DeltaLedger, report: Report, recorder: SectionRecorder,
           full_every: int) -> bytes:
    from agent.delta import carried_sections

    body = encode_report(report)
    meta = {"report_id": report.report_id, "mode": report.mode, "base_report_id": report.base_report_id,
            "sections": carried_sections(report, recorder.sections),
            "collected_at": report.collected_at.isoformat(), "bytes": len(body)}
    outbox.enqueue(body, meta, ledger)
    state = ledger.state
    if report.mode == "full":
        state.runs_since_full, state.force_full = 0, None
    else:
        state.runs_since_full += 1
    state.save(ledger.state_dir)
    return body


def _write_output(output: Path | None, body: bytes) -> None:
    if output is None:
        return
    if str(output).endswith(".gz"):
        import gzip

        body = gzip.compress(body)
    write_private_atomically(output, body)


def _result(report: Report, agent_id: str, body: bytes, status: int | None, output: Path | None,
            mode: str, reason: str, flushed: FlushResult | None = None) -> RunResult:
    gz = None
    if status is not None:
        import gzip

        gz = len(gzip.compress(body, 6))
    return RunResult(report_id=report.report_id, agent_id=agent_id, counts=count_by_class(report),
                     collectors=dict(report.collectors), bytes_raw=len(body),
                     bytes_sent=gz, http_status=status,
                     output=Path(output) if output is not None else None, report_json=body, mode=mode,
                     base_report_id=report.base_report_id, plan_reason=reason, flush=flushed)
