"""Where a scan's reports go: the collector's ingest API (what a scan does in production, with the
scanner's enrolled credential), or a folder of JSON files (`--output DIR`: look before sending,
or carry reports across an air gap and post them later).

Sending reuses the agent's transport (gzip, TLS with a pinned CA, no redirects, clear errors);
a blocking post runs in a thread so that the scan goes on meanwhile. A transient failure
(collector unreachable, 5xx, 429) is retried a few times with backoff; a refusal (4xx) is not:
it is reported for the host and the scan goes on.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from cmdb.report import Report, encode_report


class SinkError(Exception):
    """The report could not be delivered; the message says why and what to do."""


class ReportSink(Protocol):
    async def send(self, report: Report) -> None: ...


class CollectorSink:
    def __init__(self, server: str, token: str, *, ca_file: str | None = None, timeout: float = 30.0,
                 attempts: int = 3, concurrency: int = 4):
        self.server, self._token, self.ca_file, self.timeout = server, token, ca_file, timeout
        self.attempts = attempts
        self._limit = asyncio.Semaphore(concurrency)
        self.sent = 0
        self.duplicates = 0

    def __repr__(self) -> str:
        return f"CollectorSink({self.server!r})"  # never the token

    async def send(self, report: Report) -> None:
        from agent.transport import ServerRejected, ServerUnreachable, send_report

        body = encode_report(report)
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._limit:
                    result = await asyncio.to_thread(send_report, self.server, self._token, body, self.timeout,
                                                     cafile=self.ca_file)
            except ServerRejected as exc:
                if exc.status >= 500 or exc.status == 429:
                    if attempt < self.attempts:
                        await asyncio.sleep(delay)
                        delay *= 2
                        continue
                raise SinkError(f"collector refused the report: {exc}") from None
            except ServerUnreachable as exc:
                if attempt < self.attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise SinkError(str(exc)) from None
            self.sent += 1
            self.duplicates += int(result.duplicate)
            return


class DirectorySink:
    """One `<report_id>.json` per report, written atomically, owner-only (reports name hosts)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sent = 0

    async def send(self, report: Report) -> None:
        path = self.folder / f"{report.report_id}.json"
        tmp = path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(encode_report(report))
            os.replace(tmp, path)
        except OSError as exc:
            raise SinkError(f"cannot write {path}: {exc.strerror}") from None
        self.sent += 1
