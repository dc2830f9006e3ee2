"""The `fleetgraph` command: one dispatcher; each package registers its own subcommands.

Commands are registered lazily so that `fleetgraph agent ...` on an endpoint never imports the
collector's dependencies. A handler takes (args, config) and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from cmdb.config import ConfigError, load_config

# (module, function): each registers its subcommands on the top-level subparsers.
REGISTRARS: tuple[tuple[str, str], ...] = (
    ("collector.cli", "register"),
    ("collector.demo", "register"),
    ("agent.cli", "register"),
    ("cmdb.cli_ci", "register"),
    ("cmdb.cli_config", "register"),
)

Handler = Callable[[argparse.Namespace, object], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetgraph",
        description="IT asset discovery and graph CMDB: agents, scanners, collector, queries.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (default: $FLEETGRAPH_CONFIG, "
                        "./fleetgraph.toml, /etc/fleetgraph/fleetgraph.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module, func in REGISTRARS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # An endpoint install ships only the agent; its dispatcher lists what is there.
            if exc.name and module.startswith(exc.name.split(".")[0]):
                continue
            raise
        getattr(mod, func)(sub)
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
    parser = build_parser()
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
