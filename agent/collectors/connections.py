"""Dependencies: the established outbound TCP connections of this machine, as DEPENDS_ON relations.

An outbound connection is an ESTABLISHED TCP socket whose local port is not one this machine
listens on (that would be a client connected *to* us). For each distinct (remote address, remote
port, local process):

- the relation starts at the local Service when the process also listens (every Service it
  listens on: a web server and its TLS port both need the database), else at the computer;
- a remote peer is a **reference** item, IPAddress `remote:<addr>` with `reference=True`:
  reconcile resolves it to the CI that holds the address (and to the Service on the remote port
  when that host reported one) and never creates a CI from it;
- a loopback peer, or one of this machine's own addresses, is this machine: the relation goes to
  the local Service listening on the remote port, in this report (no reference: 127.0.0.1 is held
  by every host, so it could never resolve). A loopback peer nothing here listens on (a port
  forwarded elsewhere, a listener that just closed) is dropped.

Relation attributes: `remote_port` and `process_name`. The local ephemeral port, the pid and the
connection count never go in the report: they change every run and would only make noise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.collectors.base import COMPUTER_REF, Contribution
from agent.collectors.services import (
    ListeningService,
    ProcessFacts,
    SocketEntry,
    add_service,
    canonical_address,
    ephemeral_range,
    listening_services,
    psutil_available,
    read_processes,
    read_sockets,
    service_ref,
)
from agent.context import Context


@dataclass(frozen=True, slots=True, order=True)
class OutboundConnection:
    remote_address: str
    remote_port: int
    pid: int | None
    local: bool  # the peer is this machine (loopback or one of its own addresses)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _usable_peer(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_multicast)


def outbound_connections(sockets: Iterable[SocketEntry], own_addresses: Iterable[str] = ()) -> list[OutboundConnection]:
    """Distinct established outbound TCP connections, sorted. `own_addresses` are this machine's
    addresses (canonical); a peer among them, or a loopback peer, is `local`."""
    sockets = list(sockets)
    listening_ports = {s.local_port for s in sockets if s.protocol == "tcp" and s.status == "LISTEN"}
    own = set(own_addresses)
    found: set[OutboundConnection] = set()
    for sock in sockets:
        if (sock.protocol != "tcp" or sock.status != "ESTABLISHED" or not sock.remote_address
                or not sock.remote_port or sock.local_port in listening_ports
                or not _usable_peer(sock.remote_address)):
            continue
        local = is_loopback(sock.remote_address) or sock.remote_address in own
        found.add(OutboundConnection(sock.remote_address, sock.remote_port, sock.pid, local))
    return sorted(found, key=lambda c: (c.remote_address, c.remote_port, c.pid or 0, c.local))


def contribute_dependencies(out: Contribution, connections: Iterable[OutboundConnection],
                            services: Mapping[tuple[str, int], ListeningService],
                            facts: Mapping[int, ProcessFacts]) -> None:
    services_of_pid: dict[int, list[ListeningService]] = {}
    for key in sorted(services):
        for pid in services[key].pids:
            services_of_pid.setdefault(pid, []).append(services[key])
    for conn in connections:
        process = facts.get(conn.pid) if conn.pid is not None else None
        attributes = {"remote_port": conn.remote_port, "process_name": process.name if process else None}
        if conn.local:
            target_service = services.get(("tcp", conn.remote_port))
            if target_service is None:
                continue  # nothing here listens on it: not a dependency we can name
            to_ref = add_service(out, target_service, facts)
        else:
            to_ref = out.add("IPAddress", f"remote:{conn.remote_address}", {"address": conn.remote_address},
                             reference=True)
        own_services = services_of_pid.get(conn.pid, []) if conn.pid is not None else []
        from_refs = [add_service(out, s, facts) for s in own_services] or [COMPUTER_REF]
        for from_ref in from_refs:
            if from_ref != to_ref:  # a process talking to its own port is not a dependency
                out.relate(from_ref, "DEPENDS_ON", to_ref, attributes)


def own_addresses() -> set[str]:
    """This machine's addresses (psutil), canonical."""
    import socket

    import psutil

    return {canonical_address(a.address) for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)}


class ConnectionsCollector:
    name = "connections"

    def is_enabled(self, ctx: Context) -> bool:
        return ctx.local and psutil_available()  # psutil describes the machine this process runs on

    def collect(self, ctx: Context) -> Contribution:
        sockets = read_sockets()
        services = listening_services(sockets, ephemeral_range(ctx))
        connections = outbound_connections(sockets, own_addresses())
        pids = {c.pid for c in connections if c.pid is not None}
        pids |= {pid for s in services.values() if (pid := s.owner_pid) is not None}
        facts = read_processes(pids)
        out = Contribution()
        contribute_dependencies(out, connections, services, facts)
        return out


__all__ = ["ConnectionsCollector", "OutboundConnection", "contribute_dependencies", "outbound_connections",
           "service_ref"]
