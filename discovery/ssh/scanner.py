"""Scanning one host over SSH: connect (host key, credentials in order), find out what answers
(a Linux host, or which network platform), inventory it, and return a `HostScan`.

    scan = await scan_ssh_host("127.0.0.12", 2222, credentials, "scanner-1",
                               HostKeyPolicy(Path("/var/lib/fleetgraph/ssh_known_hosts")), timeout=5)
    scan.report      # a fleetgraph.report/1 Report (source kind "ssh"), or None
    scan.error       # why there is none: "ssh 127.0.0.12:2222: connection refused ..."

paramiko blocks: each host is scanned in a thread of a bounded pool (MAX_PARALLEL_HOSTS), so
`asyncio.gather` over many hosts never starts more SSH sessions than that at once. A host's
failure is a HostScan with an error, never an exception; nothing a host sends can crash the scan.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial

from agent.collectors import Collector
from discovery.base import HostScan, source_id
from discovery.ssh.client import (
    CommandResult,
    RemoteCommandTimeout,
    RemoteOutputTooLarge,
    SshSession,
    connect,
)
from discovery.ssh.context import SshContext
from discovery.ssh.credentials import SshCredential
from discovery.ssh.errors import SshScanError
from discovery.ssh.hostkeys import HostKeyPolicy
from discovery.ssh.linux import linux_report, linux_summary
from discovery.ssh.netdev.platforms import (
    PLATFORMS,
    PROBE_COMMANDS,
    Platform,
    detect_platform,
    unsupported_reason,
)
from discovery.ssh.netdev.report import SectionOutput, device_report

log = logging.getLogger(__name__)

MAX_PARALLEL_HOSTS = 8
DEFAULT_TIMEOUT = 10.0
DEVICE_COMMAND_TIMEOUT = 30.0
MAX_DEVICE_OUTPUT = 16 * 2**20
_PROBE_OUTPUT = 1 << 20
_OTHER_UNIXES = ("FreeBSD", "OpenBSD", "NetBSD", "Darwin", "SunOS", "AIX", "HP-UX")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL_HOSTS, thread_name_prefix="ssh-scan")
        return _pool


async def scan_ssh_host(address: str, port: int, credentials: Sequence[SshCredential], scanner_id: str,
                        host_keys: HostKeyPolicy, timeout: float = DEFAULT_TIMEOUT, *,
                        device_command_timeout: float = DEVICE_COMMAND_TIMEOUT,
                        collectors: Iterable[Collector] | None = None,
                        executor: Executor | None = None) -> HostScan:
    """Scan one host (see the module docstring). `timeout` bounds the TCP connect, the SSH
    handshake, each authentication attempt and each probe command; Linux commands keep the
    agent collectors' own timeouts, device commands `device_command_timeout`."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor or _executor(), partial(
        scan_ssh_host_sync, address, port, credentials, scanner_id, host_keys, timeout,
        device_command_timeout=device_command_timeout, collectors=collectors))


def scan_ssh_host_sync(address: str, port: int, credentials: Sequence[SshCredential], scanner_id: str,
                       host_keys: HostKeyPolicy, timeout: float = DEFAULT_TIMEOUT, *,
                       device_command_timeout: float = DEVICE_COMMAND_TIMEOUT,
                       collectors: Iterable[Collector] | None = None) -> HostScan:
    """`scan_ssh_host`, blocking (for a caller that has its own threads)."""
    started = time.perf_counter()
    where = f"{address}:{port}"

    def failed(reason: str) -> HostScan:
        log.warning("ssh %s: %s", where, reason)
        return HostScan(address, "ssh", error=f"ssh {where}: {reason}", duration_s=time.perf_counter() - started)

    try:
        _check_target(address, port, timeout)
        sid = source_id(scanner_id, "ssh", address, port)
    except ValueError as exc:
        return failed(str(exc))
    try:
        session = connect(address, port, credentials, host_keys, timeout)
    except SshScanError as exc:
        return failed(exc.reason)
    except Exception as exc:  # paramiko failing in a way nobody mapped: this host only
        log.error("ssh %s: connection failed: %s: %s", where, type(exc).__name__, exc)
        return failed(f"connection failed: {type(exc).__name__}: {exc}")
    try:
        with session:
            kind, first = identify(session, timeout)
            if kind == "linux":
                report = linux_report(SshContext(session, sid), sid, collectors)
                summary = linux_summary(report)
            else:
                platform = PLATFORMS[kind]
                outputs = fetch_device_sections(session, platform, first, device_command_timeout)
                report, summary = device_report(platform, address, sid, outputs)
    except SshScanError as exc:
        return failed(exc.reason)
    except Exception as exc:  # a bug or a host that sends what nobody expected: this host only
        log.error("ssh %s: scan failed: %s: %s", where, type(exc).__name__, exc)
        return failed(f"scan failed: {type(exc).__name__}: {exc}")
    incomplete = sorted(name for name, s in report.collectors.items() if s.status == "failed")
    log.info("ssh %s: inventoried (%s, %d items%s) in %.2fs", where, kind, len(report.items),
             f"; failed: {', '.join(incomplete)}" if incomplete else "", time.perf_counter() - started)
    return HostScan(address, "ssh", report=report, summary=summary, duration_s=time.perf_counter() - started)


