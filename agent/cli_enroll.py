"""`fleetgraph agent enroll`: trade a one-time enrollment token for this agent's credential."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmdb.config import Config, ConfigError


def add_enroll_parser(agent_sub: argparse._SubParsersAction) -> None:
    enroll = agent_sub.add_parser(
        "enroll", help="enroll this agent with a collector (once, with an enrollment token)",
        description="Send a one-time enrollment token (from 'fleetgraph enroll-token create') to the "
                    "collector and keep the credential it returns in the state folder (owner-only, never "
                    "printed). Afterwards 'fleetgraph agent run' needs no server or token option.")
    enroll.add_argument("--server", dest="agent__server", metavar="URL",
                        help="collector base URL, https://HOST:PORT (agent.server)")
    enroll.add_argument("--token", dest="agent__enroll_token", metavar="TOKEN",
                        help="the enrollment token; better: set FLEETGRAPH_AGENT_ENROLL_TOKEN (argv is visible "
                             "to other users in ps)")
    enroll.add_argument("--ca-file", dest="agent__ca_file", metavar="PEM",
                        help="trust only this CA for the collector's certificate (agent.ca_file; default: "
                             "the system CA store)")
    enroll.add_argument("--state-dir", dest="agent__state_dir", metavar="DIR", help="agent state (agent.state_dir)")
    enroll.add_argument("--timeout", dest="agent__timeout", type=float, metavar="SECONDS")
    enroll.add_argument("--insecure", action="store_true",
                        help="allow plain http:// to a non-loopback collector (the token crosses the network "
                             "in clear)")
    enroll.set_defaults(func=cmd_enroll)


def cmd_enroll(args: argparse.Namespace, config: Config) -> int:
    from agent.enroll import EnrollmentError, enroll
    from agent.identity import AgentIdError
    from agent.transport import TransportError

    cfg = config.agent
    if not cfg.server:
        raise ConfigError("agent.server is not set: pass --server https://HOST:PORT, set "
                          "FLEETGRAPH_AGENT_SERVER or [agent] server in the config file")
    if not cfg.enroll_token:
        raise ConfigError("no enrollment token: set FLEETGRAPH_AGENT_ENROLL_TOKEN (or pass --token); an admin "
                          "creates one with 'fleetgraph enroll-token create --name NAME'")
    try:
        result = enroll(cfg.server, cfg.enroll_token, Path(cfg.state_dir), ca_file=cfg.ca_file,
                        insecure=args.insecure, timeout=cfg.timeout)
    except (EnrollmentError, TransportError, AgentIdError) as exc:
        print(f"fleetgraph agent: enrollment failed: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"fleetgraph agent: {exc.filename}: permission denied (agent.state_dir must be writable)",
              file=sys.stderr)
        return 1
    rotated = "; its previous credential is revoked" if result.rotated else ""
    print(f"agent {result.agent_id} enrolled with {result.server} as {result.token_name}{rotated}; "
          f"credential stored in {result.credential_path}")
    return 0
