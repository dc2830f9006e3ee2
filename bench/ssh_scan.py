"""SSH scanner benchmark (issue 4): the SSH inventory of the lab sshd host beside the local agent
run of the same collectors on the same machine (127.0.0.12 is this machine), in the same run.

    .venv/bin/python bench/ssh_scan.py [--runs N]

Starts the SSH lab of the integration tests (tests/integration/discovery/sshd_lab.py: real
OpenSSH sshd on 127.0.0.12/.13, an unprivileged user with /bin/sh; needs root), then, N times,
interleaved (after one unmeasured warm-up of each):
  - local: agent.builder.build_report(LocalContext) with fresh instances of every registry
    collector, in this process (what `agent run` does after its start-up);
  - ssh:   scan_ssh_host_sync("127.0.0.12", 2222, key auth): TCP, handshake, host key check,
    auth, platform probe, every collector through SshContext (SFTP), report built;
  - ssh, report only: the same collectors through an SshContext on an already open session.
Then per-operation round trips on one open session (medians of many): an exec channel running
`true` with the agent's env/timeout wrapper; a small file over SFTP; a /proc file over SFTP; a
small file through a command (`head -c`, the path for servers without SFTP, 127.0.0.13).
Prints medians and the ratios ssh / local. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.builder import build_report  # noqa: E402
from agent.context import LocalContext  # noqa: E402
from discovery.ssh import HostKeyPolicy, SshCredential, scan_ssh_host_sync  # noqa: E402
from discovery.ssh.client import connect  # noqa: E402
from discovery.ssh.context import SshContext  # noqa: E402
from discovery.ssh.linux import fresh_collectors, linux_report  # noqa: E402
from tests.integration.discovery.sshd_lab import PASSWORD, USER, running_lab  # noqa: E402


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with running_lab() as lab:
        known = lab.known_hosts(lab.dir / "bench_known_hosts", lab.linux, lab.password_host)
        policy = HostKeyPolicy(known)
        key = SshCredential(USER, key_file=lab.client_key, name="bench-key")

        def local():
            return build_report(LocalContext("bench"), fresh_collectors())

        def ssh():
            scan = scan_ssh_host_sync("127.0.0.12", 2222, [key], "bench", policy, 10)
            assert scan.report is not None, scan.error
            return scan.report

        session = connect("127.0.0.12", 2222, [key], policy, 10)
        ctx = SshContext(session, "bench/ssh/127.0.0.12:2222")

        def ssh_report_only():
            return linux_report(ctx, "bench/ssh/127.0.0.12:2222")

        walls: dict[str, list[float]] = {"local": [], "ssh": [], "ssh_report": []}
        sizes: dict[str, int] = {}
        for _label, fn in (("local", local), ("ssh", ssh), ("ssh_report", ssh_report_only)):
            fn()  # warm-up: page cache, imports, the PATH listing of the session
        for _ in range(args.runs):
            for label, fn in (("local", local), ("ssh", ssh), ("ssh_report", ssh_report_only)):
                start = time.perf_counter()
                report = fn()
                walls[label].append(time.perf_counter() - start)
                sizes[label] = len(report.items)
        counts = dict(ctx.counts)
        before = dict(ctx.counts)
        ssh_report_only()
        per_report = {k: ctx.counts[k] - before.get(k, 0) for k in ctx.counts}

        round_trips = {
            "exec `true` (env + timeout wrapper, new channel)": _median_ms(lambda: ctx.run(["true"]), 100),
            "SFTP read /etc/hostname": _median_ms(lambda: ctx.read_bytes("/etc/hostname"), 300),
            "SFTP read /proc/cpuinfo": _median_ms(lambda: ctx.read_bytes("/proc/cpuinfo"), 300),
            "SFTP list /usr/share/doc": _median_ms(lambda: ctx.list_dir("/usr/share/doc"), 50),
        }
        session.close()
        with connect("127.0.0.13", 2222, [SshCredential(USER, password=PASSWORD)], policy, 10) as plain:
            no_sftp = SshContext(plain, "bench")
            no_sftp.commands()
            round_trips["command read /etc/hostname (no SFTP: head -c)"] = _median_ms(
                lambda: no_sftp.read_bytes("/etc/hostname"), 100)
        connect_ms = _median_ms(lambda: connect("127.0.0.12", 2222, [key], policy, 10).close(), 20)
        round_trips["connect: TCP + handshake + host key + key auth"] = connect_ms

    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"# SSH scan vs local agent run — {date.today()}, {platform.node()}, Python {platform.python_version()}, "
          f"{args.runs} runs (medians)")
    print(f"items: local {sizes['local']}, ssh {sizes['ssh']} (services: local only, psutil)")
    print()
    print("| run | wall (median) | ratio to local |")
    print("|---|---:|---:|")
    print(f"| local agent collectors (LocalContext, in process) | {med['local'] * 1000:.0f} ms | 1.00x |")
    print(f"| SSH scan of 127.0.0.12 (connect + probe + collectors) | {med['ssh'] * 1000:.0f} ms | "
          f"{med['ssh'] / med['local']:.2f}x |")
    print(f"| SSH collectors on an open session | {med['ssh_report'] * 1000:.0f} ms | "
          f"{med['ssh_report'] / med['local']:.2f}x |")
    print()
    print(f"operations per SSH report: {per_report} (cumulative over the bench: {counts})")
    print()
    print("| round trip (one open session) | median |")
    print("|---|---:|")
    for label, ms in round_trips.items():
        print(f"| {label} | {ms:.2f} ms |")


if __name__ == "__main__":
    main()