def _check_target(address: object, port: object, timeout: object) -> None:
    if not isinstance(address, str) or not address or len(address) > 255 or any(
            c.isspace() or ord(c) < 0x20 for c in address):
        raise ValueError(f"invalid address {str(address)[:64]!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"invalid port {port!r}: expected 1-65535")
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ValueError(f"invalid timeout {timeout!r}: expected seconds, more than 0")


def _text(result: CommandResult) -> str:
    """What a device answered: CLIs print errors on stdout, shells on stderr."""
    raw = result.stdout if result.stdout.strip() else result.stderr
    return raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def _run(session: SshSession, command: str, timeout: float, limit: int) -> CommandResult:
    try:
        return session.run(command, timeout, limit)
    except RemoteCommandTimeout:
        raise SshScanError("timeout", f"no answer to {command!r} within {timeout:g}s") from None
    except RemoteOutputTooLarge:
        raise SshScanError("protocol", f"the answer to {command!r} is larger than {limit} bytes") from None
    except ConnectionError as exc:
        raise SshScanError("protocol", f"connection lost: {exc}") from None


def identify(session: SshSession, timeout: float) -> tuple[str, tuple[str, str] | None]:
    """"linux", or the platform name and the probe (command, answer) that told it."""
    uname = ""
    if "cisco" not in session.server_version.lower():  # IOS answers the probe with an error anyway
        result = _run(session, "uname -s", timeout, _PROBE_OUTPUT)
        uname = _text(result).strip()
        if result.exit_status == 0 and uname == "Linux":
            return "linux", None
        if result.exit_status == 0 and uname in _OTHER_UNIXES:
            raise SshScanError("unsupported", f"the host runs {uname}: the SSH scanner inventories Linux hosts "
                                              "and Cisco, Juniper, Arista, HP and Palo Alto devices")
    answers = []
    for command in PROBE_COMMANDS:
        text = _text(_run(session, command, timeout, _PROBE_OUTPUT))
        platform = detect_platform(text)
        if platform is not None:
            log.info("ssh %s: %s device (%s)", session.where, platform, session.server_version)
            return platform, (command, text)
        answers.append(f"{command}: {_first_line(text)!r}")
    raise SshScanError("unsupported", "neither a Linux host nor a recognised network device "
                                      f"(uname -s: {_first_line(uname)!r}; {'; '.join(answers)}; "
                                      f"server {session.server_version!r})")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:120]


def fetch_device_sections(session: SshSession, platform: Platform, first: tuple[str, str] | None,
                          timeout: float) -> dict[str, SectionOutput]:
    """Each section's answer, or why there is none (fetch only; device_report parses)."""
    outputs: dict[str, SectionOutput] = {}
    for section in platform.sections:
        if first is not None and section.command == first[0]:
            outputs[section.name] = SectionOutput(text=first[1])
            continue
        started = time.perf_counter()
        try:
            text = _text(_run(session, section.command, timeout, MAX_DEVICE_OUTPUT))
        except SshScanError as exc:
            outputs[section.name] = SectionOutput(status="failed", reason=f"{section.command}: {exc.reason}")
            continue
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        reason = unsupported_reason(text)
        outputs[section.name] = (SectionOutput(status="not_applicable", reason=reason, duration_ms=elapsed) if reason
                                 else SectionOutput(text=text, duration_ms=elapsed))
    return outputs
