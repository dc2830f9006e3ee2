"""`fleetgraph agent run`: inventory this machine and send the report to the collector."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from cmdb.config import AgentConfig, Config, ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    agent = sub.add_parser("agent", help="the endpoint agent")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run = agent_sub.add_parser("run", help="inventory this machine and send one report")
    run.add_argument("--once", action="store_true", help="run one inventory and exit (the only mode for now)")
    run.add_argument("--server", dest="agent__server", metavar="URL", help="collector base URL (agent.server)")
    run.add_argument("--token-file", dest="agent__token_file", metavar="FILE",
                     help="file holding the bearer token (agent.token_file); or set FLEETGRAPH_AGENT_TOKEN")
    run.add_argument("--state-dir", dest="agent__state_dir", metavar="DIR", help="agent state (agent.state_dir)")
    run.add_argument("--timeout", dest="agent__timeout", type=float, metavar="SECONDS")
    run.add_argument("--dry-run", action="store_true", help="print the report instead of sending it")
    run.add_argument("--output", metavar="FILE", help="also write the report JSON to FILE")
    run.set_defaults(func=cmd_run)


def read_token(cfg: AgentConfig) -> str | None:
    """The bearer token from agent.token or agent.token_file; a token file others can read is refused."""
    if cfg.token:
        return cfg.token.strip()
    if not cfg.token_file:
        return None
    path = Path(cfg.token_file)
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"agent.token_file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                              f"run: chmod 600 {path}")
        token = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"agent.token_file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"agent.token_file {path} cannot be read: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"agent.token_file {path} is empty")
    return token


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from agent.identity import AgentIdError
    from agent.runner import run_once
    from agent.transport import TransportError

    cfg = config.agent
    if not args.dry_run and not cfg.server:
        raise ConfigError("agent.server is not set: pass --server URL, set FLEETGRAPH_AGENT_SERVER "
                          "or [agent] server in the config file (or use --dry-run)")
    token = None if args.dry_run else read_token(cfg)
    if not args.dry_run and not token:
        raise ConfigError("no collector token: set FLEETGRAPH_AGENT_TOKEN, agent.token_file or --token-file")
    try:
        result = run_once(cfg.server, token, Path(cfg.state_dir),
                          output=Path(args.output) if args.output else None,
                          dry_run=args.dry_run, timeout=cfg.timeout)
    except TransportError as exc:
        print(f"fleetgraph agent: report not delivered: {exc}", file=sys.stderr)
        return 1
    except AgentIdError as exc:
        print(f"fleetgraph agent: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"fleetgraph agent: {exc.filename}: permission denied (agent.state_dir must be writable)",
              file=sys.stderr)
        return 1
    if args.dry_run:
        if not args.output:
            sys.stdout.write(result.report_json.decode() + "\n")
        return 0
    failed = {name: s for name, s in result.collectors.items() if s.status == "failed"}
    counts = ", ".join(f"{n} {cls}" for cls, n in sorted(result.counts.items()))
    print(f"report {result.report_id} sent: HTTP {result.http_status}, {result.bytes_sent} bytes; {counts}",
          file=sys.stderr if os.environ.get("FLEETGRAPH_QUIET") else sys.stdout)
    for name, status in failed.items():
        print(f"  collector {name} failed: {status.reason}", file=sys.stderr)
    return 0
