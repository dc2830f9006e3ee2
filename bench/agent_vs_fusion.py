"""Agent benchmark (issue 3): fleetgraph's agent beside FusionInventory agent 2.6, on this machine,
in the same run.

    .venv/bin/python bench/agent_vs_fusion.py [--runs N]

Measures, for each agent, N full local inventories, each a fresh process (after one unmeasured
warm-up each, runs interleaved so both see the same page cache and load):
  - Fusion: `fusioninventory-agent --conf-file=<empty> --local <dir>` (XML file, nothing sent);
  - ours:   `python -m cmdb.cli agent run --dry-run --output <file> --state-dir <dir>`;
then our no-change run: a full report sent to a real collector on 127.0.0.1, then N more runs
with nothing changed, which send a delta once delta reports exist (otherwise it says so).

Our runs use compiled bytecode, as the agent does once installed (the zipapp ships its .pyc):
this machine's environment sets PYTHONDONTWRITEBYTECODE=1 and the source tree has no
__pycache__, which made every measured run compile every module it imports (~50 ms here). The
agent's processes therefore run with PYTHONPYCACHEPREFIX=<temporary folder> and without
PYTHONDONTWRITEBYTECODE: the unmeasured warm-up run writes the bytecode, the measured ones read it.

How a run is measured (the same for every command):
  - wall: from fork to reap (time.perf_counter around Popen and os.wait4);
  - peak RSS: GNU time's %M (the command runs under /usr/bin/time, which reaps it): the peak
    resident set of the largest single process in the tree (the kernel folds in each reaped
    child's peak), and also the peak of the summed RSS of the whole tree (the time wrapper left
    out), polled with psutil every 5 ms (catches concurrent children, can miss a peak shorter
    than 5 ms). Not ru_maxrss from our own wait4: Linux records the memory of the process that
    spawned the command into the command's ru_maxrss when it execs, so a command spawned from
    this script read at least this script's RSS (/bin/true read 24 MiB, and 105 MiB once the
    script held 80 MiB more; the no-change runs read the report bodies the script had loaded).
    GNU time is small, so what it reads is the command's own peak;
  - peak PSS of the whole tree, polled in separate runs (reading smaps costs the poller enough
    CPU to slow what it measures on 2 cores, so the timed runs do not read it): each process's
    proportional set size
    (/proc/<pid>/smaps_rollup), which counts a page shared by N processes as 1/N in each. The
    RSS sum counts it N times: a forked child shares its parent's memory copy-on-write, and
    the summed RSS of a parent and its forked children (our agent forks one, to scan
    copyright files while the parent collects) reads as if each had its own copy;
  - CPU: user + system seconds of the tree (wait4 rusage).

Then it compares what the two found: our package count against `dpkg-query -W` and Fusion's
SOFTWARES, and every non-empty Fusion hardware field (BIOS, HARDWARE, CPUS, MEMORIES, STORAGES,
DRIVES, NETWORKS, OPERATINGSYSTEM) against its counterpart in our report (bench/fusion_parity.py).
tests/integration/test_fusion_parity.py asserts the counts and fields with the same functions.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fusion_parity import (  # noqa: E402
    FUSION,
    compare_fields,
    dpkg_package_count,
    fusion_deb_count,
    our_deb_installs,
    parse_fusion_xml,
)

# Issue 3's targets.
TARGET_WALL_RATIO = 0.25
TARGET_RSS_RATIO = 0.5
TARGET_NOCHANGE_WALL_RATIO = 0.1
TARGET_NOCHANGE_PAYLOAD = 2048

# ---------------------------------------------------------------------------------------------
# Measuring a run


@dataclass
class RunStats:
    wall_s: float
    maxrss_kib: int  # ru_maxrss: the largest single process of the tree (GNU time's %M)
    tree_rss_kib: int  # peak of the summed RSS of the tree, polled
    tree_pss_kib: int  # peak of the summed PSS of the tree, polled
    cpu_s: float
    returncode: int
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")


def _tree_rss_kib(root, include_root: bool = True, pss: bool = False) -> tuple[int, int]:
    """(summed RSS, summed PSS or 0) of the tree of `root` (a psutil.Process) in KiB."""
    import psutil

    rss = total_pss = 0
    try:
        procs = [root, *root.children(recursive=True)] if include_root else root.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
        if pss:
            total_pss += _pss_bytes(proc.pid)
    return rss // 1024, total_pss // 1024


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


GNU_TIME = "/usr/bin/time"


def measure(argv: list[str], env: dict[str, str] | None = None, poll_s: float = 0.005,
            pss: bool = False) -> RunStats:
    """Run `argv` once as a fresh process; wall, peak RSS (both ways) and CPU of its tree, and
    with `pss` the peak summed PSS (tree_pss_kib is 0 without)."""
    import psutil

    wrapped = Path(GNU_TIME).exists()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="fg-bench-rss-") as rss_file:
        if wrapped:
            argv = [GNU_TIME, "-f", "%M", "-o", rss_file.name, "--", *argv]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        peak = [0, 0]
        done = threading.Event()

        def poll() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.is_set():
                rss, tree_pss = _tree_rss_kib(root, include_root=not wrapped, pss=pss)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], tree_pss)
                done.wait(poll_s)

        sampler = threading.Thread(target=poll, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # reaping it here is what gives the rusage
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        maxrss = usage.ru_maxrss
        if wrapped:  # GNU time's last line (it may say "Command exited with non-zero status" first)
            maxrss = int(Path(rss_file.name).read_text().split()[-1])
        return RunStats(wall, maxrss, peak[0], peak[1], usage.ru_utime + usage.ru_stime, proc.returncode,
                        out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def dpkg_listing() -> str:
    """What dpkg knows, to tell whether the machine changed while we measured."""
    return subprocess.run(["dpkg-query", "-W"], capture_output=True, text=True, check=True).stdout


def _checked(stats: RunStats, what: str) -> RunStats:
    if stats.returncode != 0:
        raise SystemExit(f"{what} exited {stats.returncode}:\n{stats.stderr[-2000:]}")
    return stats


# Where our processes keep their bytecode (see the module doc); set by main() to a temporary folder.
BYTECODE_CACHE: Path | None = None


def _agent_env(**extra: str) -> dict[str, str]:
    """Our environment without any FLEETGRAPH_* setting the caller may have exported, with
    bytecode written to and read from BYTECODE_CACHE."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETGRAPH_")}
    if BYTECODE_CACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    return {**env, **extra}


