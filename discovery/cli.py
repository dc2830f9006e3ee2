"""`fleetgraph scan`: agentless discovery of the targets with nmap, SNMP and SSH; each host's report
goes to the collector's ingest API (or to a folder with --output).

    fleetgraph scan --targets 10.1.0.0/24 --credentials /etc/fleetgraph/scan-credentials.toml \\
                    --server https://cmdb:8420 [--profile NAME] [--service]

The scanner authenticates with its enrolled credential (`<state_dir>/credential`, from
`--enroll-token` once), or a token file (--token-file). On a terminal a progress bar shows the
hosts as they finish, otherwise one plain line per host scan; a summary table ends every scan
(hosts found, identified, failed and why). Exit status: 0 when every host that answered was
delivered, 1 when some reports could not be delivered, 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from cmdb.config import Config, ConfigError
from discovery.enroll import CREDENTIAL_FILE, SCANNER_ID_FILE

HELP = "scan the network (nmap, SNMP, SSH) and report what is found, like an agent"
log = logging.getLogger("fleetgraph.discovery")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def register(sub: argparse._SubParsersAction) -> None:
    scan = sub.add_parser("scan", help=HELP)
    scan.add_argument("--profile", help="a named profile of scan.profiles")
    scan.add_argument("--targets", dest="scan__targets", type=_csv, help="addresses, CIDR blocks, ranges "
                                                                          "(comma-separated)")
    scan.add_argument("--exclude", dest="scan__exclude", type=_csv, help="never scan these (comma-separated)")
    scan.add_argument("--allowed", dest="scan__allowed", type=_csv, help="refuse targets outside these blocks")
    scan.add_argument("--protocols", dest="scan__protocols", type=_csv, help="nmap,snmp,ssh (default all)")
    scan.add_argument("--credentials", dest="scan__credentials_file", metavar="FILE",
                      help="TOML credential sets (owner-only)")
    scan.add_argument("--server", dest="scan__server", metavar="URL", help="collector base URL")
    scan.add_argument("--ca-file", dest="scan__ca_file", metavar="PEM", help="CA to trust for HTTPS")
    scan.add_argument("--state-dir", dest="scan__state_dir", metavar="DIR")
    scan.add_argument("--ports", dest="scan__ports", help="TCP ports nmap checks")
    scan.add_argument("--service-version", dest="scan__service_version", action=argparse.BooleanOptionalAction,
                      default=None, help="nmap -sV")
    scan.add_argument("--snmp-port", dest="scan__snmp_port", type=int)
    scan.add_argument("--ssh-port", dest="scan__ssh_port", type=int)
    scan.add_argument("--trust-on-first-use", dest="scan__trust_on_first_use",
                      action=argparse.BooleanOptionalAction, default=None,
                      help="record unknown SSH host keys (logged) instead of refusing the host")
    scan.add_argument("--concurrency", dest="scan__concurrency", type=int)
    scan.add_argument("--timeout", dest="scan__timeout", type=float, help="seconds per host and protocol")
    scan.add_argument("--retries", dest="scan__retries", type=int, help="SNMP retransmissions")
    scan.add_argument("--interval", dest="scan__interval", type=float,
                      help="with --service: seconds between scans")
    scan.add_argument("--define-profile", dest="scan__profiles", action="append", metavar="'NAME: k=v; ...'",
                      help="add a profile (repeat; replaces scan.profiles)")
    scan.add_argument("--token-file", metavar="FILE", help="bearer token file (default: the enrolled credential)")
    scan.add_argument("--enroll-token", dest="scan__enroll_token",
                      help="enroll this scanner first (prefer FLEETGRAPH_SCAN_ENROLL_TOKEN)")
    scan.add_argument("--scanner-id", help="this scanner's id (default: kept in the state dir, from the host name)")
    scan.add_argument("--output", metavar="DIR", help="write the reports to DIR instead of sending them")
    scan.add_argument("--service", action="store_true", help="scan again every scan.interval seconds until stopped")
    scan.set_defaults(func=cmd_scan)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k[len("scan__"):]: v for k, v in vars(args).items() if k.startswith("scan__") and v is not None}


def scanner_id(state_dir: Path, explicit: str | None) -> str:
    if explicit:
        if not _ID.match(explicit):
            raise ConfigError(f"--scanner-id {explicit[:70]!r}: letters, digits, '.', '_', '-' (at most 64)")
        return explicit
    path = state_dir / SCANNER_ID_FILE
    try:
        stored = path.read_text().strip()
        if _ID.match(stored):
            return stored
    except OSError:
        pass
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._")[:55] or "host"
    return f"scanner-{name}"


def _sink(args: argparse.Namespace, config: Config, scan_id: str) -> Any:
    from discovery.sink import CollectorSink, DirectorySink

    if args.output:
        return DirectorySink(Path(args.output))
    server = config.scan.server
    if not server:
        raise ConfigError("where do the reports go? give --server URL (scan.server) or --output DIR")
    state_dir = Path(config.scan.state_dir)
    enroll = config.scan.enroll_token
    # Enroll once: with a stored credential the token (left in the environment of a service, say)
    # is not spent again. Delete the credential file to enroll anew.
    if enroll and not (state_dir / CREDENTIAL_FILE).exists() and not args.token_file:
        from discovery.enroll import enroll_scanner

        enroll_scanner(server, enroll, state_dir, scan_id, ca_file=config.scan.ca_file)
    token_file = Path(args.token_file) if args.token_file else state_dir / CREDENTIAL_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"no scanner credential at {token_file} ({exc.strerror}): enroll once with "
                          "--enroll-token (from 'fleetgraph enroll-token create') or give --token-file") from None
    if not token:
        raise ConfigError(f"{token_file} is empty: enroll again")
    return CollectorSink(server, token, ca_file=config.scan.ca_file, timeout=30.0)


def cmd_scan(args: argparse.Namespace, config: Config) -> int:
    from discovery.credentials import load_credentials
    from discovery.profiles import build_plan, resolve_profile
    from discovery.report_view import ScanView

    scan_config = resolve_profile(config.scan, args.profile, _flags(args))
    plan = build_plan(scan_config, args.profile or "default")
    if args.service and not plan.interval:
        raise ConfigError("--service needs scan.interval (--interval SECONDS or a profile's interval)")
    credentials = load_credentials(scan_config.credentials_file)
    state_dir = Path(scan_config.state_dir)
    scan_id = scanner_id(state_dir, args.scanner_id)
    config.scan = scan_config
    sink = _sink(args, config, scan_id)
    known_hosts = state_dir / "known_hosts"
    view = ScanView(plan, sys.stderr)
    return asyncio.run(_loop(plan, credentials, scan_id, sink, known_hosts, view, args.service))


async def _loop(plan: Any, credentials: Any, scan_id: str, sink: Any, known_hosts: Path, view: Any,
                service: bool) -> int:
    from discovery.scan import run_scan

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    while True:
        with view.running():
            summary = await run_scan(plan, credentials, scan_id, sink, known_hosts, view.host_done)
        view.print_summary(summary)
        status = 1 if summary.delivery_errors else 0
        if not service or stop.is_set():
            return status
        try:
            await asyncio.wait_for(stop.wait(), plan.interval)
            return status
        except asyncio.TimeoutError:
            continue
