"""The reconcile worker: one thread that turns pending raw reports into CIs, oldest first.

Exactly once: `reconcile_report(store, report, report_seq=seq)` applies the change set and marks
the report reconciled in one transaction, so a crash before the commit leaves it pending (and it
is reconciled after the restart) and a crash after leaves it reconciled (and it is not taken
again). A report that cannot be decoded or reconciled is marked failed with the error and the
worker moves on: one poison report never blocks the log.

    worker = ReconcileWorker(store, batch=32)
    worker.start()          # picks up whatever is pending (a restart resumes where it stopped)
    worker.wake()           # after a report is stored
    worker.drain(timeout)   # tests: wait until nothing is pending
    worker.stop()           # finishes the report in hand, then the thread ends
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cmdb.report import Report, ReportError, decode_report
from cmdb.store import ReportNotPending, Store, StoredReport
from reconcile.policy import DEFAULT_POLICY, ReconcilePolicy

log = logging.getLogger("fleetgraph.collector.reconcile")

ReconcileFn = Callable[[Store, Report, int], Any]

# The bodies one round holds in memory, whatever reconcile_batch says (reports may be 64 MiB).
BATCH_MAX_BYTES = 64 * 1024 * 1024
IDLE_POLL_SECONDS = 5.0  # also re-checks the log now and then (e.g. reports put by another process)
STORE_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)  # back-off while the store itself is failing
MAX_ERROR_CHARS = 2000


def _default_reconcile(policy: ReconcilePolicy) -> ReconcileFn:
    from reconcile.engine import reconcile_report

    kwargs = policy.engine_kwargs()
    return lambda store, report, seq: reconcile_report(store, report, report_seq=seq, **kwargs)


class ReconcileWorker:
    def __init__(self, store: Store, batch: int = 32, *, reconcile: ReconcileFn | None = None,
                 idle_poll: float = IDLE_POLL_SECONDS, policy: ReconcilePolicy = DEFAULT_POLICY):
        if batch < 1:
            raise ValueError("reconcile batch must be at least 1")
        self._store = store
        self._batch = batch
        self._reconcile = reconcile
        self._policy = policy
        self._idle_poll = idle_poll
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # drain(): wake() bumps `_requested`; the worker records in `_idle_gen` the generation it
        # had read *before* a look at the log that found nothing pending.
        self._cond = threading.Condition()
        self._requested = 0
        self._idle_gen = -1
        self.reconciled = 0
        self.failed = 0
        # Called on this thread after each report with ("reconciled" | "failed", seconds): metrics.
        self.observer: Callable[[str, float], None] | None = None

    # -- control (any thread) -----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the reconcile worker is already started")
        if self._reconcile is None:
            self._reconcile = _default_reconcile(self._policy)
        self._thread = threading.Thread(target=self._run, name="fleetgraph-reconcile", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> int:
        """Ask the worker to look at the log now; returns the wake generation (for drain)."""
        with self._cond:
            self._requested += 1
            generation = self._requested
        self._wakeup.set()
        return generation

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the worker has found nothing pending after this call; False on timeout."""
        generation = self.wake()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._idle_gen < generation:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    def stop(self, timeout: float | None = 60.0) -> None:
        """Finish the report in hand, then end the thread."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("reconcile worker did not stop within %ss", timeout)

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        log.info("reconcile worker started (batch %d)", self._batch)
        failures = 0
        while not self._stopping.is_set():
            self._wakeup.clear()  # before reading the generation: a wake() after it is not lost
            with self._cond:
                generation = self._requested
            try:
                pending = self._store.pending_reports(self._batch, max_bytes=BATCH_MAX_BYTES)
            except Exception:
                delay = STORE_RETRY_SECONDS[min(failures, len(STORE_RETRY_SECONDS) - 1)]
                failures += 1
                log.exception("reconcile worker: cannot read pending reports; retrying in %ss", delay)
                self._stopping.wait(delay)
                continue
            failures = 0
            if not pending:
                with self._cond:
                    self._idle_gen = max(self._idle_gen, generation)
                    self._cond.notify_all()
                self._wakeup.wait(self._idle_poll)
                continue
            for stored in pending:
                if self._stopping.is_set():
                    break
                if not self._reconcile_one(stored):
                    # The store is unavailable: back off, then retry from the oldest pending report.
                    self._stopping.wait(STORE_RETRY_SECONDS[-1])
                    break
        log.info("reconcile worker stopped (%d reconciled, %d failed)", self.reconciled, self.failed)

    def _reconcile_one(self, stored: StoredReport) -> bool:
        """Reconcile one stored report; False when the store is unavailable (the caller backs off
        and retries the same report later)."""
        assert self._reconcile is not None
        started = time.monotonic()
        try:
            report = decode_report(stored.body)
            if report.report_id != stored.report_id:
                raise ReportError("$.report_id", f"body names report {report.report_id!r} but it is "
                                                 f"stored as {stored.report_id!r}")
            changes = self._reconcile(self._store, report, stored.seq)
        except ReportNotPending:
            # Another worker (or process) reconciled it between our read and our apply.
            log.info("report %s (seq %d) was already reconciled", stored.report_id, stored.seq)
            return True
        except self._store.transient_errors as exc:
            # The store is busy or unreachable: the report is fine, try it again later. Marking it
            # failed here would skip a good report.
            log.warning("report %s (seq %d): store unavailable (%s); will retry", stored.report_id,
                        stored.seq, exc)
            return False
        except Exception as exc:
            error = _describe(exc)
            log.error("report %s (seq %d) failed to reconcile: %s", stored.report_id, stored.seq, error,
                      exc_info=not isinstance(exc, ReportError))
            try:
                self._store.mark_report_failed(stored.seq, error)
            except Exception:
                log.exception("cannot mark report %s (seq %d) failed", stored.report_id, stored.seq)
                return False
            self.failed += 1
            self._observe("failed", time.monotonic() - started)
            return True
        self.reconciled += 1
        self._observe("reconciled", time.monotonic() - started)
        summary = changes.summary() if hasattr(changes, "summary") else {}
        log.info("report %s (seq %d) reconciled in %.0f ms: %s", stored.report_id, stored.seq,
                 (time.monotonic() - started) * 1000,
                 ", ".join(f"{k} {v}" for k, v in summary.items() if v) or "no changes")
        return True


    def _observe(self, outcome: str, seconds: float) -> None:
        if self.observer is not None:
            try:
                self.observer(outcome, seconds)
            except Exception:  # a metrics hook must never stop reconcile
                log.exception("reconcile worker: the observer failed")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ReportError):
        text = f"invalid report: {exc.field}: {exc.rule}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]