def fusion_command(conf: Path, out_dir: Path) -> list[str]:
    return [FUSION, f"--conf-file={conf}", "--local", str(out_dir)]


def ours_command(output: Path, state_dir: Path) -> list[str]:
    return [sys.executable, "-m", "cmdb.cli", "agent", "run", "--dry-run", "--output", str(output),
            "--state-dir", str(state_dir)]


def run_fusion(conf: Path, out_dir: Path, pss: bool = False) -> tuple[RunStats, Path]:
    """One full Fusion local inventory into an emptied `out_dir`; (stats, the XML file)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    stats = _checked(measure(fusion_command(conf, out_dir), pss=pss), FUSION)
    files = sorted(out_dir.glob("*.ocs")) + sorted(out_dir.glob("*.xml"))
    if not files:
        raise SystemExit(f"{FUSION} wrote no inventory into {out_dir}:\n{stats.stderr[-2000:]}")
    return stats, files[0]


def run_ours(output: Path, state_dir: Path, pss: bool = False) -> RunStats:
    output.unlink(missing_ok=True)
    return _checked(measure(ours_command(output, state_dir), env=_agent_env(), pss=pss),
                    "fleetgraph agent run --dry-run")


# ---------------------------------------------------------------------------------------------
# The no-change run against a real collector


@dataclass
class SentReport:
    stats: RunStats
    mode: str | None  # "full" or "delta" as stored by the collector; None if nothing was stored
    json_bytes: int  # the report as the collector stored it (decompressed)
    wire_bytes: int | None  # the gzip body the agent says it sent


class LocalCollector:
    """`fleetgraph collector serve` on 127.0.0.1 (random port), as an operator starts it."""

    def __init__(self, tmp: Path):
        from cmdb.backends import sqlite_url

        self.db = tmp / "db.sqlite"
        self.store = sqlite_url(self.db)
        self.log = open(tmp / "collector.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0", "--store", self.store],
            cwd=REPO, env=_agent_env(), stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if m := re.search(r"listening on (http://\S+)", line):
                self.url = m.group(1)
                threading.Thread(target=self._drain, daemon=True).start()  # a full pipe would stall it
                break
        else:
            raise SystemExit(f"the collector did not start; see {tmp / 'collector.log'}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def token(self) -> str:
        return subprocess.run([sys.executable, "-m", "cmdb.cli", "token", "create", "--name", "bench",
                               "--role", "agent", "--store", self.store], cwd=REPO, env=_agent_env(),
                              capture_output=True, text=True, check=True).stdout.strip()

    def wait_reconciled(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.url + "/healthz", timeout=10) as resp:
                if json.loads(resp.read()).get("pending_reports") == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"the collector still had reports pending after {timeout}s")

    def stored_reports(self) -> list[bytes]:
        """Report bodies as stored, oldest first (read-only; the collector keeps writing)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return [bytes(row[0]) for row in conn.execute("SELECT body FROM report ORDER BY seq")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def send_once(collector: LocalCollector, token: str, state_dir: Path) -> SentReport:
    """`fleetgraph agent run --once` against the collector, measured; what the collector stored."""
    before = len(collector.stored_reports())
    argv = [sys.executable, "-m", "cmdb.cli", "agent", "run", "--once", "--server", collector.url,
            "--state-dir", str(state_dir)]
    stats = _checked(measure(argv, env=_agent_env(FLEETGRAPH_AGENT_TOKEN=token)), "fleetgraph agent run --once")
    new = collector.stored_reports()[before:]
    wire = re.search(r"(\d+) bytes", stats.stdout + stats.stderr)
    if not new:
        return SentReport(stats, None, 0, int(wire[1]) if wire else None)
    body = new[-1]
    mode = json.loads(body).get("mode", "full")
    return SentReport(stats, mode, len(body), int(wire[1]) if wire else len(gzip.compress(body)))


# The daemon (`agent run` without --once, what the systemd unit runs) inventories in one long-lived
# process: each interval costs the run itself, not an interpreter start and the imports.
_DAEMON_RUNS = """
import json, sys, time
from pathlib import Path
from agent.runner import run_once
url, token, state, runs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
walls = []
for i in range(runs + 1):  # the first run in the process warms its caches: not counted
    t0 = time.perf_counter()
    result = run_once(url, token, state, timeout=30)
    if i:
        walls.append(time.perf_counter() - t0)
    assert result.http_status in (200, 202), result.http_status
print(json.dumps(walls))
"""


def daemon_no_change_walls(collector: LocalCollector, token: str, state_dir: Path, runs: int) -> list[float]:
    """Wall seconds of no-change runs inside one agent process (the daemon's steady state)."""
    proc = subprocess.run([sys.executable, "-c", _DAEMON_RUNS, collector.url, token, str(state_dir), str(runs)],
                          cwd=REPO, env=_agent_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"in-process no-change runs failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def no_change_runs(tmp: Path, runs: int) -> tuple[SentReport, list[SentReport], list[float]]:
    """A full report (acknowledged and reconciled), then `runs` no-change runs as separate
    processes, then `runs` more inside one process (daemon mode)."""
    collector = LocalCollector(tmp)
    try:
        token = collector.token()
        state = tmp / "agent-state"
        first = send_once(collector, token, state)
        collector.wait_reconciled()
        later = []
        for _ in range(runs):
            later.append(send_once(collector, token, state))
            collector.wait_reconciled()
        in_process = daemon_no_change_walls(collector, token, state, runs)
        return first, later, in_process
    finally:
        collector.stop()


# ---------------------------------------------------------------------------------------------
# The report


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def machine_line() -> str:
    import psutil

    fusion_version = subprocess.run([FUSION, "--version"], capture_output=True, text=True).stdout.splitlines()
    os_name = "unknown OS"
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return (f"{os_name}, kernel {platform.release()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
            f"{fusion_version[0] if fusion_version else FUSION}. Date: {date.today().isoformat()}")


def print_timing_table(fusion: list[RunStats], ours: list[RunStats], fusion_pss: list[int],
                       our_pss: list[int]) -> None:
    print("| agent (full local inventory, fresh process) | wall min s | wall median s | "
          "peak RSS, largest process MiB (median) | peak RSS, whole tree MiB (median) | "
          "peak PSS, whole tree MiB (median) | CPU s (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs, pss in (("FusionInventory agent 2.6 `--local`", fusion, fusion_pss),
                            ("fleetgraph `agent run --dry-run`", ours, our_pss)):
        print(f"| {name} | {min(r.wall_s for r in runs):.3f} | {_median(r.wall_s for r in runs):.3f} | "
              f"{_mib(_median(r.maxrss_kib for r in runs))} | {_mib(_median(r.tree_rss_kib for r in runs))} | "
              f"{_mib(_median(pss))} | {_median(r.cpu_s for r in runs):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each (after one warm-up each)")
    args = ap.parse_args()
    if shutil.which(FUSION) is None:
        raise SystemExit(f"{FUSION} is not installed: apt-get install -y {FUSION} (or make sysdeps)")
    if not Path(GNU_TIME).exists():
        print(f"WARNING: {GNU_TIME} (GNU time) is missing: each 'largest process' RSS below is at least this "
              "script's own RSS (apt-get install -y time)", file=sys.stderr)

    global BYTECODE_CACHE
    with tempfile.TemporaryDirectory(prefix="fg-bench-agent-") as tmp_name:
        tmp = Path(tmp_name)
        BYTECODE_CACHE = tmp / "pycache"
        conf = tmp / "fusion-empty.cfg"
        conf.write_text("")
        fusion_dir, our_file, our_state = tmp / "fusion-out", tmp / "ours.json", tmp / "ours-state"

        packages_before = dpkg_listing()
        print(f"warm-up, then {args.runs} measured runs of each, interleaved ...", file=sys.stderr)
        run_fusion(conf, fusion_dir)
        run_ours(our_file, our_state)
        fusion_runs, our_runs = [], []
        for _ in range(args.runs):
            stats, xml_file = run_fusion(conf, fusion_dir)
            fusion_runs.append(stats)
            our_runs.append(run_ours(our_file, our_state))
        fusion_pss, our_pss = [], []  # PSS-polled runs, apart from the timed ones (see measure)
        for _ in range(args.runs):
            fusion_pss.append(run_fusion(conf, fusion_dir, pss=True)[0].tree_pss_kib)
            our_pss.append(run_ours(our_file, our_state, pss=True).tree_pss_kib)
        inventory = parse_fusion_xml(xml_file)
        report = json.loads(our_file.read_bytes())

        print("no-change runs against a collector on 127.0.0.1 ...", file=sys.stderr)
        first_sent, unchanged, daemon_walls = no_change_runs(tmp, args.runs)
        packages_after = dpkg_listing()

    if packages_after != packages_before:
        print("\nWARNING: the installed packages changed during this run (apt or dpkg at work?): the counts "
              "and the no-change runs below are not comparable; re-run on a quiet machine.")
    print(f"\nmachine: {machine_line()}\ncommand: .venv/bin/python bench/agent_vs_fusion.py --runs {args.runs}\n")
    print_timing_table(fusion_runs, our_runs, fusion_pss, our_pss)
    f_wall, o_wall = _median(r.wall_s for r in fusion_runs), _median(r.wall_s for r in our_runs)
    f_rss, o_rss = _median(r.maxrss_kib for r in fusion_runs), _median(r.maxrss_kib for r in our_runs)
    f_tree, o_tree = _median(r.tree_rss_kib for r in fusion_runs), _median(r.tree_rss_kib for r in our_runs)
    f_pss, o_pss = _median(fusion_pss), _median(our_pss)
    print(f"\nfull inventory wall, ours / Fusion (medians): {o_wall / f_wall:.2f}x "
          f"(target <= {TARGET_WALL_RATIO}x: {_verdict(o_wall / f_wall <= TARGET_WALL_RATIO)})")
    print(f"peak RSS, ours / Fusion (medians; target <= {TARGET_RSS_RATIO}x): largest process "
          f"{o_rss / f_rss:.2f}x {_verdict(o_rss / f_rss <= TARGET_RSS_RATIO)}, whole tree "
          f"{o_tree / f_tree:.2f}x {_verdict(o_tree / f_tree <= TARGET_RSS_RATIO)} (RSS summed), "
          f"{o_pss / f_pss:.2f}x {_verdict(o_pss / f_pss <= TARGET_RSS_RATIO)} (PSS summed)")

    dpkg = dpkg_package_count()
    ours_pkgs = len(our_deb_installs(report))
    fusion_pkgs = fusion_deb_count(inventory)
    print("\n| packages | count |\n|---|---:|")
    print(f"| `dpkg-query -W \\| wc -l` | {dpkg} |\n| Fusion SOFTWARES (FROM=deb; all: {len(inventory.softwares)}) "
          f"| {fusion_pkgs} |\n| fleetgraph SoftwareInstall (deb) | {ours_pkgs} |")
    print(f"package counts equal: {_verdict(dpkg == ours_pkgs == fusion_pkgs)}")

    checks = compare_fields(inventory, report)
    print("\n| Fusion field (non-empty here) | Fusion value | our attribute | ours present | our value |")
    print("|---|---|---|---|---|")
    for c in checks:
        ours_text = "" if c.our_value is None else str(c.our_value)
        print(f"| {c.key} | {c.fusion_value[:40]} | {c.target or '-'} | {c.status} | "
              f"{ours_text[:40]}{' — ' + c.note if c.note else ''} |")
    compared = [c for c in checks if c.target is not None]
    missing = [c for c in compared if not c.present]
    unmapped = [c for c in checks if c.status == "UNMAPPED"]
    print(f"\nhardware fields: {len(compared) - len(missing)}/{len(compared)} of Fusion's non-empty fields "
          f"have a non-empty counterpart: {_verdict(not missing and not unmapped)}")
    if missing:
        print("we lack: " + ", ".join(f"{c.key} -> {c.target}" for c in missing))
    if unmapped:
        print("unmapped Fusion fields: " + ", ".join(c.key for c in unmapped))

    print("\n| no-change run (`agent run --once`, collector on 127.0.0.1) | wall min s | wall median s | "
          "peak RSS MiB (largest process) | mode stored | JSON bytes | gzip bytes sent |")
    print("|---|---:|---:|---:|---|---:|---:|")
    print(f"| first run (full report) | {first_sent.stats.wall_s:.3f} | {first_sent.stats.wall_s:.3f} | "
          f"{_mib(first_sent.stats.maxrss_kib)} | {first_sent.mode} | {first_sent.json_bytes} | "
          f"{first_sent.wire_bytes} |")
    walls = [s.stats.wall_s for s in unchanged]
    modes = sorted({str(s.mode) for s in unchanged})
    print(f"| no-change runs (x{len(unchanged)}) | {min(walls):.3f} | {_median(walls):.3f} | "
          f"{_mib(_median(s.stats.maxrss_kib for s in unchanged))} | {', '.join(modes)} | "
          f"{max(s.json_bytes for s in unchanged)} (max) | {max(s.wire_bytes or 0 for s in unchanged)} (max) |")
    deltas = [s for s in unchanged if s.mode == "delta"]
    if not deltas:
        print(f"\nno-change run: delta not available (the collector stored mode {', '.join(modes)} for the "
              "no-change runs); the wall and payload targets are not measurable yet")
        return
    ratio = _median(s.stats.wall_s for s in deltas) / f_wall
    payload = max(s.json_bytes for s in deltas)
    others = f" ({len(unchanged) - len(deltas)} of the runs sent a full report instead)" if len(deltas) < len(unchanged) else ""
    print(f"\nno-change (delta) wall / Fusion full wall (medians): {ratio:.3f}x (target <= "
          f"{TARGET_NOCHANGE_WALL_RATIO}x: {_verdict(ratio <= TARGET_NOCHANGE_WALL_RATIO)}); payload "
          f"{payload} B of JSON at most (target <= {TARGET_NOCHANGE_PAYLOAD} B: "
          f"{_verdict(payload <= TARGET_NOCHANGE_PAYLOAD)}){others}")
    daemon_ratio = _median(daemon_walls) / f_wall
    print(f"no-change run in daemon mode (one process, runs 2..{len(daemon_walls) + 1}): median "
          f"{_median(daemon_walls) * 1000:.0f} ms = {daemon_ratio:.3f}x Fusion's full run (target <= "
          f"{TARGET_NOCHANGE_WALL_RATIO}x: {_verdict(daemon_ratio <= TARGET_NOCHANGE_WALL_RATIO)})")

if __name__ == "__main__":
    main()
