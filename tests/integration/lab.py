"""Real fleetgraph processes for integration tests: a collector subprocess on 127.0.0.1 and the
`fleetgraph` CLI, started exactly as an operator would start them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cmdb.backends import sqlite_url

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (https?://[0-9.:\[\]]+)")


def fleetgraph(*args: str, env: dict[str, str] | None = None, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (`python -m cmdb.cli`, what the console script calls)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cmdb.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"fleetgraph {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@dataclass
class Collector:
    store_path: Path
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    url: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def store_url(self) -> str:
        return sqlite_url(self.store_path)

    def start(self, timeout: float = 30) -> "Collector":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cmdb.cli", "collector", "serve", "--listen", "127.0.0.1:0",
             "--store", self.store_url, *self.extra_args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("collector exited before listening:\n" + "".join(self.log))
            self.log.append(line)
            if m := LISTENING.search(line):
                self.url = m.group(1)
                # keep draining output so the pipe never fills up and blocks the server
                import threading
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise AssertionError("collector did not start listening:\n" + "".join(self.log))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def token(self, role: str, name: str) -> str:
        out = fleetgraph("token", "create", "--name", name, "--role", role, "--store", self.store_url)
        return out.stdout.strip()

    def get(self, path: str, token: str) -> tuple[int, object]:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def wait_reconciled(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.url + "/healthz", timeout=10) as resp:
                health = json.loads(resp.read())
            if health.get("pending_reports") == 0:
                return health
            time.sleep(0.1)
        raise AssertionError(f"reports still pending after {timeout}s: {health}")
