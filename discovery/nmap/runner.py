"""Running nmap: locate it, start it as an asyncio subprocess, bound its time and output, parse.

python-nmap's part: `nmap.PortScanner(nmap_search_path=(path,))` runs `nmap -V` and says whether
the program is nmap and which version (`nmap_version()`); we use it for that, once per path per
process, and nothing else. Its `scan()` blocks a thread, keeps one CPE per port and parses with
the unguarded xml.etree: the scan itself runs here, and its XML goes to discovery.nmap.xml.

nmap writes the XML to stdout (`-oX -`), read in chunks; more than `max_output_bytes` kills it.
A run longer than `timeout` is killed (SIGKILL: nmap holds no state worth a graceful stop), and so
is a run whose caller is cancelled. stdin is /dev/null, so nmap never waits for keystrokes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import nmap as python_nmap

from discovery.nmap.errors import NmapCrashed, NmapFailed, NmapNotFound, NmapTimeout
from discovery.nmap.options import NmapOptions, as_targets, build_nmap_argv
from discovery.nmap.targets import Target, check_allowed
from discovery.nmap.xml import MAX_XML_BYTES, NmapRun, parse_nmap_xml

MIN_NMAP_VERSION = (6, 0)  # XML output version 1.04 (osclass under osmatch); older nmap parses too
DEFAULT_TIMEOUT_S = 600.0
STDERR_KEPT = 8_192
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class NmapInstall:
    path: str
    version: tuple[int, int]


@lru_cache(maxsize=16)
def locate_nmap(nmap_path: str = "nmap") -> NmapInstall:
    """The nmap executable at `nmap_path` (a path, or a name looked up on PATH) and its version.
    Raises NmapNotFound with what to do. Cached: a found nmap is not probed again in this process
    (a failure is not cached, so installing nmap fixes the next call)."""
    resolved = shutil.which(nmap_path)
    if resolved is None:
        raise NmapNotFound(f"nmap not found at {nmap_path!r} (PATH={os.environ.get('PATH', '')}): install it "
                           "(Debian: apt-get install nmap) or give the path of the nmap executable")
    try:
        scanner = python_nmap.PortScanner(nmap_search_path=(resolved,))
    except python_nmap.PortScannerError:
        raise NmapNotFound(f"{resolved} -V did not print an nmap version: is it nmap? give the path of "
                           "the nmap executable") from None
    version = scanner.nmap_version()
    if version < MIN_NMAP_VERSION:
        raise NmapNotFound(f"{resolved} is nmap {version[0]}.{version[1]}; fleetgraph needs nmap "
                           f"{MIN_NMAP_VERSION[0]}.{MIN_NMAP_VERSION[1]} or later: upgrade it")
    return NmapInstall(resolved, version)


_located: dict[str, NmapInstall] = {}  # what locate_nmap found, read without a thread hop


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _stderr_text(tail: deque[bytes]) -> str:
    return b"".join(tail).decode("utf-8", "replace").strip()[-STDERR_KEPT:]


def _describe(targets: Sequence[Target]) -> str:
    specs = [s for t in targets if not t.exclude for s in t.specs]
    shown = ", ".join(specs[:4]) + (f" and {len(specs) - 4} more" if len(specs) > 4 else "")
    return shown or "no targets"


async def _read_bounded(stream: asyncio.StreamReader, limit: int,
                        process: asyncio.subprocess.Process) -> bytes | None:
    """All of `stream`; None, with the process killed, once more than `limit` bytes have come."""
    out = bytearray()
    while chunk := await stream.read(_CHUNK):
        out += chunk
        if len(out) > limit:
            process.kill()
            return None
    return bytes(out)


async def _read_tail(stream: asyncio.StreamReader, tail: deque[bytes]) -> None:
    """stderr, keeping only its last chunks: nmap's warnings are short, a flood is not kept."""
    size = 0
    while chunk := await stream.read(4096):
        tail.append(chunk)
        size += len(chunk)
        while size > STDERR_KEPT and len(tail) > 1:
            size -= len(tail.popleft())


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
    await process.wait()


async def run_nmap(targets: str | Iterable[str] | Sequence[Target], options: NmapOptions | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, *, nmap_path: str = "nmap",
                   allowed: str | Iterable[str] | None = None, max_output_bytes: int = MAX_XML_BYTES,
                   privileged: bool | None = None,
                   on_started: Callable[[int], None] | None = None) -> NmapRun:
    """Scan `targets` with `options`; the parsed run, with `command`, `options` and `duration_s` set.

    `allowed` limits the targets to these ranges (checked before nmap starts); `on_started` is
    called with nmap's pid once it runs (progress display, tests that kill it). Raises
    TargetError / NmapOptionsError (nothing ran), NmapNotFound, NmapTimeout, NmapCrashed,
    NmapFailed or NmapXmlError."""
    options = options or NmapOptions()
    parsed = as_targets(targets)
    if allowed is not None:
        check_allowed(parsed, allowed)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    argv = build_nmap_argv(parsed, options, "nmap", privileged=privileged)  # validate before probing
    install = _located.get(nmap_path)
    if install is None:  # the first time only: `nmap -V` blocks, so not on the event loop
        install = _located[nmap_path] = await asyncio.to_thread(locate_nmap, nmap_path)
    argv[0] = install.path
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    tail: deque[bytes] = deque()
    what = _describe(parsed)
    try:
        if on_started is not None:
            on_started(process.pid)  # inside the try: if it raises, nmap is still killed
        stdout, _, returncode = await asyncio.wait_for(asyncio.gather(
            _read_bounded(process.stdout, max_output_bytes, process), _read_tail(process.stderr, tail),
            process.wait()), timeout)
    except TimeoutError:
        raise NmapTimeout(f"nmap scanning {what} did not finish within {timeout:g} s and was killed: scan "
                          "fewer targets or ports, lower version_intensity, set host_timeout_s, or allow "
                          "more time") from None
    finally:
        await _stop(process)  # on every way out: timeout, cancellation, success (then a no-op)
    if stdout is None:
        raise NmapFailed(f"nmap scanning {what} wrote more than {max_output_bytes} bytes of XML and was "
                         "killed: scan fewer targets or ports per run")
    stderr = _stderr_text(tail)
    if returncode < 0:
        raise NmapCrashed(f"nmap scanning {what} was killed by {_signal_name(-returncode)} before it finished"
                          + (f"; it said: {stderr[-500:]}" if stderr else ""))
    if returncode != 0:
        raise NmapFailed(f"nmap scanning {what} failed (exit status {returncode}): "
                         f"{stderr[-1000:] or 'no message on stderr'}")
    run = parse_nmap_xml(stdout, max_bytes=max_output_bytes)
    if run.finished_exit == "error":
        raise NmapFailed(f"nmap scanning {what} reported an error: {run.errormsg or stderr[-1000:] or 'none given'}")
    return replace(run, command=tuple(argv), options=options, duration_s=time.perf_counter() - started,
                   warnings=tuple(line for line in stderr.splitlines() if line.strip()))
