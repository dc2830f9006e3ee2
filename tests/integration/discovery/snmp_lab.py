"""The SNMP lab: real agents on loopback, children of the test session, in a temp dir, stopped by
PID (LAB.md "SNMP agent" and "Recorded real devices").

- 127.0.0.11:16161  net-snmp snmpd serving this machine: community `public` (v2c, v1) and v3 users
                    labv3 (SHA/AES), labsha2 (SHA-256/AES-256, Blumenthal as net-snmp does it),
                    labauth (MD5, no privacy).
- 127.0.0.21-28:16161 and :16162  snmpsim serving the recorded real devices of the shared corpora,
                    this repo's printer recordings (tests/fixtures/snmp/printers) and `broken-ip`, a
                    copy of the cisco-n5000 walk whose second ipAdEntAddr value is an empty IpAddress.
                    Every endpoint serves every recording; the community picks the device.

snmpsim refuses to run as root unless told to drop privileges; the lab's Python lives under
/root, which an unprivileged user cannot read, so as root it runs with SNMPSIM_ALLOW_ROOT=true.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from discovery.snmp.client import CommunitySession, SnmpError, get_values

SNMPD_ADDRESS = "127.0.0.11"
SNMPD_PORT = 16161
SNMPSIM_ADDRESSES = tuple(f"127.0.0.{n}" for n in range(21, 29))
SNMPSIM_PORTS = (16161, 16162)
V3_USERS = {
    "labv3": ("SHA", "labAuthPass123", "AES", "labPrivPass123"),
    "labsha2": ("SHA-256", "labAuthSha256x", "AES-256", "labPrivAes256x"),
    "labauth": ("MD5", "labAuthOnlyMd5", None, None),
}
REPO = Path(__file__).resolve().parents[3]
CORPORA = REPO.parent / "shared" / "corpora" / "snmp"
if not CORPORA.is_dir():
    CORPORA = Path("/work/shared/corpora/snmp")
PRINTERS = REPO / "tests" / "fixtures" / "snmp" / "printers"
BROKEN_SOURCE = "cisco-n5000"


@dataclass
class Agent:
    name: str
    dir: Path
    proc: subprocess.Popen
    endpoints: list[tuple[str, int]] = field(default_factory=list)

    def log(self) -> str:
        path = self.dir / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _snmpd_conf(address: str, port: int) -> str:
    lines = [f"agentAddress udp:{address}:{port}", "sysName lab-snmp-01", "sysLocation lab rack 1",
             "sysContact ops@example.org", "view all included .1", "rocommunity public 127.0.0.0/8 -V all"]
    for user, (auth, auth_key, priv, priv_key) in V3_USERS.items():
        privacy = f' {priv} "{priv_key}"' if priv else ""
        lines.append(f'createUser {user} {auth} "{auth_key}"{privacy}')
        lines.append(f"rouser {user} {'priv' if priv else 'auth'} -V all")
    return "\n".join(lines) + "\n"


def _wait_for(address: str, port: int, community: str, seconds: float, agent: Agent) -> None:
    async def probe() -> bool:
        session = CommunitySession(address, port, community, "2c", timeout=0.5, retries=0)
        try:
            return bool(await get_values(session, ["1.3.6.1.2.1.1.5.0"]))
        except SnmpError:
            return False
        finally:
            session.close()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if agent.proc.poll() is not None:
            raise RuntimeError(f"{agent.name} exited with {agent.proc.returncode}:\n{agent.log()}")
        if asyncio.run(probe()):
            return
        time.sleep(0.2)
    agent.stop()
    raise RuntimeError(f"{agent.name} did not answer on {address}:{port} within {seconds:g} s:\n{agent.log()}")


def start_snmpd(root: Path, address: str = SNMPD_ADDRESS, port: int = SNMPD_PORT) -> Agent:
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    if not Path(snmpd).exists():
        raise RuntimeError("net-snmp snmpd is not installed: `apt-get install snmpd` (make sysdeps does)")
    workdir = root / "snmpd"
    (workdir / "persist").mkdir(parents=True)
    (workdir / "snmpd.conf").write_text(_snmpd_conf(address, port))
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    # -f foreground child, -C only our config, -I -smux: no tcp/199 listener.
    proc = subprocess.Popen([snmpd, "-f", "-Lf", str(workdir / "snmpd.log"), "-C", "-c", str(workdir / "snmpd.conf"),
                             "-p", str(workdir / "snmpd.pid"), "-I", "-smux"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = Agent("snmpd", workdir, proc, [(address, port)])
    _wait_for(address, port, "public", 15, agent)
    return agent


def broken_recording(source: Path) -> tuple[str, str]:
    """(recording text, the OID whose IpAddress value was emptied)."""
    lines = source.read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("1.3.6.1.2.1.4.20.1.1.")]
    target = rows[1]
    oid = lines[target].split("|", 1)[0]
    lines[target] = f"{oid}|64|"
    return "\n".join(lines) + "\n", oid


def start_snmpsim(root: Path, addresses=SNMPSIM_ADDRESSES, ports=SNMPSIM_PORTS) -> Agent:
    responder = Path(sys.executable).with_name("snmpsim-command-responder")
    if not responder.exists():
        raise RuntimeError("snmpsim is not installed in the venv: pip install -e '.[test]'")
    workdir = root / "snmpsim"
    data = workdir / "data"
    data.mkdir(parents=True)
    (workdir / "cache").mkdir()
    for recording in sorted((CORPORA / "snmpsim").glob("*.snmprec")):
        shutil.copy(recording, data / recording.name)
    for case in sorted(p for p in PRINTERS.iterdir() if p.is_dir()):
        shutil.copy(case / "device.snmprec", data / f"printer-{case.name}.snmprec")
    text, _ = broken_recording(CORPORA / "snmpsim" / f"{BROKEN_SOURCE}.snmprec")
    (data / "broken-ip.snmprec").write_text(text)
    endpoints = [(a, p) for a in addresses for p in ports]
    args = [str(responder), f"--data-dir={data}", f"--cache-dir={workdir / 'cache'}",
            f"--logging-method=file:{workdir / 'snmpsim.log'}", "--log-level=error"]
    args += [f"--agent-udpv4-endpoint={a}:{p}" for a, p in endpoints]
    env = dict(os.environ)
    if os.geteuid() == 0:
        env["SNMPSIM_ALLOW_ROOT"] = "true"
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = Agent("snmpsim", workdir, proc, endpoints)
    _wait_for(endpoints[-1][0], endpoints[-1][1], "cisco-n5000", 120, agent)
    return agent
