"""Why an SSH scan of a host got no report, in words an operator acts on.

`kind` sorts the causes for summaries and metrics; `reason` is the sentence shown. No message
ever carries a password, a passphrase or key material.
"""

from __future__ import annotations

import paramiko

KINDS = ("refused", "timeout", "unreachable", "hostkey", "auth", "protocol", "config", "unsupported")


class SshScanError(Exception):
    def __init__(self, kind: str, reason: str):
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        Exception.__init__(self, reason)  # not super(): HostKeyChanged's next base wants other arguments
        self.kind = kind
        self.reason = reason


class UnknownHostKey(SshScanError):
    """The host's key is not in the managed known_hosts and trust on first use is off."""

    def __init__(self, reason: str):
        super().__init__("hostkey", reason)


class HostKeyChanged(SshScanError, paramiko.BadHostKeyException):
    """The host presents another key than the one recorded: refused (paramiko's BadHostKey)."""

    def __init__(self, hostname: str, reason: str, expected: paramiko.PKey, got: paramiko.PKey):
        SshScanError.__init__(self, "hostkey", reason)
        # what paramiko.BadHostKeyException's own __init__ would set
        self.hostname, self.expected_key, self.key = hostname, expected, got


class AuthenticationFailed(SshScanError):
    """No credential set was accepted; `attempts` says what each one got (labels, no secrets)."""

    def __init__(self, reason: str, attempts: list[str]):
        super().__init__("auth", reason)
        self.attempts = attempts
