"""The nmap lab on 127.0.0.15-19 (the nmap scanner's addresses; other scanners' lab servers live on
other 127 addresses, and nothing here ever scans outside this range).

    127.0.0.15  OpenSSH sshd :2222 (real), an SMTP banner :2525 (Postfix on Debian: two CPEs),
                nothing on :2223 (connection refused)
    127.0.0.16  a DNS server on udp/53 answering PTR for .15 and .17 (for nmap --dns-servers);
                no TCP port: a -Pn scan sees no host there
    127.0.0.17  an FTP banner :2121 of a Ricoh printer (-sV: device type "printer"), and :9998, a
                listener whose accept queue is full, so nmap's SYNs go unanswered: "filtered"
    127.0.0.18  a tarpit :9999 that accepts and never speaks (-sV waits on it: long scans)

`LabServers` runs everything but sshd in one child process (`python -m
tests.integration.discovery.nmap_lab`), `Sshd` runs the real sshd as LAB.md says; both stop by PID.
The benchmark (bench/nmap_wrapper.py) starts the same lab.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LAB_RANGE = "127.0.0.15-19"

SSH_HOST, SSH_PORT = "127.0.0.15", 2222
SMTP_PORT, REFUSED_PORT = 2525, 2223
SMTP_BANNER = b"220 lab-nmap-15.lab.test mail ESMTP Postfix (Debian/GNU)\r\n"
DNS_HOST = "127.0.0.16"
PRINTER_HOST, PRINTER_FTP_PORT, FILTERED_PORT = "127.0.0.17", 2121, 9998
PRINTER_BANNER = b"220 RICOH Pro 907EX FTP server (2.01) ready.\r\n"
TARPIT_HOST, TARPIT_PORT = "127.0.0.18", 9999
PTR_NAMES = {"127.0.0.15": "lab-nmap-15.lab.test", "127.0.0.17": "lab-printer-17.lab.test"}


# -- the child process -------------------------------------------------------------------------

def _ptr_query_name(address: str) -> str:
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


def dns_answer(query: bytes, names: dict[str, str]) -> bytes | None:
    """The reply to one DNS query: PTR for the names we know, NXDOMAIN otherwise; None if malformed."""
    if len(query) < 17:
        return None
    qid = query[:2]
    labels, i = [], 12
    while i < len(query) and query[i]:
        length = query[i]
        labels.append(query[i + 1:i + 1 + length].decode("ascii", "replace"))
        i += 1 + length
    if i + 5 > len(query):
        return None
    qtype = struct.unpack(">H", query[i + 1:i + 3])[0]
    question = query[12:i + 5]
    by_query = {_ptr_query_name(addr): name for addr, name in names.items()}
    target = by_query.get(".".join(labels).lower())
    if qtype == 12 and target:
        rdata = _dns_name(target)
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 12, 1, 60, len(rdata)) + rdata
        return qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer
    return qid + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question


class _DnsProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = dns_answer(data, PTR_NAMES)
        if reply is not None:
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


def _banner_server(banner: bytes):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(banner)
            await writer.drain()
            while line := await reader.readline():
                writer.write(b"221 Bye\r\n" if line.strip().upper() == b"QUIT" else b"502 unrecognized\r\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
    return handle


async def _tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read()  # never answer; wait until the scanner gives up
    except (ConnectionError, OSError):
        pass
    writer.close()


def _full_accept_queue(host: str, port: int) -> list[socket.socket]:
    """A listener that never accepts, with its queue filled: further SYNs are dropped ("filtered")."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(0)
    held = [listener]
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect((host, port))
        except BlockingIOError:
            pass
        held.append(client)
    return held


async def serve(without: set[str]) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await asyncio.start_server(_banner_server(PRINTER_BANNER), PRINTER_HOST, PRINTER_FTP_PORT,
                                   reuse_address=True),
        await asyncio.start_server(_tarpit, TARPIT_HOST, TARPIT_PORT, reuse_address=True),
    ]
    if "smtp" not in without:
        servers.append(await asyncio.start_server(_banner_server(SMTP_BANNER), SSH_HOST, SMTP_PORT,
                                                  reuse_address=True))
    await loop.create_datagram_endpoint(_DnsProtocol, local_addr=(DNS_HOST, 53))
    held = _full_accept_queue(PRINTER_HOST, FILTERED_PORT)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    for sock in held:
        sock.close()


# -- the parent side ---------------------------------------------------------------------------

class LabServers:
    """The asyncio lab servers in one child process; its stderr goes to `workdir`/lab.log.
    `without={"smtp"}` leaves the SMTP banner out (a service that went away)."""

    def __init__(self, workdir: Path, without: frozenset[str] = frozenset()) -> None:
        self.log = workdir / "lab.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration.discovery.nmap_lab", *without],
                                         cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready", or EOF if it died (a port in use, ...)
        if line.strip() != "ready":
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"the nmap lab servers did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5) as conn:
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {host}:{port} within {timeout} s")


class Sshd:
    """The real OpenSSH sshd on 127.0.0.15:2222, configured as LAB.md says, in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            raise RuntimeError("sshd is missing: install openssh-server (make sysdeps does)")
        key = workdir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (workdir / "authorized_keys").mkdir()
        config = workdir / "sshd_config"
        config.write_text(f"ListenAddress {SSH_HOST}:{SSH_PORT}\nHostKey {key}\nPidFile {workdir / 'sshd.pid'}\n"
                          f"AuthorizedKeysFile {workdir / 'authorized_keys'}/%u\nStrictModes no\n"
                          "PubkeyAuthentication yes\nPasswordAuthentication no\n"
                          "KbdInteractiveAuthentication no\nUsePAM no\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([sshd, "-D", "-f", str(config), "-E", str(workdir / "sshd.log")])
        _wait_for_port(SSH_HOST, SSH_PORT, 10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


if __name__ == "__main__":
    asyncio.run(serve(set(sys.argv[1:])))
