"""`fleetgraph drift list`: the drift events (reconcile.drift) on the configured store, read-only."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cmdb.changes import DriftEvent
from cmdb.cli_ci import open_configured_store, parse_time, resolve_id
from cmdb.config import Config, ConfigError

HELP = "list drift: changes of tracked attributes and sets of existing CIs"


def register(sub: argparse._SubParsersAction) -> None:
    drift = sub.add_parser("drift", help=HELP)
    drift_sub = drift.add_subparsers(dest="drift_command", metavar="ACTION", required=True)
    ls = drift_sub.add_parser("list", help="drift events, oldest first")
    ls.add_argument("--ci", metavar="ID", help="only this CI's (id or a unique prefix), including its "
                                               "packages', disks' and services' changes")
    ls.add_argument("--since", metavar="ISO8601", help="observed at or after this time")
    ls.add_argument("--until", metavar="ISO8601", help="observed at or before this time")
    ls.add_argument("--limit", type=int, default=1000)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    ls.set_defaults(func=cmd_list)


def drift_as_dict(e: DriftEvent) -> dict[str, Any]:
    p = e.provenance
    return {"id": e.drift_id, "ci_id": e.ci_id, "class": e.ci_class, "attribute": e.attribute,
            "before": e.before, "after": e.after, "related_ci": e.related_ci,
            "source": f"{p.source_kind}:{p.source_id}", "report_id": p.report_id,
            "observed_at": p.observed_at.isoformat(),
            "recorded_at": e.recorded_at.isoformat() if e.recorded_at else None}


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):  # a set member's summary: its name and version say most
        named = [str(value[k]) for k in ("name", "version") if k in value]
        return " ".join(named) if named else json.dumps(value, sort_keys=True)
    return json.dumps(value) if isinstance(value, list) else str(value)


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    if not 1 <= args.limit <= 100_000:
        raise ConfigError("--limit: must be between 1 and 100000")
    store = open_configured_store(config)
    try:
        ci_id = None
        if args.ci is not None:
            ci_id = resolve_id(store, args.ci)
            if ci_id is None:
                return 1
        events = store.drift_events(ci_id=ci_id, since=since, until=until, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([drift_as_dict(e) for e in events], indent=2))
        return 0
    for e in events:
        p = e.provenance
        print(f"{p.observed_at.strftime('%Y-%m-%d %H:%M:%S')}  {e.ci_class:<16} {e.ci_id[:12]}  "
              f"{e.attribute:<16} {_short(e.before)} -> {_short(e.after)}  "
              f"({p.source_kind}:{p.source_id}, report {p.report_id})")
    print(f"({len(events)} drift events)", file=sys.stderr)
    return 0
