"""SSH credential sets: what the scanner may log in with, tried in order on each host.

The lead's credentials file (TOML) holds a list of tables per protocol; `parse_ssh_credentials`
turns the SSH ones into `SshCredential`s, or raises `CredentialError` naming the entry and the
key that is wrong, never the secret itself:

    [[ssh]]
    name = "inventory-key"                       # optional label, shown in logs and errors
    username = "inventory"
    key_file = "/etc/fleetgraph/ssh/inventory_ed25519"
    key_passphrase = "..."                       # only for an encrypted key

    [[ssh]]
    name = "legacy-password"
    username = "audit"
    password = "..."

Secrets (password, key passphrase) never appear in a repr, a log line or an error message.
A key file must be a regular file readable by its owner only (as OpenSSH demands of private
keys): a key others can read is refused with the chmod that fixes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_CREDENTIALS = 64
MAX_USERNAME = 256
MAX_SECRET = 1024
MAX_NAME = 128
MAX_KEY_FILE_BYTES = 64 * 1024
_KEYS = ("name", "username", "password", "key_file", "key_passphrase")


class CredentialError(ValueError):
    """A credential entry is unusable; the message names the entry and the key, never a secret."""


@dataclass(frozen=True)
class SshCredential:
    """One way to log in: a user with a key file (optionally encrypted) and/or a password. With
    both, the key is tried first, then the password."""

    username: str
    password: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    name: str | None = None

    def __post_init__(self) -> None:
        where = f"ssh credential {self.name!r}" if self.name else "ssh credential"
        _check_text(self.username, f"{where}: username", MAX_USERNAME, secret=False)
        if self.password is None and self.key_file is None:
            raise CredentialError(f"{where}: give a password or a key_file (or both)")
        if self.password is not None:
            _check_text(self.password, f"{where}: password", MAX_SECRET, secret=True)
        if self.key_passphrase is not None:
            _check_text(self.key_passphrase, f"{where}: key_passphrase", MAX_SECRET, secret=True)
            if self.key_file is None:
                raise CredentialError(f"{where}: key_passphrase without a key_file")

    @property
    def label(self) -> str:
        """How logs and errors name this credential: its name, user and method, no secret."""
        methods = "+".join(m for m, on in (("key", self.key_file is not None),
                                            ("password", self.password is not None)) if on)
        named = f"{self.name!r} " if self.name else ""
        return f"{named}({self.username}, {methods})"

    def __repr__(self) -> str:  # dataclass repr=False on the secrets covers this too; explicit is safer
        return (f"SshCredential(name={self.name!r}, username={self.username!r}, key_file="
                f"{str(self.key_file) if self.key_file else None!r}, password={'***' if self.password else None}, "
                f"key_passphrase={'***' if self.key_passphrase else None})")


def _check_text(value: Any, where: str, limit: int, *, secret: bool) -> None:
    if not isinstance(value, str):
        raise CredentialError(f"{where} must be a string, not {type(value).__name__}")
    if not value:
        raise CredentialError(f"{where} is empty")
    if len(value) > limit:
        raise CredentialError(f"{where} is longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        # A password may hold any printable character; control characters are a paste accident
        # (a trailing newline) or an attack on whatever logs the username.
        what = "a control character (a trailing newline?)" if secret else "a control character"
        raise CredentialError(f"{where} contains {what}")


def parse_ssh_credentials(entries: Any, *, base_dir: Path | None = None,
                          check_key_files: bool = True) -> list[SshCredential]:
    """The `[[ssh]]` tables of a credentials file, in order. `base_dir` resolves relative key
    paths (the credentials file's folder); `check_key_files` checks that each key file exists,
    is small and is readable by its owner only."""
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise CredentialError("ssh credentials must be a list of tables ([[ssh]] in TOML), "
                              f"not {type(entries).__name__}")
    if not entries:
        raise CredentialError("no ssh credentials: add at least one [[ssh]] table")
    if len(entries) > MAX_CREDENTIALS:
        raise CredentialError(f"{len(entries)} ssh credentials: at most {MAX_CREDENTIALS} are tried per host")
    out = [parse_ssh_credential(entry, f"ssh credential #{i + 1}", base_dir=base_dir,
                                check_key_file=check_key_files) for i, entry in enumerate(entries)]
    names = [c.name for c in out if c.name]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise CredentialError(f"two ssh credentials are named {twice!r}: names must be unique")
    return out


def parse_ssh_credential(entry: Any, where: str = "ssh credential", *, base_dir: Path | None = None,
                         check_key_file: bool = True) -> SshCredential:
    if not isinstance(entry, Mapping):
        raise CredentialError(f"{where} must be a table, not {type(entry).__name__}")
    unknown = sorted(str(k)[:64] for k in entry if k not in _KEYS)
    if unknown:
        raise CredentialError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"the keys are {', '.join(_KEYS)}")
    name = entry.get("name")
    if name is not None:
        _check_text(name, f"{where}: name", MAX_NAME, secret=False)
        where = f"ssh credential {name!r}"
    if "username" not in entry:
        raise CredentialError(f"{where}: username is missing")
    key_file = entry.get("key_file")
    key_path: Path | None = None
    if key_file is not None:
        _check_text(key_file, f"{where}: key_file", 4096, secret=False)
        key_path = Path(key_file).expanduser()
        if not key_path.is_absolute() and base_dir is not None:
            key_path = base_dir / key_path
        if check_key_file:
            check_private_key_file(key_path, where)
    try:
        return SshCredential(username=entry["username"], password=entry.get("password"),
                             key_file=key_path, key_passphrase=entry.get("key_passphrase"), name=name)
    except CredentialError as exc:
        message = str(exc)
        if not message.startswith("ssh credential '"):
            message = f"{where}: {message.split(': ', 1)[-1]}"
        raise CredentialError(message) from None


def check_private_key_file(path: Path, where: str) -> None:
    """The key file is a regular file, not too big, and only its owner may read it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CredentialError(f"{where}: key_file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CredentialError(f"{where}: key_file {str(path)!r} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"{where}: key_file {str(path)!r} is not a regular file")
    if st.st_size > MAX_KEY_FILE_BYTES:
        raise CredentialError(f"{where}: key_file {str(path)!r} is {st.st_size} bytes; "
                              f"a private key is far smaller (limit {MAX_KEY_FILE_BYTES})")
    if st.st_mode & 0o077:
        raise CredentialError(f"{where}: key_file {str(path)!r} is readable by others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}")
