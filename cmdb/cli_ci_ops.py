"""`fleetgraph ci merge|split|undo|operations`: fix what identification got wrong, on the configured
store (Store.merge_cis, split_ci, undo_ci_operation, ci_operations; docs/reconcile.md "Merge and
split"). CI ids take unique prefixes, as the other `ci` commands. Every refusal names the reason,
exits 2 and changes nothing; every operation is recorded with its actor (--actor, default the OS
user) and can be undone once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from cmdb.cli_ci import label, open_configured_store, resolve_id
from cmdb.config import Config
from cmdb.operations import MAX_ACTOR_LENGTH, CIOperation, CIOperationRefused
from cmdb.store import Store

# How the counts of CIOperation.moved read, in the order they are printed.
MOVED_LABELS = {
    "identifiers_moved": "identifiers moved",
    "identifiers_rekeyed": "dependent identifiers re-keyed",
    "identifiers_dropped": "identifiers dropped (held already)",
    "attributes_moved": "attributes moved",
    "attributes_kept_as_observations": "attributes kept as observations",
    "observations_moved": "observations moved",
    "observations_dropped": "observations dropped (same source)",
    "dependents_merged": "dependent CIs merged",
    "dependents_rekeyed": "dependent CIs re-keyed",
    "dependents_moved": "dependent CIs moved",
    "relations_repointed": "relations re-pointed",
    "relations_folded": "relations folded into one",
    "relations_dropped": "relations dropped (self-loops)",
    "scopes_moved": "staleness scopes moved",
    "scopes_folded": "staleness scopes folded",
    "seen_records_moved": "staleness records moved",
    "seen_records_dropped": "staleness records dropped",
    "shared_identifiers_moved": "shared identifiers moved",
    "shared_identifiers_dropped": "shared identifiers dropped",
    "cis_restored": "CIs split back out",
    "identifiers_restored": "identifiers restored",
    "attributes_restored": "attributes restored",
    "relations_restored": "relations restored",
    "scopes_restored": "staleness scopes restored",
    "seen_records_restored": "staleness records restored",
    "shared_identifiers_restored": "shared identifiers restored",
}


def register_operations(ci_sub: argparse._SubParsersAction) -> None:
    merge = ci_sub.add_parser("merge", help="merge two CIs that are one thing (undoable)")
    merge.add_argument("survivor", metavar="SURVIVOR", help="the CI that stays (id or unique prefix)")
    merge.add_argument("absorbed", metavar="ABSORBED", help="the CI merged into it, then retired")
    _writer_options(merge)
    merge.set_defaults(func=cmd_merge)

    split = ci_sub.add_parser("split", help="split identifiers off a CI that is two things (undoable)")
    split.add_argument("ci_id", metavar="CI", help="the CI to split (id or unique prefix)")
    split.add_argument(
        "--identifier",
        action="append",
        required=True,
        metavar="KIND=VALUE",
        help="an identifier of the CI for the new CI to take (repeatable; see `ci show`)",
    )
    split.add_argument(
        "--source",
        action="append",
        metavar="KIND:ID",
        help="a source describing the other machine: its staleness scopes, and the dependents "
        "and relations only it saw, move too (repeatable; default: the sources that bound "
        "only identifiers being split off)",
    )
    _writer_options(split)
    split.set_defaults(func=cmd_split)

    undo = ci_sub.add_parser("undo", help="undo a merge or split")
    undo.add_argument(
        "operation", metavar="OPERATION", type=int, help="operation number (see `ci operations`)"
    )
    _writer_options(undo)
    undo.set_defaults(func=cmd_undo)

    ops = ci_sub.add_parser("operations", help="merges and splits, oldest first")
    ops.add_argument("ci_id", metavar="CI", nargs="?", help="only operations on this CI")
    ops.add_argument("--json", action="store_true")
    ops.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")
    ops.set_defaults(func=cmd_operations)


def _writer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", help="why (recorded with the operation)")
    parser.add_argument("--dry-run", action="store_true", help="print what would move; change nothing")
    parser.add_argument("--actor", help="who does this (default: the OS user)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store", dest="collector__store", metavar="URL", help="store URL (collector.store)")


def _actor(args: argparse.Namespace) -> str:
    if args.actor is not None:
        return args.actor  # checked by the store: a refusal says what is wrong with it
    try:
        return getpass.getuser()[:MAX_ACTOR_LENGTH]
    except (KeyError, OSError):
        return "cli"


def _fail(message: str) -> int:
    print(f"fleetgraph: {message}", file=sys.stderr)
    return 2


def _run(config: Config, action) -> int:
    """Open the store, run action(store) -> exit code; refusals and a busy store say so."""
    store = open_configured_store(config)
    try:
        return action(store)
    except CIOperationRefused as exc:
        return _fail(str(exc))
    except store.transient_errors as exc:
        return _fail(f"the store is busy or unreachable ({exc}); nothing was changed: try again")
    finally:
        store.close()


def cmd_merge(args: argparse.Namespace, config: Config) -> int:
    def action(store: Store) -> int:
        survivor, absorbed = resolve_id(store, args.survivor), resolve_id(store, args.absorbed)
        if survivor is None or absorbed is None:
            return 2
        names = {ci_id: _name(store, ci_id) for ci_id in (survivor, absorbed)}
        op = store.merge_cis(survivor, absorbed, _actor(args), args.reason, dry_run=args.dry_run)
        verb = "would merge" if op.dry_run else "merged"
        return _report(
            args, op, f"{verb} CI {absorbed} ({names[absorbed]}) into {survivor} ({names[survivor]})"
        )

    return _run(config, action)


def cmd_split(args: argparse.Namespace, config: Config) -> int:
    identifiers = []
    for raw in args.identifier:
        kind, sep, value = raw.partition("=")
        if not sep or not kind.strip() or not value:
            return _fail(f"--identifier: expected KIND=VALUE (e.g. mac=00:1a:2b:3c:4d:5e), got {raw!r}")
        identifiers.append((kind.strip(), value))
    sources = None
    if args.source:
        sources = []
        for raw in args.source:
            kind, sep, source_id = raw.partition(":")
            if not sep or not kind or not source_id:
                return _fail(f"--source: expected KIND:ID (e.g. agent:agent-01), got {raw!r}")
            sources.append((kind, source_id))

    def action(store: Store) -> int:
        ci_id = resolve_id(store, args.ci_id)
        if ci_id is None:
            return 2
        name = _name(store, ci_id)
        op = store.split_ci(
            ci_id, identifiers, _actor(args), args.reason, sources=sources, dry_run=args.dry_run
        )
        verb = "would split" if op.dry_run else "split"
        return _report(
            args,
            op,
            f"{verb} CI {ci_id} ({name}): the new CI {op.other_ci} takes "
            + ", ".join(f"{k}={v}" for k, v in identifiers),
        )

    return _run(config, action)


def cmd_undo(args: argparse.Namespace, config: Config) -> int:
    def action(store: Store) -> int:
        op = store.undo_ci_operation(args.operation, _actor(args), args.reason, dry_run=args.dry_run)
        verb = "would undo" if op.dry_run else "undid"
        what = "splitting CI {o} back out of {c}" if op.kind == "split" else "merging CI {o} back into {c}"
        return _report(
            args, op, f"{verb} operation {args.operation}, " + what.format(o=op.other_ci, c=op.ci_id)
        )

    return _run(config, action)


def cmd_operations(args: argparse.Namespace, config: Config) -> int:
    def action(store: Store) -> int:
        ci_id = None
        if args.ci_id is not None:
            ci_id = resolve_id(store, args.ci_id)
            if ci_id is None:
                return 2
        ops = store.ci_operations(ci_id)
        if args.json:
            print(json.dumps([operation_as_dict(op) for op in ops], indent=2))
            return 0
        print(f"{'SEQ':>5} {'KIND':<6} {'WHEN':<20} {'ACTOR':<12} {'CI':<33} {'OTHER CI':<33} STATUS")
        for op in ops:
            status = (
                f"undone by {op.undone_by}" if op.undone_by else f"undoes {op.undoes}" if op.undoes else ""
            )
            print(
                f"{op.seq:>5} {op.kind:<6} {op.at:%Y-%m-%d %H:%M:%S} {op.actor[:12]:<12} {op.ci_id:<33} "
                f"{op.other_ci:<33} {status}"
            )
        print(f"({len(ops)} operations)", file=sys.stderr)
        return 0

    return _run(config, action)


def _name(store: Store, ci_id: str) -> str:
    ci = store.get_ci(ci_id)
    if ci is None:
        return "?"
    return f"{ci.ci_class} {label(ci)}".strip()


def operation_as_dict(op: CIOperation) -> dict[str, Any]:
    return {
        "seq": op.seq,
        "kind": op.kind,
        "ci_id": op.ci_id,
        "other_ci": op.other_ci,
        "actor": op.actor,
        "reason": op.reason,
        "at": op.at.isoformat(),
        "undone_by": op.undone_by,
        "undoes": op.undoes,
        "moved": op.moved,
        "dependents": [list(p) for p in op.dependents],
        "dry_run": op.dry_run,
    }


def _report(args: argparse.Namespace, op: CIOperation, headline: str) -> int:
    if args.json:
        print(json.dumps(operation_as_dict(op), indent=2))
        return 0
    print(headline + ("" if op.dry_run else f": operation {op.seq}"))
    for key, text in MOVED_LABELS.items():
        if op.moved.get(key):
            print(f"  {text:<38} {op.moved[key]}")
    for key in sorted(set(op.moved) - MOVED_LABELS.keys()):
        print(f"  {key:<38} {op.moved[key]}")
    if op.dry_run:
        print("(dry run: nothing was changed)")
    elif op.undoes is None:
        print(f"undo with: fleetgraph ci undo {op.seq}")
    return 0
