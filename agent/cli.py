"""`fleetgraph agent run`: inventory this machine and report to the collector, once (--once) or
every `agent.interval` seconds (agent.daemon); `--dry-run` only prints the report."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from pathlib import Path

from agent.cli_enroll import add_enroll_parser
from cmdb.config import AgentConfig, Config, ConfigError

log = logging.getLogger("fleetgraph.agent")
ENROLLMENT_FILE = "enrollment.json"  # agent.enroll.ENROLLMENT_FILE (not imported here: see _with_enrollment)


def register(sub: argparse._SubParsersAction) -> None:
    agent = sub.add_parser("agent", help="the endpoint agent")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run = agent_sub.add_parser("run", help="inventory this machine and report to the collector: every "
                               "agent.interval seconds, or once with --once")
    run.add_argument("--once", action="store_true",
                     help="deliver queued reports, run one inventory, send it, exit (default: run forever)")
    run.add_argument("--server", dest="agent__server", metavar="URL", help="collector base URL (agent.server)")
    run.add_argument("--token-file", dest="agent__token_file", metavar="FILE",
                     help="file holding the bearer token (agent.token_file); or set FLEETGRAPH_AGENT_TOKEN")
    run.add_argument("--state-dir", dest="agent__state_dir", metavar="DIR", help="agent state (agent.state_dir)")
    run.add_argument("--timeout", dest="agent__timeout", type=float, metavar="SECONDS")
    run.add_argument("--interval", dest="agent__interval", type=float, metavar="SECONDS",
                     help="seconds between two inventories without --once (agent.interval)")
    run.add_argument("--splay", dest="agent__splay", type=float, metavar="SECONDS",
                     help="random extra delay per interval (agent.splay, default 10%% of the interval)")
    run.add_argument("--full-every", dest="agent__full_every", type=int, metavar="N",
                     help="a full report every N runs, deltas in between (agent.full_every; 1: no deltas)")
    run.add_argument("--outbox-max-bytes", dest="agent__outbox_max_bytes", type=int, metavar="BYTES",
                     help="cap of the outbox of undelivered reports (agent.outbox_max_bytes)")
    run.add_argument("--retry-max", dest="agent__retry_max", type=float, metavar="SECONDS",
                     help="longest backoff between delivery attempts (agent.retry_max)")
    run.add_argument("--license-path", dest="agent__license_paths", action="append", metavar="PATH",
                     help="a directory, file or glob searched for FlexLM license files; repeat for more "
                          "(replaces agent.license_paths)")
    run.add_argument("--dry-run", action="store_true",
                     help="print a full report instead of sending it (no outbox, no delta state)")
    run.add_argument("--output", metavar="FILE", help="also write the report JSON to FILE")
    run.set_defaults(func=cmd_run)
    add_enroll_parser(agent_sub)


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


def _with_enrollment(cfg: AgentConfig) -> AgentConfig:
    """`cfg` completed with the server, CA and credential stored by `agent enroll`. agent.enroll
    (which brings the HTTP client along) is imported only when there is an enrollment to read."""
    try:
        os.stat(os.path.join(cfg.state_dir, ENROLLMENT_FILE))
    except FileNotFoundError:
        return cfg
    except OSError:
        pass  # unreadable: agent.enroll says what to do about it
    from agent.enroll import with_enrollment

    return with_enrollment(cfg)


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from agent.identity import AgentIdError
    from agent.runner import AgentBusy

    cfg = _with_enrollment(config.agent)
    if not args.dry_run and not cfg.server:
        raise ConfigError("agent.server is not set: pass --server URL, set FLEETGRAPH_AGENT_SERVER "
                          "or [agent] server in the config file (or use --dry-run)")
    token = None if args.dry_run else read_token(cfg)
    if not args.dry_run and not token:
        raise ConfigError("no collector token: set FLEETGRAPH_AGENT_TOKEN, agent.token_file or --token-file")
    _log_to_stderr()
    try:
        if args.dry_run:
            return _dry_run(args, cfg)
        if args.once:
            from agent.daemon import lower_priority

            lower_priority()
            return _run_once(args, cfg, token)  # type: ignore[arg-type]
        return _run_forever(args, cfg, token)  # type: ignore[arg-type]
    except (AgentIdError, AgentBusy) as exc:
        print(f"fleetgraph agent: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"fleetgraph agent: {exc.filename}: permission denied (agent.state_dir must be writable)",
              file=sys.stderr)
        return 1


def _log_to_stderr() -> None:
    root = logging.getLogger("fleetgraph")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fleetgraph agent: %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def _run_kwargs(cfg: AgentConfig) -> dict:
    return {"timeout": cfg.timeout, "full_every": cfg.full_every, "outbox_max_bytes": cfg.outbox_max_bytes,
            "retry_max": cfg.retry_max, "cafile": cfg.ca_file}


def _collectors(cfg: AgentConfig) -> tuple:
    from agent.collectors import configured_collectors

    return configured_collectors(cfg.license_paths)


def _dry_run(args: argparse.Namespace, cfg: AgentConfig) -> int:
    from agent.runner import run_once

    result = run_once(None, None, Path(cfg.state_dir), output=Path(args.output) if args.output else None,
                      dry_run=True, collectors=_collectors(cfg))
    if not args.output:
        sys.stdout.write(result.report_json.decode() + "\n")
    return 0


def _run_once(args: argparse.Namespace, cfg: AgentConfig, token: str, *, respect_backoff: bool = False) -> int:
    from agent.runner import run_once

    result = run_once(cfg.server, token, Path(cfg.state_dir), output=Path(args.output) if args.output else None,
                      respect_backoff=respect_backoff, collectors=_collectors(cfg), **_run_kwargs(cfg))
    counts = ", ".join(f"{n} {cls}" for cls, n in sorted(result.counts.items()))
    what = f"{result.mode} report {result.report_id}"
    out = sys.stderr if os.environ.get("FLEETGRAPH_QUIET") else sys.stdout
    flush = result.flush
    if result.delivered:
        print(f"{what} sent: HTTP {result.http_status}, {result.bytes_sent} bytes; {counts}", file=out)
    else:
        why = (flush.error if flush and flush.error else "not delivered")
        print(f"fleetgraph agent: {what} not delivered, kept in the outbox "
              f"({flush.pending if flush else '?'} queued): {why}", file=sys.stderr)
    if flush and len(flush.delivered) > (1 if result.delivered else 0):
        print(f"  delivered {len(flush.delivered) - (1 if result.delivered else 0)} queued report(s)", file=out)
    for name, status in result.collectors.items():
        if status.status == "failed":
            print(f"  collector {name} failed: {status.reason}", file=sys.stderr)
    return 0 if result.delivered else 1


def _run_forever(args: argparse.Namespace, cfg: AgentConfig, token: str) -> int:
    from agent.daemon import Schedule, lower_priority, run_daemon
    from agent.outbox import Outbox
    from agent.runner import flush_outbox, run_once

    schedule = Schedule.of(cfg.interval, cfg.splay)
    lower_priority()
    state_dir = Path(cfg.state_dir)
    output = Path(args.output) if args.output else None

    def run(manual: bool) -> None:
        result = run_once(cfg.server, token, state_dir, output=output, respect_backoff=not manual,
                          collectors=_collectors(cfg), **_run_kwargs(cfg))
        if result.delivered:
            log.info("%s report %s sent: HTTP %s, %s bytes", result.mode, result.report_id,
                     result.http_status, result.bytes_sent)
        else:
            log.warning("%s report %s queued (%s in the outbox): %s", result.mode, result.report_id,
                        result.flush.pending if result.flush else "?",
                        result.flush.error if result.flush else "not delivered")

    def flush() -> None:
        kwargs = {k: v for k, v in _run_kwargs(cfg).items() if k != "full_every"}
        done = flush_outbox(cfg.server, token, state_dir, **kwargs)  # type: ignore[arg-type]
        if done.delivered:
            log.info("delivered %d queued report(s); %d still queued", len(done.delivered), done.pending)

    def next_retry() -> float | None:
        return Outbox(state_dir, cfg.outbox_max_bytes, retry_max=cfg.retry_max).next_attempt_at()

    return run_daemon(run, flush, next_retry, schedule)
