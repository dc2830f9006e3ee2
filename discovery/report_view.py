"""What `fleetgraph scan` shows: a rich progress bar on a terminal, one plain line per finished host
scan otherwise (logs, CI, cron mail), and a summary table at the end: hosts found, identified,
failed and why. Never a secret: only addresses, protocols, reasons and identification."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TextIO

from discovery.base import HostScan
from discovery.profiles import ScanPlan


class ScanView:
    def __init__(self, plan: ScanPlan, out: TextIO):
        self.plan, self.out = plan, out
        self.tty = out.isatty()
        self._progress: Any = None
        self._task: Any = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        total = len(self.plan.addresses) * len(self.plan.protocols)
        if not self.tty:
            print(f"scan {self.plan.name}: {len(self.plan.addresses)} hosts, {', '.join(self.plan.protocols)}",
                  file=self.out, flush=True)
            yield
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("scan {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(file=self.out), transient=True) as progress:
            self._progress = progress
            self._task = progress.add_task(self.plan.name, total=total)
            try:
                yield
            finally:
                self._progress = None

    def host_done(self, scan: HostScan, delivery_error: str | None) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
            if scan.report is None or delivery_error:
                self._progress.console.print(f"[yellow]{_line(scan, delivery_error)}[/]", highlight=False)
            return
        print(_line(scan, delivery_error), file=self.out, flush=True)

    def print_summary(self, summary: Any) -> None:
        rows = []
        for host in summary.hosts.values():
            what = host.summary
            ident = " ".join(str(what[k]) for k in ("vendor", "model", "os", "type") if what.get(k)) or "-"
            protocols = ", ".join(f"{p} ok" if v == "ok" else f"{p}: {v}" for p, v in sorted(host.protocols.items()))
            rows.append((host.address, "yes" if host.found else "no", ident[:60], protocols))
        head = (f"{len(summary.hosts)} hosts, {summary.found} found, {summary.identified} identified, "
                f"{summary.failed} not found, in {summary.duration_s:.1f} s")
        if self.tty:
            from rich.console import Console
            from rich.table import Table

            table = Table(title=f"scan {summary.plan}: {head}")
            for column in ("host", "found", "identified as", "protocols"):
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            Console(file=self.out).print(table)
        else:
            print(f"scan {summary.plan}: {head}", file=self.out)
            for row in rows:
                print("  " + "  ".join(row), file=self.out)
        for error in summary.delivery_errors:
            print(f"not delivered: {error}", file=self.out)
        self.out.flush()


def _line(scan: HostScan, delivery_error: str | None) -> str:
    if scan.report is None:
        return f"{scan.address} {scan.protocol}: failed: {scan.error or 'no answer'}"
    what = " ".join(str(scan.summary[k]) for k in ("vendor", "model", "os") if scan.summary.get(k))
    sent = f"; NOT DELIVERED: {delivery_error}" if delivery_error else ""
    return f"{scan.address} {scan.protocol}: ok, {len(scan.report.items)} items{(' (' + what + ')') if what else ''}{sent}"
