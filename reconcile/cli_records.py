"""`fleetgraph change ...` and `fleetgraph incident ...`: change records and incidents on the
configured store (cmdb.records). The actor of every write is --actor (default: the OS user).

    fleetgraph change create --type normal --title "..." --ci ID --start ISO --end ISO [--expect ATTR=VALUE]
    fleetgraph change list [--state S] [--ci ID] [--open]
    fleetgraph change show CHG0000001
    fleetgraph change move CHG0000001 assess|authorize|scheduled|implement|review|closed|cancelled
    fleetgraph change approve CHG0000001          (authorize -> scheduled)
    fleetgraph change plan CHG0000001 [--start ISO --end ISO] [--ci ID] [--expect ATTR=VALUE]
    fleetgraph change verify                      (verify the changes whose window has closed)
    fleetgraph incident create --title "..." [--impact high] [--urgency low] [--ci ID]
    fleetgraph incident list [--state S] [--ci ID] [--open]
    fleetgraph incident show INC0000001
    fleetgraph incident update INC0000001 [--state S] [--resolution TEXT] [--assignee NAME] ...
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from cmdb.cli_ci import open_configured_store, parse_time, resolve_id
from cmdb.config import Config, ConfigError
from cmdb.records import (
    CHANGE_STATES,
    CHANGE_TYPES,
    INCIDENT_STATES,
    ChangeRecord,
    ExpectedOutcome,
    Incident,
    NewChange,
    NewIncident,
    RecordError,
    parse_level,
)
from cmdb.store import Store

CHANGE_HELP = "change records: create, plan, approve, move along, verify"
INCIDENT_HELP = "incidents: create, list, update"


def _common(parser: argparse.ArgumentParser, writes: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    if writes:
        parser.add_argument("--actor", default=None, help="who does this (default: the OS user)")


def register(sub: argparse._SubParsersAction) -> None:
    change = sub.add_parser("change", help=CHANGE_HELP)
    cs = change.add_subparsers(dest="change_command", metavar="ACTION", required=True)
    create = cs.add_parser("create", help="a new change record (state new)")
    create.add_argument("--type", choices=CHANGE_TYPES, default="normal")
    create.add_argument("--title", required=True)
    create.add_argument("--description")
    _plan_args(create)
    _common(create, writes=True)
    create.set_defaults(func=cmd_change_create)
    plan = cs.add_parser("plan", help="set a change's window, CIs and expected outcome (before approval)")
    plan.add_argument("number")
    _plan_args(plan)
    _common(plan, writes=True)
    plan.set_defaults(func=cmd_change_plan)
    ls = cs.add_parser("list", help="change records, newest first")
    _list_args(ls, CHANGE_STATES)
    ls.set_defaults(func=cmd_change_list)
    show = cs.add_parser("show", help="one change with its evidence and events")
    show.add_argument("number")
    _common(show)
    show.set_defaults(func=cmd_change_show)
    move = cs.add_parser("move", help="move a change to its next state (or cancelled)")
    move.add_argument("number")
    move.add_argument("to", choices=CHANGE_STATES)
    move.add_argument("--note")
    _common(move, writes=True)
    move.set_defaults(func=cmd_change_move)
    approve = cs.add_parser("approve", help="approve a change waiting for authorization (-> scheduled)")
    approve.add_argument("number")
    approve.add_argument("--note")
    _common(approve, writes=True)
    approve.set_defaults(func=cmd_change_move, to="scheduled")
    verify = cs.add_parser("verify", help="verify every approved change whose window has closed")
    _common(verify)
    verify.set_defaults(func=cmd_change_verify)

    incident = sub.add_parser("incident", help=INCIDENT_HELP)
    isub = incident.add_subparsers(dest="incident_command", metavar="ACTION", required=True)
    create = isub.add_parser("create", help="open an incident")
    create.add_argument("--title", required=True)
    create.add_argument("--description")
    create.add_argument("--impact", default="medium", help="high, medium or low (default medium)")
    create.add_argument("--urgency", default="medium", help="high, medium or low (default medium)")
    create.add_argument("--ci", action="append", default=[], metavar="ID", help="an affected CI (repeat)")
    _common(create, writes=True)
    create.set_defaults(func=cmd_incident_create)
    ls = isub.add_parser("list", help="incidents, newest first")
    _list_args(ls, INCIDENT_STATES)
    ls.set_defaults(func=cmd_incident_list)
    show = isub.add_parser("show", help="one incident with its drift and events")
    show.add_argument("number")
    _common(show)
    show.set_defaults(func=cmd_incident_show)
    update = isub.add_parser("update", help="move an incident, re-prioritise, assign, resolve")
    update.add_argument("number")
    update.add_argument("--state", choices=INCIDENT_STATES)
    update.add_argument("--impact")
    update.add_argument("--urgency")
    update.add_argument("--assignee")
    update.add_argument("--resolution")
    update.add_argument("--note")
    _common(update, writes=True)
    update.set_defaults(func=cmd_incident_update)


def _plan_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="ISO8601", help="planned window start (with a timezone)")
    parser.add_argument("--end", metavar="ISO8601", help="planned window end")
    parser.add_argument("--ci", action="append", default=[], metavar="ID", help="an affected CI (repeat)")
    parser.add_argument("--expect", action="append", default=[], metavar="ATTR=VALUE|ATTR~REGEX",
                        help="expected outcome: the attribute takes VALUE (JSON or text) or matches REGEX")


def _list_args(parser: argparse.ArgumentParser, states: tuple[str, ...]) -> None:
    parser.add_argument("--state", choices=states)
    parser.add_argument("--ci", metavar="ID", help="only records naming this CI (id or unique prefix)")
    parser.add_argument("--open", action="store_true", help="only open records")
    parser.add_argument("--limit", type=int, default=100)
    _common(parser)


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return args.actor[:128]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _expected(raw: list[str]) -> tuple[ExpectedOutcome, ...]:
    out = []
    for entry in raw:
        if "~" in entry and ("=" not in entry or entry.index("~") < entry.index("=")):
            name, _, pattern = entry.partition("~")
            data: dict[str, Any] = {"attribute": name.strip(), "pattern": pattern}
        elif "=" in entry:
            name, _, value = entry.partition("=")
            try:
                parsed: Any = json.loads(value)
            except ValueError:
                parsed = value
            data = {"attribute": name.strip(), "value": parsed}
        else:
            raise ConfigError(f"--expect {entry!r}: expected ATTR=VALUE or ATTR~REGEX")
        try:
            out.append(ExpectedOutcome.from_json(data))
        except RecordError as exc:
            raise ConfigError(f"--expect {entry!r}: {exc}") from None
    return tuple(out)


def _cis(store: Store, refs: list[str]) -> tuple[str, ...] | None:
    ids = []
    for ref in refs:
        ci_id = resolve_id(store, ref)
        if ci_id is None:
            return None
        ids.append(ci_id)
    return tuple(ids)


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    start = parse_time(args.start, "--start") if args.start else None
    end = parse_time(args.end, "--end") if args.end else None
    return start, end


def _run(args: argparse.Namespace, config: Config, action: Any) -> int:
    store = open_configured_store(config)
    try:
        return action(store)
    except RecordError as exc:
        print(f"fleetgraph: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _print(args: argparse.Namespace, record: Any, line: str, events: list | None = None) -> None:
    if args.json:
        data = msgspec.to_builtins(record)
        if events is not None:
            data["events"] = msgspec.to_builtins(events)
        print(json.dumps(data, indent=2, default=str))
    else:
        print(line)


def _change_line(c: ChangeRecord) -> str:
    window = f"{c.planned_start:%Y-%m-%d %H:%M}..{c.planned_end:%H:%M}" if c.planned_start and c.planned_end else "-"
    verified = f" verified={c.verification}" if c.verification else ""
    return (f"{c.number}  {c.state:<9} {c.type:<9} {window:<28} cis={len(c.cis)} evidence={len(c.evidence)}"
            f"{verified}  {c.title}")


def _incident_line(i: Incident) -> str:
    return f"{i.number}  {i.state:<11} P{i.priority} cis={len(i.cis)} drift={len(i.drift)}  {i.title}"


def cmd_change_create(args: argparse.Namespace, config: Config) -> int:
    start, end = _window(args)
    expected = _expected(args.expect)

    def act(store: Store) -> int:
        cis = _cis(store, args.ci)
        if cis is None:
            return 1
        change = store.create_change(NewChange(args.type, args.title, _actor(args), args.description, start, end,
                                               expected, cis))
        _print(args, change, f"created {_change_line(change)}")
        return 0
    return _run(args, config, act)


def cmd_change_plan(args: argparse.Namespace, config: Config) -> int:
    start, end = _window(args)
    expected = _expected(args.expect) if args.expect else None

    def act(store: Store) -> int:
        cis = _cis(store, args.ci)
        if cis is None:
            return 1
        change = store.update_change(args.number, _actor(args), planned_start=start, planned_end=end,
                                     add_cis=cis, expected=expected)
        _print(args, change, _change_line(change))
        return 0
    return _run(args, config, act)


def cmd_change_list(args: argparse.Namespace, config: Config) -> int:
    return _list(args, config, "list_changes", _change_line)


def cmd_incident_list(args: argparse.Namespace, config: Config) -> int:
    return _list(args, config, "list_incidents", _incident_line)


def _list(args: argparse.Namespace, config: Config, method: str, line: Any) -> int:
    if not 1 <= args.limit <= 100_000:
        raise ConfigError("--limit: must be between 1 and 100000")

    def act(store: Store) -> int:
        ci_id = None
        if args.ci:
            ci_id = resolve_id(store, args.ci)
            if ci_id is None:
                return 1
        records = getattr(store, method)(state=args.state, ci_id=ci_id, open_only=args.open, limit=args.limit)
        if args.json:
            print(json.dumps(msgspec.to_builtins(records), indent=2, default=str))
        else:
            for record in records:
                print(line(record))
            if not records:
                print("no records", file=sys.stderr)
        return 0
    return _run(args, config, act)


def cmd_change_show(args: argparse.Namespace, config: Config) -> int:
    return _show(args, config, "get_change", _change_line)


def cmd_incident_show(args: argparse.Namespace, config: Config) -> int:
    return _show(args, config, "get_incident", _incident_line)


def _show(args: argparse.Namespace, config: Config, method: str, line: Any) -> int:
    def act(store: Store) -> int:
        record = getattr(store, method)(args.number)
        if record is None:
            print(f"fleetgraph: no record {args.number[:40]}", file=sys.stderr)
            return 1
        events = store.record_events(record=record.number, limit=1000)
        text = [line(record)] + [f"  {e.at:%Y-%m-%d %H:%M:%S} {e.event:<18} {e.actor:<12} "
                                 f"{json.dumps(e.data, default=str)[:160]}" for e in events]
        _print(args, record, "\n".join(text), events)
        return 0
    return _run(args, config, act)


def cmd_change_move(args: argparse.Namespace, config: Config) -> int:
    def act(store: Store) -> int:
        change = store.transition_change(args.number, args.to, _actor(args), args.note)
        _print(args, change, _change_line(change))
        return 0
    return _run(args, config, act)


def cmd_change_verify(args: argparse.Namespace, config: Config) -> int:
    from reconcile.records import verify_due_changes

    def act(store: Store) -> int:
        done = verify_due_changes(store, datetime.now(UTC))
        if args.json:
            print(json.dumps(msgspec.to_builtins(done), indent=2, default=str))
        for change in done:
            if not args.json:
                print(_change_line(change))
        if not done and not args.json:
            print("no change is due for verification", file=sys.stderr)
        return 0
    return _run(args, config, act)


def cmd_incident_create(args: argparse.Namespace, config: Config) -> int:
    def act(store: Store) -> int:
        cis = _cis(store, args.ci)
        if cis is None:
            return 1
        incident = store.create_incident(NewIncident(args.title, _actor(args), parse_level("--impact", args.impact),
                                                     parse_level("--urgency", args.urgency), args.description, cis))
        _print(args, incident, f"opened {_incident_line(incident)}")
        return 0
    return _run(args, config, act)


def cmd_incident_update(args: argparse.Namespace, config: Config) -> int:
    def act(store: Store) -> int:
        incident = store.update_incident(
            args.number, _actor(args), state=args.state,
            impact=None if args.impact is None else parse_level("--impact", args.impact),
            urgency=None if args.urgency is None else parse_level("--urgency", args.urgency),
            assignee=args.assignee, resolution=args.resolution, note=args.note)
        _print(args, incident, _incident_line(incident))
        return 0
    return _run(args, config, act)
