"""One agent run: identify, collect, build the report, optionally write it, send it.

Prints nothing: the CLI decides what to show from the RunResult.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.builder import build_report, count_by_class
from agent.context import LocalContext
from agent.identity import load_or_create_agent_id
from agent.transport import send_report
from cmdb.report import CollectorStatus, encode_report


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

    @property
    def complete(self) -> bool:
        """Every applicable collector succeeded."""
        return all(s.status != "failed" for s in self.collectors.values())


def _write_atomically(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_once(server_url: str | None, token: str | None, state_dir: Path, *,
             output: Path | None = None, dry_run: bool = False, timeout: float = 30) -> RunResult:
    """Collect this machine and send the report (unless `dry_run`); write it to `output`
    (JSON; gzip when the name ends in .gz) when given. Raises agent.transport.TransportError
    when the report could not be delivered; the file is written before sending."""
    if not dry_run and not (server_url and token):
        raise ValueError("a server URL and an agent token are needed to send; use dry_run to only collect")
    agent_id = load_or_create_agent_id(Path(state_dir))
    report = build_report(LocalContext(agent_id=agent_id))
    body = encode_report(report)
    if output is not None:
        _write_atomically(output, gzip.compress(body) if str(output).endswith(".gz") else body)
    bytes_sent = status = None
    if not dry_run:
        sent = send_report(server_url, token, body, timeout)  # type: ignore[arg-type]
        bytes_sent, status = sent.bytes_sent, sent.status
    return RunResult(report_id=report.report_id, agent_id=agent_id, counts=count_by_class(report),
                     collectors=dict(report.collectors), bytes_raw=len(body), bytes_sent=bytes_sent,
                     http_status=status, output=Path(output) if output is not None else None,
                     report_json=body)
