"""Listening services: one Service per protocol/port this machine accepts traffic on.

A Service is a TCP socket in LISTEN state or a bound, unconnected UDP socket, identified by
"<protocol>/<port>" on its host (the model scopes it by RUNS_ON): tcp/22 on 0.0.0.0 and on :: is
one Service whose `bind_addresses` are both. The process behind it (name, executable, user) comes
from psutil; a process we may not inspect leaves those fields absent. The pid is never reported:
it changes on every restart and would write a history row each time.

UDP sockets in the kernel's ephemeral port range are clients (a resolver's query socket, an NTP
poll), as are connected UDP sockets: neither is a service. A TCP listener is a service whatever
its port (rpc.statd and friends listen on random ports; they still accept connections) — except
one bound to loopback only on a port in the ephemeral range: that is a port the kernel handed out
(bind to port 0) for a process talking to itself or to a test (a dev server, a test collector),
which no other machine can reach; reporting it would create and retire a CI on every run.

Fetch apart from parse: `read_sockets` and `read_processes` talk to psutil; `listening_services`
and `contribute_services` are pure, and tests feed them recorded sockets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.context import Context

EPHEMERAL_RANGE_PATH = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)  # Linux's default


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """One inet socket as psutil sees it, with addresses in canonical form."""

    protocol: str  # "tcp" or "udp"
    local_address: str
    local_port: int
    remote_address: str | None
    remote_port: int | None
    status: str  # psutil: "LISTEN", "ESTABLISHED", ..., "NONE" for UDP
    pid: int | None


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    name: str | None = None
    exe: str | None = None
    user: str | None = None


@dataclass(slots=True)
class ListeningService:
    protocol: str
    port: int
    bind_addresses: set[str] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)

    @property
    def ref(self) -> str:
        return service_ref(self.protocol, self.port)

    @property
    def owner_pid(self) -> int | None:
        """The process that speaks for the service: the lowest pid holding the socket (a
        pre-forking server's master, not whichever worker psutil listed first)."""
        return min(self.pids) if self.pids else None


def service_ref(protocol: str, port: int) -> str:
    return f"svc:{protocol}/{port}"


def canonical_address(address: str) -> str:
    """Addresses as one spelling: no IPv6 zone, IPv4-mapped IPv6 as IPv4, compressed IPv6."""
    text = address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def parse_port_range(text: str | None) -> tuple[int, int]:
    """/proc/sys/net/ipv4/ip_local_port_range ("32768\\t60999"); the default when unreadable."""
    try:
        low, high = (int(v) for v in (text or "").split())
    except ValueError:
        return DEFAULT_EPHEMERAL_RANGE
    return (low, high) if 0 < low <= high < 65536 else DEFAULT_EPHEMERAL_RANGE


def listening_services(sockets: Iterable[SocketEntry],
                       ephemeral: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE) -> dict[tuple[str, int], ListeningService]:
    """{(protocol, port): service} of the TCP listeners and the bound, unconnected UDP sockets
    outside the ephemeral range; loopback-only TCP listeners on ephemeral ports left out."""
    services: dict[tuple[str, int], ListeningService] = {}
    for sock in sockets:
        if sock.protocol == "tcp":
            if sock.status != "LISTEN":
                continue
        elif sock.protocol == "udp":
            if sock.remote_address or ephemeral[0] <= sock.local_port <= ephemeral[1]:
                continue
        else:
            continue
        if not sock.local_port:
            continue
        service = services.setdefault((sock.protocol, sock.local_port),
                                      ListeningService(sock.protocol, sock.local_port))
        service.bind_addresses.add(sock.local_address)
        if sock.pid is not None:
            service.pids.add(sock.pid)
    return {key: s for key, s in services.items()
            if not (s.protocol == "tcp" and ephemeral[0] <= s.port <= ephemeral[1]
                    and all(is_loopback(a) for a in s.bind_addresses))}


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def add_service(out: Contribution, service: ListeningService, facts: Mapping[int, ProcessFacts]) -> str:
    """The Service item (and its RUNS_ON) in `out`; the connections collector adds the same item."""
    owner = facts.get(service.owner_pid) if service.owner_pid is not None else None
    owner = owner or ProcessFacts()
    ref = out.add("Service", service.ref, {"name": f"{service.protocol}/{service.port}"}, {
        "protocol": service.protocol, "port": service.port,
        "bind_addresses": sorted(service.bind_addresses),
        "process_name": owner.name, "exe": owner.exe, "user": owner.user,
    })
    out.relate(ref, "RUNS_ON", COMPUTER_REF)
    return ref


def contribute_services(out: Contribution, services: Mapping[tuple[str, int], ListeningService],
                        facts: Mapping[int, ProcessFacts]) -> None:
    for key in sorted(services):
        add_service(out, services[key], facts)


# -- fetching (psutil: this machine only) ------------------------------------------------------

def psutil_available() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def read_sockets() -> list[SocketEntry]:
    """Every inet socket of this machine (psutil reads /proc/net/{tcp,tcp6,udp,udp6})."""
    import socket

    import psutil

    out = []
    for conn in psutil.net_connections("inet"):
        protocol = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(conn.type)
        if protocol is None or not conn.laddr:
            continue
        remote = conn.raddr or None
        out.append(SocketEntry(
            protocol=protocol, local_address=canonical_address(conn.laddr.ip), local_port=conn.laddr.port,
            remote_address=canonical_address(remote.ip) if remote else None,
            remote_port=remote.port if remote else None, status=conn.status, pid=conn.pid,
        ))
    return out


def read_processes(pids: Iterable[int]) -> dict[int, ProcessFacts]:
    """Name, executable and user of each pid; what we may not read (AccessDenied) or what is gone
    stays None."""
    import psutil

    out = {}
    for pid in set(pids):
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            continue
        values: dict[str, str | None] = {}
        for attribute, read in (("name", proc.name), ("exe", proc.exe), ("user", proc.username)):
            try:
                values[attribute] = read() or None
            except psutil.Error:
                values[attribute] = None
        out[pid] = ProcessFacts(**values)
    return out


def ephemeral_range(ctx: Context) -> tuple[int, int]:
    return parse_port_range(ctx.read_file(EPHEMERAL_RANGE_PATH))


class ServicesCollector:
    name = "services"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.local and psutil_available()  # psutil describes the machine this process runs on

    def collect(self, ctx: Context) -> Contribution:
        services = listening_services(read_sockets(), ephemeral_range(ctx))
        facts = read_processes(pid for s in services.values() if (pid := s.owner_pid) is not None)
        out = Contribution()
        contribute_services(out, services, facts)
        return out
