"""The SSH scanner: inventory of Linux hosts (the agent's own collectors over SSH) and of network
devices (Cisco IOS/IOS XE/NX-OS, Junos, Arista EOS, HP ProCurve, PAN-OS) without an agent.
See docs/discovery-ssh.md.

    from discovery.ssh import HostKeyPolicy, parse_ssh_credentials, scan_ssh_host

Modules: credentials (credential sets), hostkeys (managed known_hosts, trust on first use),
client (connect, authenticate, run), context (SshContext: the agent's Context over SSH),
linux (a host's report from the agent collectors), netdev/ (platform detection, one parser
module per platform, the device report), scanner (scan_ssh_host).
"""

from discovery.ssh.credentials import CredentialError, SshCredential, parse_ssh_credentials
from discovery.ssh.errors import AuthenticationFailed, HostKeyChanged, SshScanError, UnknownHostKey
from discovery.ssh.hostkeys import HostKeyPolicy
from discovery.ssh.scanner import MAX_PARALLEL_HOSTS, scan_ssh_host, scan_ssh_host_sync

__all__ = [
    "MAX_PARALLEL_HOSTS", "AuthenticationFailed", "CredentialError", "HostKeyChanged", "HostKeyPolicy",
    "SshCredential", "SshScanError", "UnknownHostKey", "parse_ssh_credentials", "scan_ssh_host",
    "scan_ssh_host_sync",
]
