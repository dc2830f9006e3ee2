"""Enrollment: trade a one-time enrollment token for this agent's own credential, and keep it.

    enroll(server, enrollment_token, state_dir, ...)   POST /api/v1/enroll, store what it returns
    with_enrollment(cfg)                               agent config completed from the state folder

What it keeps in the state folder (mode 0700), each file written atomically and owner-only:

    credential        the agent's bearer token (never printed, never logged)
    enrollment.json   {"server", "ca_file", "agent_id", "token_name", "enrolled_at"}

so that `fleetgraph agent run` needs neither a server nor a token option afterwards. A token
crosses the network in clear only to a loopback collector, or when the operator says --insecure.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.files import write_private_atomically
from agent.identity import load_or_create_agent_id
from agent.transport import (
    USER_AGENT,
    _error_message,
    _NoRedirect,
    tls_context,
    unreachable_reason,
)
from cmdb.config import AgentConfig, ConfigError

ENROLL_PATH = "/api/v1/enroll"
CREDENTIAL_FILE = "credential"
ENROLLMENT_FILE = "enrollment.json"
_MAX_ANSWER = 64 * 1024
_HOSTNAME_JUNK = re.compile(r"[^A-Za-z0-9._-]+")


class EnrollmentError(Exception):
    """Enrollment did not happen (nothing was stored locally); the message says what to do."""


@dataclass(frozen=True)
class EnrollmentResult:
    agent_id: str
    server: str
    token_name: str
    credential_path: Path
    rotated: bool  # the agent had a credential before: the collector revoked it


def check_server_url(server: str, insecure: bool = False) -> str:
    """The base URL without a trailing slash; refuse plain http:// to a non-loopback host."""
    parsed = urllib.parse.urlsplit(server.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise EnrollmentError(f"server URL must be https://HOST[:PORT] (or http:// on loopback), got {server!r}")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise EnrollmentError("server URL must be a plain base URL: no credentials, ?query or #fragment")
    if parsed.scheme == "http" and not insecure and not _is_loopback(parsed.hostname):
        raise EnrollmentError(
            f"refusing to enroll over plain http:// with {parsed.hostname}: the enrollment token and the "
            "credential would cross the network in clear. Serve the collector over HTTPS "
            "(collector.tls_cert/tls_key) and use https://, or pass --insecure if you accept the risk")
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_hostname() -> str:
    """This machine's host name in the shape the collector accepts (letters, digits, . - _)."""
    name = _HOSTNAME_JUNK.sub("-", socket.gethostname()).lstrip("._-")[:253]
    return name or "unnamed-host"


def enroll(server: str, enrollment_token: str, state_dir: Path, *, ca_file: str | None = None,
           insecure: bool = False, timeout: float = 30.0, hostname: str | None = None) -> EnrollmentResult:
    """Enroll this agent with the collector at `server` and store its credential in `state_dir`.
    Raises EnrollmentError (refused, unreachable, bad input) or TransportError (unusable CA file)."""
    base = check_server_url(server, insecure)
    enrollment_token = enrollment_token.strip()
    if not enrollment_token or any(c.isspace() for c in enrollment_token):
        raise EnrollmentError("the enrollment token is empty or malformed: paste the whole token printed "
                              "by 'fleetgraph enroll-token create'")
    ca_path = str(Path(ca_file).resolve()) if ca_file else None
    state_dir = Path(state_dir)
    agent_id = load_or_create_agent_id(state_dir)
    _make_private_dir(state_dir)
    answer = _post_enrollment(base + ENROLL_PATH, {"enrollment_token": enrollment_token, "agent_id": agent_id,
                                                   "hostname": hostname or local_hostname()}, timeout, ca_path)
    credential = answer.get("token")
    if not isinstance(credential, str) or not credential or any(c.isspace() for c in credential):
        raise EnrollmentError(f"the collector at {base} answered the enrollment without a usable credential")
    if answer.get("source_id", agent_id) != agent_id:
        raise EnrollmentError(f"the collector bound the credential to {answer.get('source_id')!r}, not to this "
                              f"agent's id {agent_id}: is {base} a fleetgraph collector?")
    had_credential = (state_dir / CREDENTIAL_FILE).exists()
    token_name = str(answer.get("token_name") or f"agent-{agent_id}")
    write_private_atomically(state_dir / CREDENTIAL_FILE, (credential + "\n").encode())
    record = {"server": base, "ca_file": ca_path, "agent_id": agent_id, "token_name": token_name,
              "enrolled_at": datetime.now(UTC).isoformat()}
    write_private_atomically(state_dir / ENROLLMENT_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return EnrollmentResult(agent_id, base, token_name, state_dir / CREDENTIAL_FILE, had_credential)


def _post_enrollment(url: str, payload: dict, timeout: float, ca_file: str | None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT})
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(ca_file)))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            status, raw = response.status, response.read(_MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read(_MAX_ANSWER) if exc.fp else b""
        message = _error_message(raw) or exc.reason
        raise EnrollmentError(f"the collector at {url} refused the enrollment (HTTP {exc.code}): {message}") from None
    except urllib.error.URLError as exc:
        raise EnrollmentError(f"collector at {url} is unreachable: {unreachable_reason(exc.reason, ca_file)}") \
            from None
    except (TimeoutError, socket.timeout):
        raise EnrollmentError(f"collector at {url} is unreachable: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise EnrollmentError(f"collector at {url} is unreachable: {exc.strerror or type(exc).__name__}") from None
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if status != 201 or not isinstance(answer, dict):
        raise EnrollmentError(f"the collector at {url} answered HTTP {status} without an enrollment; "
                              "is this a fleetgraph collector?")
    return answer


def _make_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)  # it holds the credential: the owner only


def load_enrollment(state_dir: Path) -> dict | None:
    """What `enroll` recorded in the state folder, or None when this agent never enrolled."""
    path = Path(state_dir) / ENROLLMENT_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ConfigError(f"{path} cannot be read: run the agent as the user that enrolled it") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); enroll again ('fleetgraph agent enroll')") from None
    if not isinstance(record, dict) or not isinstance(record.get("server"), str):
        raise ConfigError(f"{path} is damaged (no server); enroll again ('fleetgraph agent enroll')")
    return record


def with_enrollment(cfg: AgentConfig) -> AgentConfig:
    """`cfg` completed from the enrollment in its state folder: the server when none is set, and
    for that server (only: the credential is for it alone) the CA file and the stored credential
    as token_file, unless a token or token file is configured."""
    record = load_enrollment(Path(cfg.state_dir))
    if record is None:
        return cfg
    server = cfg.server or record["server"]
    if server.rstrip("/") != record["server"]:
        return cfg
    changes: dict[str, object] = {"server": server}
    if cfg.ca_file is None and record.get("ca_file"):
        changes["ca_file"] = record["ca_file"]
    if not cfg.token and not cfg.token_file:
        changes["token_file"] = str(Path(cfg.state_dir) / CREDENTIAL_FILE)
    return dataclasses.replace(cfg, **changes)
