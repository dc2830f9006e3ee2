"""Services (listening sockets) and dependencies (outbound connections): the pure functions on
recorded sockets, and both collectors on this machine with real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import psutil
import pytest

from agent.builder import build_report
from agent.collectors.base import Contribution
from agent.collectors.connections import ConnectionsCollector, contribute_dependencies, outbound_connections
from agent.collectors.services import (
    ProcessFacts,
    ServicesCollector,
    SocketEntry,
    canonical_address,
    contribute_services,
    listening_services,
    parse_port_range,
)
from agent.context import LocalContext
from cmdb.report import check_report, decode_report, encode_report
from tests.unit.agent.conftest import RecordedContext

AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000001"


def tcp(local, lport, remote=None, rport=None, status="ESTABLISHED", pid=None) -> SocketEntry:
    return SocketEntry("tcp", local, lport, remote, rport, status, pid)


def udp(local, lport, remote=None, rport=None, pid=None) -> SocketEntry:
    return SocketEntry("udp", local, lport, remote, rport, "NONE", pid)


RECORDED_SOCKETS = [
    tcp("0.0.0.0", 22, status="LISTEN", pid=700),
    tcp("::", 22, status="LISTEN", pid=700),
    tcp("0.0.0.0", 80, status="LISTEN", pid=900),  # nginx master ...
    tcp("0.0.0.0", 80, status="LISTEN", pid=901),  # ... and a worker holding the same socket
    tcp("0.0.0.0", 443, status="LISTEN", pid=900),
    tcp("0.0.0.0", 443, status="LISTEN", pid=901),
    tcp("127.0.0.1", 5432, status="LISTEN", pid=1200),
    udp("0.0.0.0", 53, pid=800),
    udp("0.0.0.0", 41234, pid=800),  # ephemeral: a client's query socket
    udp("10.0.0.5", 5353, "10.0.0.1", 53, pid=801),  # connected: a client
    tcp("10.0.0.5", 22, "192.0.2.7", 51000, pid=701),  # someone ssh'd in: inbound
    tcp("10.0.0.5", 40001, "10.0.0.20", 5432, pid=901),  # nginx worker -> remote database
    tcp("10.0.0.5", 40002, "10.0.0.20", 5432, pid=901),  # a second connection, same dependency
    tcp("10.0.0.5", 40003, "10.0.0.21", 443, pid=3000),  # curl, not a listener -> from the computer
    tcp("127.0.0.1", 40004, "127.0.0.1", 5432, pid=900),  # nginx -> local postgres over loopback
    tcp("10.0.0.5", 40005, "10.0.0.5", 5432, pid=3001),  # own address: local too
    tcp("127.0.0.1", 40006, "127.0.0.1", 9999, pid=3002),  # loopback, nothing listens: dropped
    tcp("::ffff:10.0.0.5", 40007, "::ffff:10.0.0.22", 8080, status="SYN_SENT", pid=3000),  # not established
    tcp("10.0.0.5", 40008, "10.0.0.21", 443, pid=None),  # pid unknown (another user's process)
]
FACTS = {700: ProcessFacts("sshd", "/usr/sbin/sshd", "root"),
         900: ProcessFacts("nginx", "/usr/sbin/nginx", "root"), 901: ProcessFacts("nginx", "/usr/sbin/nginx", "www-data"),
         1200: ProcessFacts("postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres"),
         800: ProcessFacts("named", None, None), 3000: ProcessFacts("curl", "/usr/bin/curl", "alice"),
         3001: ProcessFacts("psql", "/usr/bin/psql", "alice")}


def test_listening_services_merge_families_and_skip_clients():
    services = listening_services(RECORDED_SOCKETS)
    assert sorted(services) == [("tcp", 22), ("tcp", 80), ("tcp", 443), ("tcp", 5432), ("udp", 53)]
    assert services[("tcp", 22)].bind_addresses == {"0.0.0.0", "::"}
    assert services[("tcp", 80)].owner_pid == 900


def test_loopback_listeners_on_kernel_assigned_ports_are_not_services():
    sockets = [tcp("127.0.0.1", 45001, status="LISTEN", pid=5000),  # a test server on port 0
               tcp("::1", 45002, status="LISTEN", pid=5001),
               tcp("0.0.0.0", 45003, status="LISTEN", pid=5002),  # reachable from outside: kept
               tcp("127.0.0.1", 8080, status="LISTEN", pid=5003)]  # a chosen port: kept
    assert sorted(listening_services(sockets)) == [("tcp", 8080), ("tcp", 45003)]


def test_service_items():
    out = Contribution()
    contribute_services(out, listening_services(RECORDED_SOCKETS), FACTS)
    ssh = out.items["svc:tcp/22"]
    assert (ssh.class_, ssh.identifiers) == ("Service", {"name": "tcp/22"})
    assert ssh.attributes == {"protocol": "tcp", "port": 22, "bind_addresses": ["0.0.0.0", "::"],
                              "process_name": "sshd", "exe": "/usr/sbin/sshd", "user": "root"}
    assert out.items["svc:tcp/80"].attributes["user"] == "root"  # the master, not a worker
    assert out.items["svc:udp/53"].attributes == {"protocol": "udp", "port": 53, "bind_addresses": ["0.0.0.0"],
                                                  "process_name": "named"}  # exe/user unreadable: absent
    assert ("svc:tcp/22", "RUNS_ON", "computer") in out.relations
    assert not any("pid" in i.attributes for i in out.items.values())


def test_outbound_connections_are_distinct_and_never_inbound():
    found = outbound_connections(RECORDED_SOCKETS, own_addresses={"10.0.0.5"})
    assert [(c.remote_address, c.remote_port, c.pid, c.local) for c in found] == [
        ("10.0.0.20", 5432, 901, False), ("10.0.0.21", 443, None, False), ("10.0.0.21", 443, 3000, False),
        ("10.0.0.5", 5432, 3001, True), ("127.0.0.1", 5432, 900, True), ("127.0.0.1", 9999, 3002, True)]


def _dependencies() -> Contribution:
    out = Contribution()
    services = listening_services(RECORDED_SOCKETS)
    contribute_dependencies(out, outbound_connections(RECORDED_SOCKETS, {"10.0.0.5"}), services, FACTS)
    return out


def _depends_on(out: Contribution) -> list[tuple[str, str, dict]]:
    edges = [(f, to, out.relation_attributes.get(i, {})) for i, (f, t, to) in enumerate(out.relations)
             if t == "DEPENDS_ON"]
    return sorted(edges, key=lambda e: (e[0], e[1], sorted(e[2].items())))


def test_dependencies_start_at_the_services_of_the_process():
    out = _dependencies()
    assert _depends_on(out) == [
        ("computer", "remote:10.0.0.21", {"remote_port": 443, "process_name": "curl"}),
        ("computer", "remote:10.0.0.21", {"remote_port": 443}),  # pid unknown: no process name
        ("computer", "svc:tcp/5432", {"remote_port": 5432, "process_name": "psql"}),  # own address: local
        ("svc:tcp/443", "remote:10.0.0.20", {"remote_port": 5432, "process_name": "nginx"}),
        ("svc:tcp/443", "svc:tcp/5432", {"remote_port": 5432, "process_name": "nginx"}),  # loopback: local
        ("svc:tcp/80", "remote:10.0.0.20", {"remote_port": 5432, "process_name": "nginx"}),
        ("svc:tcp/80", "svc:tcp/5432", {"remote_port": 5432, "process_name": "nginx"}),
    ]
    remote = out.items["remote:10.0.0.20"]
    assert (remote.class_, remote.identifiers, remote.attributes, remote.reference) == (
        "IPAddress", {"address": "10.0.0.20"}, {}, True)
    assert not out.items["svc:tcp/5432"].reference
    # Every item a relation names is in the contribution, with the same shape as the services collector's.
    assert out.items["svc:tcp/80"].attributes["process_name"] == "nginx"
    assert ("svc:tcp/80", "RUNS_ON", "computer") in out.relations


def test_dependencies_survive_the_builder_and_the_wire():
    class Recorded:
        name = "connections"

        def is_enabled(self, ctx):
            return True

        def collect(self, ctx):
            return _dependencies()

    report = decode_report(encode_report(build_report(RecordedContext(), [Recorded()])))
    check_report(report)
    assert report.collectors["connections"].status == "ok"
    references = [i for i in report.items if i.reference]
    assert [(i.ref, i.class_) for i in references] == [("remote:10.0.0.20", "IPAddress"), ("remote:10.0.0.21", "IPAddress")]
    to_db = [r for r in report.relations if r.to == "remote:10.0.0.20"]
    assert {(r.from_, r.attributes["remote_port"]) for r in to_db} == {("svc:tcp/80", 5432), ("svc:tcp/443", 5432)}
    # two relations between the same refs that differ by their attributes are both kept
    assert len([r for r in report.relations if (r.from_, r.to) == ("computer", "remote:10.0.0.21")]) == 2


@pytest.mark.parametrize("raw,canonical", [("::ffff:10.0.0.5", "10.0.0.5"), ("fe80::1%eth0", "fe80::1"),
                                           ("2001:DB8:0:0::1", "2001:db8::1"), ("10.0.0.5", "10.0.0.5")])
def test_canonical_addresses(raw, canonical):
    assert canonical_address(raw) == canonical


def test_port_range():
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    assert parse_port_range(None) == parse_port_range("junk") == (32768, 60999)


def test_not_applicable_on_a_recorded_host():
    report = build_report(RecordedContext(), [ServicesCollector(), ConnectionsCollector()])
    assert {n: s.status for n, s in report.collectors.items()} == {"services": "not_applicable",
                                                                   "connections": "not_applicable"}


# -- this machine, with real sockets on loopback ------------------------------------------------

@contextmanager
def listening_socket(kind=socket.SOCK_STREAM, port=None):
    """A socket bound on 127.0.0.1 to a free port below the ephemeral range (a loopback listener on
    a kernel-assigned ephemeral port is deliberately not a Service)."""
    port = _free_port_below_ephemeral(kind) if port is None else port
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


@contextmanager
def client_process(port: int, also_listen: bool = False):
    """A separate process connected to 127.0.0.1:port (optionally also listening itself); yields
    the port it listens on, if any. It exits when its stdin closes."""
    code = textwrap.dedent(f"""
        import socket, sys
        listener = None
        if {also_listen!r}:
            listener = socket.socket(); listener.bind(("127.0.0.1", {_free_port_below_ephemeral() if also_listen else 0})); listener.listen()
        conn = socket.create_connection(("127.0.0.1", {port}))
        print(listener.getsockname()[1] if listener else 0, flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def _free_port_below_ephemeral(kind=socket.SOCK_STREAM) -> int:
    import random

    for port in random.sample(range(20000, 32000), 12000):
        try:
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port below the ephemeral range")


def _free_udp_port_below_ephemeral() -> int:
    return _free_port_below_ephemeral(socket.SOCK_DGRAM)


def test_services_on_this_machine():
    udp_port = _free_udp_port_below_ephemeral()
    with listening_socket() as (_, port), listening_socket(socket.SOCK_DGRAM, udp_port), \
            listening_socket(port=0) as (_, ephemeral_port):
        report = build_report(LocalContext(agent_id=AGENT_ID), [ServicesCollector()])
    assert report.collectors["services"].status == "ok", report.collectors["services"].reason
    check_report(report)
    services = {i.ref: i for i in report.items if i.class_ == "Service"}
    mine = services[f"svc:tcp/{port}"]
    assert mine.identifiers == {"name": f"tcp/{port}"}
    assert mine.attributes["bind_addresses"] == ["127.0.0.1"] and mine.attributes["protocol"] == "tcp"
    assert mine.attributes["process_name"] == psutil.Process().name()
    assert os.path.realpath(mine.attributes["exe"]) == os.path.realpath(sys.executable)
    import pwd
    assert mine.attributes["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert services[f"svc:udp/{udp_port}"].attributes["bind_addresses"] == ["127.0.0.1"]
    assert all("pid" not in s.attributes for s in services.values())
    assert f"svc:tcp/{ephemeral_port}" not in services, "a loopback listener on a kernel-assigned port"


def test_a_loopback_connection_is_a_dependency_on_the_local_service():
    with listening_socket() as (server, port):
        with client_process(port) as _, client_process(port, also_listen=True) as client_port:
            report = build_report(LocalContext(agent_id=AGENT_ID), [ServicesCollector(), ConnectionsCollector()])
    assert report.collectors["connections"].status == "ok", report.collectors["connections"].reason
    check_report(report)
    to_server = [r for r in report.relations if r.type == "DEPENDS_ON" and r.to == f"svc:tcp/{port}"]
    assert {r.from_ for r in to_server} == {"computer", f"svc:tcp/{client_port}"}
    for rel in to_server:
        assert rel.attributes["remote_port"] == port and rel.attributes["process_name"].startswith("python")
    # The server side of the same connections (local port = a listening port) is not a dependency,
    # and no ephemeral port or pid reaches the report.
    assert not [r for r in report.relations if r.type == "DEPENDS_ON" and r.from_ == f"svc:tcp/{port}"]
    assert not any(i.reference for i in report.items if i.ref.startswith("remote:127."))
    assert all(set(r.attributes) <= {"remote_port", "process_name"} for r in report.relations)
