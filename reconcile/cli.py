"""`fleetgraph reconcile --dry-run REPORT`: the change set a report would cause, printed, nothing written.

The report is validated exactly as the collector's ingest validates it (so a report this command
accepts, the collector accepts), then reconciled against the configured store with reads only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from cmdb.config import Config, ConfigError

MAX_REPORT_FILE = 64 * 1024 * 1024  # the collector's default max_report_bytes


def register(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser("reconcile", help="show what a report would change in the CMDB (dry run)",
                         description="Validate a report file (JSON, or gzip) as the collector does and print "
                                     "the change set it would cause against the store. Nothing is written.")
    rec.add_argument("report", metavar="REPORT", help="a report file (as `fleetgraph agent run --output` writes)")
    rec.add_argument("--dry-run", action="store_true", required=True,
                     help="required: this command never writes (say so explicitly)")
    rec.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    rec.add_argument("--limit", type=int, default=10, help="changes shown per kind (default 10)")
    rec.add_argument("--json", action="store_true", help="print the counts as JSON")
    rec.set_defaults(func=cmd_reconcile)


def read_report_file(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_REPORT_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"report file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"report file {path} cannot be read: {exc.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as gz:
                data = gz.read(MAX_REPORT_FILE + 1)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"report file {path} is not valid gzip ({exc})") from None
    if len(data) > MAX_REPORT_FILE:
        raise ConfigError(f"report file {path} is larger than {MAX_REPORT_FILE} bytes")
    return data


def cmd_reconcile(args: argparse.Namespace, config: Config) -> int:
    from cmdb.cli_ci import open_configured_store
    from cmdb.report import ReportError, decode_report
    from reconcile.dryrun import describe
    from reconcile.engine import compute_changes

    body = read_report_file(Path(args.report))
    try:
        report = decode_report(body)
    except ReportError as exc:
        print(f"fleetgraph: the collector would refuse this report: {exc.field}: {exc.rule}", file=sys.stderr)
        return 1
    store = open_configured_store(config)
    try:
        changes = compute_changes(store, report)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"report_id": report.report_id, **changes.summary()}, indent=2))
    else:
        print(describe(changes, limit=max(1, args.limit)))
    return 0
