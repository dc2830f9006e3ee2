"""SNMP credential sets: one typed shape, parsed from the credentials file's dicts.

A credential set is either a community (v1, v2c) or a USM user (v3) with optional
authentication and privacy. Secrets (community, keys) never appear in repr(), str() or log
lines: `describe()` is what messages show ("v2c community #2", "v3 user 'labv3' SHA/AES").

The lead's credentials file (TOML) hands each `[[snmp]]` table to `parse_snmp_credential`; bad
input raises `CredentialError` naming the entry, the key and what to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SnmpVersion = Literal["1", "2c", "3"]
AUTH_PROTOCOLS = ("SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512", "MD5")
# AES-192/256 key extension differs: net-snmp follows Blumenthal's draft ("AES-192"), Cisco
# follows Reeder's ("AES-192-C").
PRIV_PROTOCOLS = ("AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C", "DES")
# net-snmp refuses pass phrases shorter than 8 characters (RFC 3414 section 11.2), and so
# does every agent built on it: such a key could never authenticate.
MIN_KEY_LENGTH = 8
MAX_SECRET_LENGTH = 256
_KEYS = {"version", "community", "user", "auth_protocol", "auth_key", "priv_protocol", "priv_key",
         "context", "name"}


class CredentialError(ValueError):
    """A credential entry that cannot be used; the message says which key and what to fix."""


@dataclass(frozen=True)
class SnmpCredential:
    version: SnmpVersion
    community: str | None = field(default=None, repr=False)
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_key: str | None = field(default=None, repr=False)
    context: str = ""
    # A label for messages ("core-switches"); the position in the file when absent.
    name: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def security_level(self) -> str:
        if self.version != "3":
            return "community"
        if self.priv_key:
            return "authPriv"
        return "authNoPriv" if self.auth_key else "noAuthNoPriv"

    def describe(self) -> str:
        """How messages name this credential, without any secret."""
        label = f" {self.name!r}" if self.name else ""
        if self.version != "3":
            return f"v{self.version} community{label}"
        protocols = "/".join(p for p in (self.auth_protocol if self.auth_key else None,
                                         self.priv_protocol if self.priv_key else None) if p)
        return f"v3 user {self.user!r}{label}" + (f" {protocols}" if protocols else " noAuthNoPriv")

    def __str__(self) -> str:
        return self.describe()


def _validate(cred: SnmpCredential) -> None:
    if cred.version not in ("1", "2c", "3"):
        raise CredentialError(f"version {cred.version!r} is not an SNMP version: write \"1\", \"2c\" or \"3\"")
    if cred.version in ("1", "2c"):
        if not cred.community:
            raise CredentialError(f"SNMP v{cred.version} needs a community (key 'community')")
        _check_secret("community", cred.community)
        if cred.user or cred.auth_key or cred.priv_key:
            raise CredentialError(f"SNMP v{cred.version} takes a community only; user and keys are for version \"3\"")
        return
    if not cred.user:
        raise CredentialError("SNMP v3 needs a user name (key 'user')")
    if cred.community:
        raise CredentialError("SNMP v3 does not use a community; remove 'community' or set version \"2c\"")
    if cred.priv_key and not cred.auth_key:
        raise CredentialError("a v3 privacy key needs an authentication key too (USM has no noAuthPriv level)")
    for kind, protocol, key, allowed in (("auth", cred.auth_protocol, cred.auth_key, AUTH_PROTOCOLS),
                                         ("priv", cred.priv_protocol, cred.priv_key, PRIV_PROTOCOLS)):
        if key is None:
            if protocol is not None:
                raise CredentialError(f"{kind}_protocol {protocol!r} is set but {kind}_key is missing")
            continue
        if protocol not in allowed:
            raise CredentialError(f"unknown {kind}_protocol {protocol!r}: use one of {', '.join(allowed)}")
        _check_secret(f"{kind}_key", key)
        if len(key) < MIN_KEY_LENGTH:
            raise CredentialError(f"{kind}_key is {len(key)} characters; SNMP agents (net-snmp) need at least "
                                  f"{MIN_KEY_LENGTH}, so it could never authenticate")


def _check_secret(key: str, value: str) -> None:
    if len(value) > MAX_SECRET_LENGTH:
        raise CredentialError(f"{key} is longer than {MAX_SECRET_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise CredentialError(f"{key} contains control characters")


def _string(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CredentialError(f"{where}: {key} must be a string, not {type(value).__name__}")
    return str(value)


def _protocol(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """Protocol names compare case-insensitively and with or without the dash (sha256 = SHA-256)."""
    if value is None:
        return None
    folded = value.strip().upper().replace("_", "-")
    for name in allowed:
        if folded in (name, name.replace("-", "")):
            return name
    return value


def parse_snmp_credential(entry: Mapping[str, Any], where: str = "snmp credential") -> SnmpCredential:
    """One credential set from a dict (a `[[snmp]]` table of the credentials file). `where` names
    the entry in errors ("credentials.toml [[snmp]] #2")."""
    if not isinstance(entry, Mapping):
        raise CredentialError(f"{where}: expected a table of keys, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise CredentialError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(_KEYS))}")
    version = _string(entry, "version", where)
    if version is None:
        raise CredentialError(f"{where}: missing key 'version' (\"1\", \"2c\" or \"3\")")
    version = {"2": "2c", "v2c": "2c", "v1": "1", "v3": "3"}.get(version.lower(), version.lower())
    auth_key, priv_key = _string(entry, "auth_key", where), _string(entry, "priv_key", where)
    try:
        return SnmpCredential(
            version=version,  # type: ignore[arg-type]
            community=_string(entry, "community", where),
            user=_string(entry, "user", where),
            auth_protocol=_protocol(_string(entry, "auth_protocol", where) or ("SHA" if auth_key else None),
                                    AUTH_PROTOCOLS),
            auth_key=auth_key,
            priv_protocol=_protocol(_string(entry, "priv_protocol", where) or ("AES" if priv_key else None),
                                    PRIV_PROTOCOLS),
            priv_key=priv_key,
            context=_string(entry, "context", where) or "",
            name=_string(entry, "name", where),
        )
    except CredentialError as exc:
        raise CredentialError(f"{where}: {exc}") from None


def parse_snmp_credentials(entries: Sequence[Mapping[str, Any]], source: str = "credentials") -> list[SnmpCredential]:
    """Every `[[snmp]]` entry of a credentials file, in order (the order they are tried in)."""
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise CredentialError(f"{source}: 'snmp' must be a list of tables ([[snmp]])")
    return [parse_snmp_credential(entry, f"{source} [[snmp]] #{i}") for i, entry in enumerate(entries, 1)]
