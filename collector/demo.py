"""`fleetgraph demo` (what `make demo` runs): the whole spine on this machine.

Starts the collector on 127.0.0.1 with the embedded store under ./var/, runs the real agent once
on this machine against it (a separate process, as in production), waits until the report is
reconciled, prints a summary of the CMDB and the collector URL, and leaves the collector running
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cmdb.backends import open_store, sqlite_url
from cmdb.config import Config

DEMO_PORT = 8420
KEY_ATTRIBUTES = ("hostname", "fqdn", "manufacturer", "model", "serial", "system_uuid", "cpu_model",
                  "cpu_cores", "cpu_threads", "memory_bytes", "virtualization", "boot_time")


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="collector + one agent run on this machine + a CMDB summary")
    demo.add_argument("--var", default="var", help="folder for the demo store and agent state (./var)")
    demo.add_argument("--no-wait", action="store_true", help="stop the collector after the summary")
    demo.set_defaults(func=cmd_demo)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cmdb.cli", *args]


def _start_collector(store_url: str, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    with log.open("a") as log_file:
        proc = subprocess.Popen(_cli("collector", "serve", "--listen", f"127.0.0.1:{port}", "--store", store_url),
                                stdout=subprocess.PIPE, stderr=log_file, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"listening on (http://\S+)", line):
            return proc, m.group(1)
    proc.wait()
    raise RuntimeError(f"collector exited with {proc.returncode}")


def _wait_reconciled(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
            if json.loads(resp.read()).get("pending_reports") == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the report was not reconciled within {timeout:.0f}s")


def _human_bytes(n: object) -> str:
    if not isinstance(n, int):
        return str(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.0f} PiB"


def print_summary(store, computer_ids: list[str]) -> None:
    by_class = store.count_cis()
    by_type = store.count_relationships()
    print("\nCIs by class:")
    for cls, n in sorted(by_class.items(), key=lambda kv: -kv[1]):
        print(f"  {cls:<18} {n:>6}")
    print("Relationships by type:")
    for rtype, n in sorted(by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {rtype:<18} {n:>6}")
    for ci_id in computer_ids:
        ci = store.get_ci(ci_id)
        print(f"\nComputer {ci.ci_id}")
        for name in KEY_ATTRIBUTES:
            if name in ci.attributes:
                value = ci.attributes[name].value
                shown = _human_bytes(value) if name.endswith("_bytes") else value
                print(f"  {name:<15} {shown}")
        rels = store.relationships(ci.ci_id)
        os_ids = [r.from_ci for r in rels if r.type == "RUNS_ON"
                  and (c := store.get_ci(r.from_ci)) is not None and c.ci_class == "OperatingSystem"]
        for os_id in os_ids:
            os_ci = store.get_ci(os_id)
            if os_ci:
                pretty = os_ci.attributes.get("pretty_name") or os_ci.attributes.get("name")
                kernel = os_ci.attributes.get("kernel_release")
                print(f"  {'os':<15} {pretty.value if pretty else '?'}"
                      f"{' (kernel ' + kernel.value + ')' if kernel else ''}")
        counts = {t: sum(1 for r in rels if r.type == t)
                  for t in ("HAS_INTERFACE", "HAS_DISK", "HAS_FILESYSTEM", "INSTALLED_ON")}
        services = sum(1 for r in rels if r.type == "RUNS_ON" and r.to_ci == ci.ci_id) - len(os_ids)
        for label, n in (("interfaces", counts["HAS_INTERFACE"]), ("disks", counts["HAS_DISK"]),
                         ("file systems", counts["HAS_FILESYSTEM"]), ("packages", counts["INSTALLED_ON"]),
                         ("services", services)):
            print(f"  {label:<15} {n}")


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from collector.auth import create_token

    var = Path(args.var).resolve()
    var.mkdir(parents=True, exist_ok=True)
    store_url = sqlite_url(var / "fleetgraph.sqlite")
    store = open_store(store_url)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    agent_token = create_token(store, f"demo-agent-{stamp}", "agent")
    reader_token = create_token(store, f"demo-reader-{stamp}", "reader")
    store.close()

    log = var / "collector.log"
    try:
        proc, url = _start_collector(store_url, DEMO_PORT, log)
    except RuntimeError:
        print(f"port {DEMO_PORT} is taken; using a free port instead", file=sys.stderr)
        proc, url = _start_collector(store_url, 0, log)
    try:
        print(f"collector running at {url} (store {var / 'fleetgraph.sqlite'}, log {log})")
        print("running the agent once on this machine ...")
        agent = subprocess.run(_cli("agent", "run", "--once", "--server", url, "--state-dir", str(var / "agent")),
                               env={**os.environ, "FLEETGRAPH_AGENT_TOKEN": agent_token})
        if agent.returncode != 0:
            print("the agent run failed (see above)", file=sys.stderr)
            return 1
        _wait_reconciled(url)
        store = open_store(store_url)
        try:
            computers = [ci.ci_id for ci in store.list_cis("Computer", limit=10)]
            print_summary(store, computers)
        finally:
            store.close()
        print(f"\nCollector: {url}   (reader token: {reader_token})")
        print(f"  curl -H 'Authorization: Bearer {reader_token}' {url}/api/v1/cis?class=Computer")
        print(f"  .venv/bin/fleetgraph ci list --class Computer --store {store_url}")
        if args.no_wait:
            return 0
        print("Ctrl-C stops the collector.")
        proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
