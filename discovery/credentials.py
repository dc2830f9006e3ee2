"""The scan credentials file: SNMP communities and v3 users, SSH users and keys, tried in order.

    # /etc/fleetgraph/scan-credentials.toml   (owner-only: chmod 600)
    [[snmp]]
    version = "2c"
    community = "public"

    [[snmp]]
    version = "3"
    user = "monitor"
    auth_protocol = "SHA-256"
    auth_key = "..."
    priv_protocol = "AES"
    priv_key = "..."

    [[ssh]]
    username = "inventory"
    key_file = "/etc/fleetgraph/scan_ed25519"

The file must be a regular file owned by the user running the scan and readable by nobody else
(mode 0600 or stricter): otherwise it is refused, with the command that fixes it. Secrets are
never logged or echoed: errors name the entry ("[[snmp]] #2") and the key, never the value.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb.config import ConfigError

MAX_FILE_BYTES = 1024 * 1024
_SECTIONS = ("snmp", "ssh")


@dataclass(frozen=True)
class ScanCredentials:
    snmp: tuple[Any, ...] = field(default=(), repr=False)
    ssh: tuple[Any, ...] = field(default=(), repr=False)
    source: str | None = None

    def __repr__(self) -> str:  # counts only: never a secret
        return f"ScanCredentials(snmp={len(self.snmp)} sets, ssh={len(self.ssh)} sets, source={self.source!r})"


def check_owner_only(path: Path) -> None:
    """Refuse a credentials file others can read or write, or that someone else owns."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"credentials file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"credentials file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"credentials file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(f"credentials file {path} is readable or writable by others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}): run 'chmod 600 {path}'; it holds scan secrets")
    if info.st_uid != os.geteuid():
        raise ConfigError(f"credentials file {path} belongs to uid {info.st_uid}, not to the user running the "
                          f"scan (uid {os.geteuid()}): 'chown' it or run the scan as its owner")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"credentials file {path} is larger than {MAX_FILE_BYTES} bytes")


def load_credentials(path: str | Path | None) -> ScanCredentials:
    """The credential sets of the file (none without a file: nmap needs none)."""
    if path is None:
        return ScanCredentials()
    path = Path(path)
    check_owner_only(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib quotes no values in its messages, only positions.
        raise ConfigError(f"credentials file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"credentials file {path}: unknown section {sorted(unknown)[0]!r}; use [[snmp]] and [[ssh]]")
    for section in _SECTIONS:
        entries = data.get(section, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"credentials file {path}: write each {section} credential as a [[{section}]] table")
    return ScanCredentials(_parse_snmp(data.get("snmp", []), path), _parse_ssh(data.get("ssh", []), path), str(path))


def _parse_snmp(entries: list[dict[str, Any]], path: Path) -> tuple[Any, ...]:
    if not entries:
        return ()
    from discovery.snmp.credentials import CredentialError, parse_snmp_credentials

    try:
        return tuple(parse_snmp_credentials(entries, str(path)))
    except CredentialError as exc:
        raise ConfigError(str(exc)) from None


def _parse_ssh(entries: list[dict[str, Any]], path: Path) -> tuple[Any, ...]:
    if not entries:
        return ()
    from discovery.ssh.credentials import CredentialError, parse_ssh_credentials

    try:
        return tuple(parse_ssh_credentials(entries, base_dir=path.parent))
    except CredentialError as exc:
        raise ConfigError(str(exc)) from None
