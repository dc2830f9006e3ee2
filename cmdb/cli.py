"""The `fleetgraph` command: one dispatcher; each package registers its own subcommands.

`COMMANDS` lists every top-level command with its help line and the module whose `register`
adds it. The dispatcher imports only the registrar of the command on the command line, so that
`fleetgraph agent ...` on an endpoint never imports the collector, the store or their
dependencies; `fleetgraph --help` lists the table without importing any registrar (a command
whose package is not installed, as on an agent-only endpoint, is left out). A handler takes
(args, config) and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import sys
from typing import Callable, NamedTuple, Sequence

from cmdb.config import ConfigError, load_config


class Command(NamedTuple):
    name: str
    help: str
    module: str  # its `register(subparsers)` adds the command (tests/unit/test_cli.py checks the help)


COMMANDS: tuple[Command, ...] = (
    Command("collector", "run the collector service (ingest, query API, reconcile)", "collector.cli"),
    Command("token", "manage API tokens (create, list, revoke)", "collector.cli"),
    Command("enroll-token", "manage agent enrollment tokens (create, list, revoke)", "collector.cli"),
    Command("demo", "collector + one agent run on this machine + a CMDB summary", "collector.demo"),
    Command("agent", "the endpoint agent", "agent.cli"),
    Command("scan", "scan the network (nmap, SNMP, SSH) and report what is found, like an agent", "discovery.cli"),
    Command("ci", "query configuration items", "cmdb.cli_ci"),
    Command("drift", "list drift: changes of tracked attributes and sets of existing CIs", "reconcile.cli_drift"),
    Command("reconcile", "show what a report would change in the CMDB (dry run)", "reconcile.cli"),
    Command("change", "change records: create, plan, approve, move along, verify", "reconcile.cli_records"),
    Command("incident", "incidents: create, list, update", "reconcile.cli_records"),
    Command("config", "show configuration options", "cmdb.cli_config"),
)
# (module, function): each registers its subcommands on the top-level subparsers.
REGISTRARS: tuple[tuple[str, str], ...] = tuple((m, "register") for m in dict.fromkeys(c.module for c in COMMANDS))

Handler = Callable[[argparse.Namespace, object], int]
_CONFIG_FLAG = "--config"  # the one top-level option that takes a value


def command_word(argv: Sequence[str]) -> str | None:
    """The command the top-level parser will see in `argv` (its first positional word), or None."""
    args = iter(argv)
    for arg in args:
        if arg == "--":
            return next(args, None)
        if arg.startswith("-"):
            # --config FILE, also abbreviated as argparse allows (--conf FILE); --config=FILE is one word
            if len(arg) > 2 and "=" not in arg and _CONFIG_FLAG.startswith(arg):
                next(args, None)
            continue
        return arg
    return None


def _register(sub: argparse._SubParsersAction, module: str) -> bool:
    """Import `module` and let it register its commands; False when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # An endpoint install ships only the agent; its dispatcher lists what is there.
        if exc.name and module.startswith(exc.name.split(".")[0]):
            return False
        raise
    mod.register(sub)
    return True


def _installed(module: str) -> bool:
    """`module` (a package's direct submodule) can be imported; neither is imported to tell."""
    package, _, name = module.partition(".")
    try:
        spec = importlib.util.find_spec(package)
    except ValueError:
        return False
    if spec is None or not name:
        return spec is not None
    return importlib.machinery.PathFinder.find_spec(module, spec.submodule_search_locations) is not None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the registrar of the command it names is imported, every other
    command is listed from `COMMANDS` only. Without `argv`, every registrar is imported."""
    parser = argparse.ArgumentParser(
        prog="fleetgraph",
        description="IT asset discovery and graph CMDB: agents, scanners, collector, queries.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (default: $FLEETGRAPH_CONFIG, "
                        "./fleetgraph.toml, /etc/fleetgraph/fleetgraph.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if argv is None:
        wanted = {c.module for c in COMMANDS}
    else:
        word = command_word(argv)
        wanted = {c.module for c in COMMANDS if c.name == word}
    registered: dict[str, bool] = {}  # module -> imported and registered
    installed: dict[str, bool] = {}
    for command in COMMANDS:
        if command.name in sub.choices:
            continue  # its registrar, imported for an earlier command, added it
        if command.module in wanted:
            if command.module not in registered:
                registered[command.module] = _register(sub, command.module)
            continue
        if command.module not in installed:
            installed[command.module] = _installed(command.module)
        if installed[command.module]:
            sub.add_parser(command.name, help=command.help)  # listed only: not on this command line
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Flags named `<section>__<key>` (argparse dest) override config options."""
    result: dict[str, dict[str, object]] = {}
    for dest, value in vars(args).items():
        section, sep, key = dest.partition("__")
        if sep and value is not None:
            result.setdefault(section, {})[key] = value
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, overrides=overrides_from(args))
    except ConfigError as exc:
        print(f"fleetgraph: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, config) or 0)
    except ConfigError as exc:
        print(f"fleetgraph: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
