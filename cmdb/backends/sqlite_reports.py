"""Report-log reads that need no body: `SQLiteStore.report_head`."""

from __future__ import annotations

import msgspec

from cmdb.store import ReportHead


class _Mode(msgspec.Struct):
    mode: str = "full"


_mode_of = msgspec.json.Decoder(_Mode).decode


class ReportReads:
    def report_head(self, report_id: str) -> ReportHead | None:
        row = self._reader().execute(  # type: ignore[attr-defined]
            "SELECT source_kind, source_id, mode FROM report WHERE report_id = ?", (report_id,)).fetchone()
        if row is None:
            return None
        mode = row[2]
        if mode is None:  # stored before schema version 8: the body says
            body = self._reader().execute(  # type: ignore[attr-defined]
                "SELECT body FROM report WHERE report_id = ?", (report_id,)).fetchone()[0]
            mode = _mode_of(body).mode
        return ReportHead(row[0], row[1], mode)
