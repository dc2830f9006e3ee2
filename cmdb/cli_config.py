"""`fleetgraph config defaults|show`: every option, its default and its effective value."""

from __future__ import annotations

import argparse
import dataclasses
import json

from cmdb.config import Config, render_defaults

SECRET_OPTIONS = {("agent", "token"), ("agent", "enroll_token")}


def register(sub: argparse._SubParsersAction) -> None:
    cfg = sub.add_parser("config", help="show configuration options")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    cfg_sub.add_parser("defaults", help="print every option with its default and documentation") \
        .set_defaults(func=lambda args, config: print(render_defaults(), end="") or 0)
    cfg_sub.add_parser("show", help="print the effective configuration (secrets masked)") \
        .set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    doc: dict = {"source": config.source}
    for section in ("collector", "agent"):
        values = dataclasses.asdict(getattr(config, section))
        for (sec, key) in SECRET_OPTIONS:
            if sec == section and values.get(key):
                values[key] = "********"
        doc[section] = values
    print(json.dumps(doc, indent=2))
    return 0
