"""Scanner enrollment: a scanner redeems a one-time enrollment token (`fleetgraph enroll-token
create`) for its own credential, bound to its scanner id: it may then submit only nmap, snmp and
ssh reports whose source id starts with "<scanner id>/" (collector.auth). The credential and the
scanner id are kept owner-only in the scanner's state folder; the enrollment is the agent's, with
`kind: "scanner"` (agent.enroll: same URL checks, TLS, no redirects, clear refusals)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from agent.enroll import (
    ENROLL_PATH,
    EnrollmentError,
    _make_private_dir,
    _post_enrollment,
    check_server_url,
    local_hostname,
)
from agent.files import write_private_atomically
from cmdb.config import ConfigError

CREDENTIAL_FILE = "credential"
SCANNER_ID_FILE = "scanner-id"
ENROLLMENT_FILE = "enrollment.json"


def enroll_scanner(server: str, enrollment_token: str, state_dir: Path, scanner_id: str, *,
                   ca_file: str | None = None, timeout: float = 30.0) -> str:
    """Enroll and store the credential; the token name the collector gave it. ConfigError says why
    an enrollment failed (never echoing the token)."""
    token = enrollment_token.strip()
    if not token or any(c.isspace() for c in token):
        raise ConfigError("the enrollment token is empty or malformed: paste the whole token printed by "
                          "'fleetgraph enroll-token create'")
    try:
        base = check_server_url(server)
        state_dir = Path(state_dir)
        _make_private_dir(state_dir)
        answer = _post_enrollment(base + ENROLL_PATH, {"enrollment_token": token, "kind": "scanner",
                                                       "scanner_id": scanner_id, "hostname": local_hostname()},
                                  timeout, str(Path(ca_file).resolve()) if ca_file else None)
    except EnrollmentError as exc:
        raise ConfigError(f"scanner enrollment failed: {exc}") from None
    credential = answer.get("token")
    if not isinstance(credential, str) or not credential or any(c.isspace() for c in credential):
        raise ConfigError(f"the collector at {base} answered the enrollment without a usable credential")
    if answer.get("source_id", scanner_id) != scanner_id:
        raise ConfigError(f"the collector bound the credential to {answer.get('source_id')!r}, not to "
                          f"scanner id {scanner_id!r}: is {base} a fleetgraph collector?")
    write_private_atomically(state_dir / CREDENTIAL_FILE, (credential + "\n").encode())
    write_private_atomically(state_dir / SCANNER_ID_FILE, (scanner_id + "\n").encode())
    name = str(answer.get("token_name") or f"scanner-{scanner_id}")
    record = {"server": base, "ca_file": ca_file, "scanner_id": scanner_id, "token_name": name,
              "enrolled_at": datetime.now(UTC).isoformat()}
    write_private_atomically(state_dir / ENROLLMENT_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return name
