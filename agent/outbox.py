"""The durable outbox: every report is spooled to disk before it is sent, and leaves the spool only
once the collector acknowledged it (202 stored, or 200: it had it already).

Layout, all owner-only (directories 0700, files 0600):

    <state_dir>/outbox/<seq>-<report_id>.report   one per queued report, delivered by ascending seq
    <state_dir>/outbox/retry.json                 backoff: failed attempts, next attempt time, last error
    <state_dir>/outbox/rejected/<name>.report     reports the collector refused for good (4xx),
    <state_dir>/outbox/rejected/<name>.reason     with its answer; the newest REJECTED_KEEP are kept

A `.report` file is a header line, a JSON metadata line (report_id, mode, base, the section
hashes it carries) and the gzip-compressed report. Files are written to a temporary name, fsync'd,
renamed and the directory fsync'd, so a kill -9 or a power cut leaves either the whole report or
none of it. The report_id is the idempotency key: a report whose acknowledgement was lost is sent
again and answered 200 duplicate, never stored twice.

Policies:

- **Order**: oldest first; a transient failure stops the flush (later reports wait their turn).
- **Retry**: no answer, 5xx, 408, 429, 401 and 403 (the credential, not the report, is refused)
  keep the report and back off exponentially with full jitter (random 0..min(cap, 10 s * 2^n)),
  the next attempt time persisted so a restarted daemon does not hammer the collector.
- **Refused for good**: any other 4xx moves the report to rejected/ with the collector's reason;
  the flush goes on with the next one. `422 base_unknown` (a delta whose base the collector does
  not have) drops every queued delta on that base instead: the caller sends a full report.
- **Supersede**: queuing a full report removes every older queued report: the full restates
  everything they said (only their intermediate history is lost, and that is logged).
- **Cap** (`agent.outbox_max_bytes`): over the cap, the oldest reports are dropped (logged as a
  warning, never silently) until it fits; a dropped full report takes the deltas built on it
  along. The newest report is always kept, even alone over the cap.

The `Ledger` is told about every acknowledgement, refusal and drop *before* the file goes, so a
crash in between repeats the (idempotent) bookkeeping rather than missing it.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agent.files import fsync_dir, write_private_atomically
from agent.transport import SendResult, ServerRejected, ServerUnreachable

log = logging.getLogger("fleetgraph.agent.outbox")

OUTBOX_DIR = "outbox"
REJECTED_DIR = "rejected"
RETRY_FILE = "retry.json"
REJECTED_KEEP = 20
RETRY_BASE_SECONDS = 10.0
_MAGIC = b"fleetgraph-outbox/1\n"
_NAME = re.compile(r"^(?P<seq>\d{12})-(?P<report_id>[A-Za-z0-9][A-Za-z0-9._:-]*)\.report$")
_RETRYABLE = {401, 403, 408, 429}

Sender = Callable[[bytes], SendResult]  # report JSON -> the collector's acknowledgement


class Ledger(Protocol):
    """What the outbox reports to its owner (agent.runner keeps the delta ledger with it)."""

    def acknowledged(self, meta: Mapping[str, Any], result: SendResult) -> None: ...

    def rejected(self, meta: Mapping[str, Any], reason: str) -> None: ...

    def dropped(self, meta: Mapping[str, Any], why: str) -> None: ...

    def base_refused(self, meta: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Entry:
    path: Path
    seq: int
    report_id: str
    size: int  # bytes on disk

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class FlushResult:
    delivered: list[tuple[str, int]] = field(default_factory=list)  # (report_id, HTTP status)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (report_id, reason)
    base_refused: list[str] = field(default_factory=list)  # report ids dropped: base unknown
    error: str | None = None  # why delivery stopped (transient; the rest stays queued)
    deferred_until: float | None = None  # backing off: nothing was tried before this time
    pending: int = 0  # reports still queued


class Outbox:
    def __init__(self, state_dir: Path, max_bytes: int, *, retry_max: float = 900.0,
                 rand: random.Random | None = None):
        self.dir = Path(state_dir) / OUTBOX_DIR
        self.rejected_dir = self.dir / REJECTED_DIR
        self.max_bytes = max_bytes
        self.retry_max = retry_max
        self._rand = rand or random.Random()
        for d in (Path(state_dir), self.dir, self.rejected_dir):
            if not d.is_dir():
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask

    # -- reading --------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Queued reports, oldest first."""
        found = []
        for name in os.listdir(self.dir):
            m = _NAME.match(name)
            if m is None:
                continue
            path = self.dir / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            found.append(Entry(path, int(m["seq"]), m["report_id"], size))
        return sorted(found, key=lambda e: e.seq)

    def read(self, entry: Entry) -> tuple[dict[str, Any], bytes]:
        """(metadata, report JSON) of a queued report."""
        return _parse(entry.path.read_bytes(), entry.path)

    def metas(self) -> list[dict[str, Any]]:
        out = []
        for entry in self.entries():
            try:
                out.append(self.read(entry)[0])
            except (OSError, ValueError):
                continue  # damaged: flush moves it to rejected/
        return out

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    # -- queuing --------------------------------------------------------------------------
    def enqueue(self, report_json: bytes, meta: Mapping[str, Any], ledger: Ledger) -> Entry:
        """Spool a report durably (before any attempt to send it), then apply supersede and cap."""
        meta = dict(meta)
        report_id = str(meta["report_id"])
        older = self.entries()
        seq = (older[-1].seq + 1) if older else 1
        path = self.dir / f"{seq:012d}-{report_id}.report"
        data = _MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + gzip.compress(report_json, 6)
        write_private_atomically(path, data)
        entry = Entry(path, seq, report_id, len(data))
        if meta.get("mode") == "full" and older:
            for old in older:
                self._remove(old)
            log.info("queued full report %s supersedes %d older queued report(s) (%s); their intermediate "
                     "states will not be in the CMDB history", report_id, len(older),
                     ", ".join(o.report_id for o in older))
        self._apply_cap(entry, ledger)
        return entry

    def _apply_cap(self, newest: Entry, ledger: Ledger) -> None:
        entries = self.entries()
        total = sum(e.size for e in entries)
        while total > self.max_bytes:
            victims = [e for e in entries if e.seq != newest.seq][:1]
            if not victims:
                log.warning("outbox: report %s alone (%d bytes) is over agent.outbox_max_bytes (%d); kept",
                            newest.report_id, newest.size, self.max_bytes)
                return
            victim = victims[0]
            meta = self._meta_or_stub(victim)
            drop = [victim]
            if meta.get("mode") == "full":  # deltas on a base that will never arrive go with it
                drop += [e for e in entries if e.seq != newest.seq and e is not victim
                         and self._meta_or_stub(e).get("base_report_id") == victim.report_id]
            for e in drop:
                why = (f"outbox over agent.outbox_max_bytes ({total} > {self.max_bytes} bytes)"
                       if e is victim else f"its base report {victim.report_id} was dropped")
                log.warning("outbox: dropping queued report %s (%d bytes): %s", e.report_id, e.size, why)
                ledger.dropped(self._meta_or_stub(e), why)
                self._remove(e)
                total -= e.size
            entries = [e for e in entries if e not in drop]

    # -- sending --------------------------------------------------------------------------
    def flush(self, send: Sender, ledger: Ledger, *, respect_backoff: bool = True) -> FlushResult:
        """Send queued reports oldest first until the outbox is empty or a transient failure."""
        result = FlushResult()
        retry = self.retry_state()
        if respect_backoff and retry.get("next_attempt_at", 0) > time.time() and self.entries():
            result.deferred_until = retry["next_attempt_at"]
            result.error = retry.get("last_error")
            result.pending = len(self.entries())
            return result
        while True:
            entries = self.entries()
            if not entries:
                break
            entry = entries[0]
            try:
                meta, body = self.read(entry)
            except (OSError, ValueError) as exc:
                self._reject(entry, {"report_id": entry.report_id}, f"unreadable outbox file: {exc}", ledger)
                result.rejected.append((entry.report_id, str(exc)))
                continue
            try:
                sent = send(body)
            except ServerRejected as exc:
                if exc.status in _RETRYABLE or exc.status >= 500:
                    result.error = str(exc)
                    self._back_off(retry, str(exc))
                    break
                if getattr(exc, "code", None) == "base_unknown" and meta.get("mode") == "delta":
                    result.base_refused += self._drop_base(meta, entries, ledger, str(exc))
                    continue
                reason = str(exc)
                self._reject(entry, meta, reason, ledger)
                result.rejected.append((entry.report_id, reason))
                continue
            except ServerUnreachable as exc:
                result.error = str(exc)
                self._back_off(retry, str(exc))
                break
            ledger.acknowledged(meta, sent)
            self._remove(entry)
            result.delivered.append((entry.report_id, sent.status))
            if retry:
                retry = {}
                (self.dir / RETRY_FILE).unlink(missing_ok=True)
        result.pending = len(self.entries())
        return result

    def retry_state(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.dir / RETRY_FILE).read_text())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def next_attempt_at(self) -> float | None:
        """When the backoff allows the next try, if anything is queued (epoch seconds)."""
        if not self.entries():
            return None
        return float(self.retry_state().get("next_attempt_at", 0.0))

    def _back_off(self, retry: dict[str, Any], error: str) -> None:
        attempts = int(retry.get("attempts", 0)) + 1
        delay = self._rand.uniform(0, min(self.retry_max, RETRY_BASE_SECONDS * 2 ** min(attempts, 30)))
        retry.update(attempts=attempts, next_attempt_at=time.time() + delay, last_error=error[:500])
        write_private_atomically(self.dir / RETRY_FILE, json.dumps(retry).encode())
        log.warning("outbox: delivery failed (attempt %d), %d report(s) queued, next try in %.0fs: %s",
                    attempts, len(self.entries()), delay, error)

    def _drop_base(self, meta: Mapping[str, Any], entries: list[Entry], ledger: Ledger, error: str) -> list[str]:
        base = meta.get("base_report_id")
        dropped = []
        ledger.base_refused(meta)
        for e in entries:
            m = self._meta_or_stub(e)
            if m.get("mode") == "delta" and m.get("base_report_id") == base:
                log.warning("outbox: dropping delta report %s: %s", e.report_id, error)
                self._remove(e)
                dropped.append(e.report_id)
        return dropped

    def _reject(self, entry: Entry, meta: Mapping[str, Any], reason: str, ledger: Ledger) -> None:
        log.error("outbox: report %s refused by the collector, moved to %s: %s",
                  entry.report_id, self.rejected_dir, reason)
        ledger.rejected(meta, reason)
        note = {"report_id": entry.report_id, "reason": reason, "rejected_at": datetime.now(UTC).isoformat()}
        write_private_atomically(self.rejected_dir / (entry.path.stem + ".reason"), json.dumps(note).encode())
        os.replace(entry.path, self.rejected_dir / entry.name)
        fsync_dir(self.dir)
        fsync_dir(self.rejected_dir)
        kept = sorted(p for p in self.rejected_dir.iterdir() if p.suffix == ".report")
        for old in kept[:-REJECTED_KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".reason").unlink(missing_ok=True)

    def _remove(self, entry: Entry) -> None:
        entry.path.unlink(missing_ok=True)
        fsync_dir(self.dir)

    def _meta_or_stub(self, entry: Entry) -> dict[str, Any]:
        try:
            return self.read(entry)[0]
        except (OSError, ValueError):
            return {"report_id": entry.report_id}

    def remove_stale_temporaries(self) -> None:
        """Delete writes a crash cut short. Only under the state lock: another run may be writing."""
        for d in (self.dir, self.dir.parent):
            for name in os.listdir(d):
                if name.startswith(".") and name.endswith(".tmp"):
                    (d / name).unlink(missing_ok=True)


def _parse(data: bytes, path: Path) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path} is not an outbox file")
    header, sep, payload = data[len(_MAGIC):].partition(b"\n")
    if not sep:
        raise ValueError(f"{path} is truncated")
    meta = json.loads(header)
    return meta, gzip.decompress(payload)
