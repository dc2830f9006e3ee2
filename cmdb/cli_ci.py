"""`fleetgraph ci list|show|history`: read-only queries on the configured store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from cmdb.config import Config, ConfigError
from cmdb.model import CI_CLASSES
from cmdb.store import CI, Store

# Attributes that name a CI for people, in order of preference.
LABEL_ATTRIBUTES = ("hostname", "name", "address", "fqdn", "sysname", "model")


def register(sub: argparse._SubParsersAction) -> None:
    ci = sub.add_parser("ci", help="query configuration items")
    ci_sub = ci.add_subparsers(dest="ci_command", metavar="ACTION", required=True)

    ls = ci_sub.add_parser("list", help="list CIs by class and attribute")
    ls.add_argument("--class", dest="ci_class", choices=sorted(CI_CLASSES), help="only this class")
    ls.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                    help="attribute equality filter (repeatable)")
    ls.add_argument("--state", choices=("active", "retired", "all"), default="active")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    ls.set_defaults(func=cmd_list)

    show = ci_sub.add_parser("show", help="one CI: attributes with provenance, identifiers, relations")
    show.add_argument("ci_id", help="CI id or a unique prefix of it")
    show.add_argument("--as-of", metavar="ISO8601", help="the CI as it stood at that time")
    show.add_argument("--json", action="store_true")
    show.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    show.set_defaults(func=cmd_show)

    hist = ci_sub.add_parser("history", help="the change records of one CI")
    hist.add_argument("ci_id", help="CI id or a unique prefix of it")
    hist.add_argument("--name", help="only this attribute, identifier kind or relation type")
    hist.add_argument("--since", metavar="ISO8601")
    hist.add_argument("--limit", type=int, default=1000)
    hist.add_argument("--json", action="store_true")
    hist.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    hist.set_defaults(func=cmd_history)

    from cmdb.cli_ci_ops import register_operations  # merge, split, undo, operations

    register_operations(ci_sub)


def open_configured_store(config: Config) -> Store:
    """The configured store, for reading: a missing database file is an error, never created."""
    from cmdb.backends import open_store, store_file

    try:
        path = store_file(config.collector.store)
        if path is not None and not path.is_file():
            raise ConfigError(f"no CMDB at {path} (start the collector once, or pass "
                              "--store sqlite:///path/to/cmdb.sqlite)")
        return open_store(config.collector.store)
    except ValueError as exc:
        raise ConfigError(f"collector.store: {exc}") from None


def parse_time(text: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option}: expected an ISO-8601 time such as 2026-11-21T10:00:00Z, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def label(ci: CI) -> str:
    for name in LABEL_ATTRIBUTES:
        attr = ci.attributes.get(name)
        if attr is not None and attr.value not in (None, ""):
            return str(attr.value)
    return ""


def resolve_id(store: Store, given: str) -> str | None:
    """The full id for an id or unique prefix; prints why not and returns None otherwise."""
    if not given or len(given) > 64 or any(c not in "0123456789abcdef" for c in given.lower()):
        print(f"fleetgraph: {given!r} is not a CI id (hex digits)", file=sys.stderr)
        return None
    matches = store.find_ci_ids(given.lower(), limit=2)
    if not matches:
        print(f"fleetgraph: no CI with id {given!r}", file=sys.stderr)
        return None
    if len(matches) > 1:
        print(f"fleetgraph: {given!r} matches several CIs; give more digits", file=sys.stderr)
        return None
    return matches[0]


def _value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "-" if value is None else str(value)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def ci_as_dict(ci: CI) -> dict[str, Any]:
    return {
        "id": ci.ci_id, "class": ci.ci_class, "state": ci.state, "merged_into": ci.merged_into,
        "first_seen": _iso(ci.first_seen), "last_seen": _iso(ci.last_seen),
        "identifiers": [{"kind": i.kind, "value": i.value} for i in ci.identifiers],
        "attributes": {
            name: {"value": a.value, "source": f"{a.provenance.source_kind}:{a.provenance.source_id}",
                   "observed_at": _iso(a.provenance.observed_at)}
            for name, a in sorted(ci.attributes.items())
        },
    }


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    filters: dict[str, Any] = {}
    for pair in args.attr:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--attr: expected NAME=VALUE, got {pair!r}")
        filters[name] = _json_or_text(value)
    if not 1 <= args.limit <= 100_000:
        raise ConfigError("--limit: must be between 1 and 100000")
    store = open_configured_store(config)
    try:
        cis = store.list_cis(args.ci_class, filters or None, None if args.state == "all" else args.state,
                             limit=args.limit, offset=max(0, args.offset))
    finally:
        store.close()
    if args.json:
        print(json.dumps([ci_as_dict(ci) for ci in cis], indent=2))
        return 0
    print(f"{'ID':<33} {'CLASS':<17} {'STATE':<8} {'LAST SEEN':<20} NAME")
    for ci in cis:
        print(f"{ci.ci_id:<33} {ci.ci_class:<17} {ci.state:<8} "
              f"{ci.last_seen.strftime('%Y-%m-%d %H:%M:%S'):<20} {label(ci)}")
    print(f"({len(cis)} CIs)", file=sys.stderr)
    return 0


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    store = open_configured_store(config)
    try:
        ci_id = resolve_id(store, args.ci_id)
        if ci_id is None:
            return 1
        if args.as_of:
            ci = store.ci_as_of(ci_id, parse_time(args.as_of, "--as-of"))
            if ci is None:
                print(f"fleetgraph: CI {ci_id} did not exist at {args.as_of}", file=sys.stderr)
                return 1
        else:
            ci = store.get_ci(ci_id)
        rels = store.relationships(ci_id)
        observations = [] if args.as_of or not args.json else store.observations(ci_id)
    finally:
        store.close()
    assert ci is not None
    if args.json:
        doc = ci_as_dict(ci)
        doc["relationships"] = [
            {"type": r.type, "from": r.from_ci, "to": r.to_ci, "state": r.state,
             "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen)} for r in rels
        ]
        if not args.as_of:  # every source's latest value per attribute, the current one first
            doc["observations"] = {}
            for o in observations:
                doc["observations"].setdefault(o.name, []).append(
                    {"value": o.value, "source": f"{o.provenance.source_kind}:{o.provenance.source_id}",
                     "report_id": o.provenance.report_id, "observed_at": _iso(o.provenance.observed_at),
                     "current": o.current})
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{ci.ci_class} {ci.ci_id}  [{ci.state}]  {label(ci)}")
    if ci.merged_into:
        print(f"  merged into {ci.merged_into} (fleetgraph ci operations {ci.ci_id})")
    print(f"  first seen {ci.first_seen.isoformat()}   last seen {ci.last_seen.isoformat()}")
    if ci.identifiers:
        print("  identifiers:")
        for ident in ci.identifiers:
            print(f"    {ident.kind:<14} {ident.value}")
    print("  attributes:")
    for name, attr in sorted(ci.attributes.items()):
        prov = attr.provenance
        print(f"    {name:<18} {_value(attr.value):<40} ({prov.source_kind}:{prov.source_id[:12]} "
              f"{prov.observed_at.strftime('%Y-%m-%d %H:%M:%S')})")
    by_type: dict[tuple[str, str], int] = {}
    for r in rels:
        direction = "out" if r.from_ci == ci.ci_id else "in"
        by_type[(r.type, direction)] = by_type.get((r.type, direction), 0) + 1
    if by_type:
        print("  relationships:")
        for (rtype, direction), n in sorted(by_type.items()):
            arrow = "->" if direction == "out" else "<-"
            print(f"    {arrow} {rtype:<14} {n}")
    return 0


def cmd_history(args: argparse.Namespace, config: Config) -> int:
    since = parse_time(args.since, "--since") if args.since else None
    store = open_configured_store(config)
    try:
        ci_id = resolve_id(store, args.ci_id)
        if ci_id is None:
            return 1
        rows = store.history(ci_id, name=args.name, since=since, limit=max(1, args.limit))
    finally:
        store.close()
    if args.json:
        print(json.dumps([
            {"seq": r.seq, "kind": r.kind, "name": r.name, "before": r.before, "after": r.after,
             "related_ci": r.related_ci, "source": f"{r.provenance.source_kind}:{r.provenance.source_id}",
             "report_id": r.provenance.report_id, "observed_at": _iso(r.provenance.observed_at),
             "recorded_at": _iso(r.recorded_at)} for r in rows], indent=2))
        return 0
    for r in rows:
        change = (f"{_value(r.before)} -> {_value(r.after)}" if r.kind.startswith("attr")
                  else (r.related_ci or _value(r.after)))
        print(f"{r.provenance.observed_at.strftime('%Y-%m-%d %H:%M:%S')}  {r.kind:<10} {r.name or '':<18} "
              f"{change}  ({r.provenance.source_kind}, report {r.provenance.report_id})")
    print(f"({len(rows)} records)", file=sys.stderr)
    return 0
