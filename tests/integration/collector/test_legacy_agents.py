"""The real FusionInventory (2.6) and OCS Inventory (2.10) agents from Debian, unchanged, posting to
a real collector process on 127.0.0.1 (docs/legacy-agents.md): this machine becomes one Computer CI
whose software count is the agents' own SOFTWARES count, and our agent's report of the same machine
merges into that CI. This machine has no DMI tables and no universally administered MAC: the merge
goes through the hostname (and each agent's id).

Fusion keeps its state (DEVICEID) in /var/lib/fusioninventory-agent whatever it is given; the OCS
agent gets a temp basevardir. Both write their inventory locally in the same run or just before, so
the test counts their SOFTWARES entries from their own XML."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import urllib.request
import xml.etree.ElementTree as ET  # the agents' own local output on this machine: trusted
import zlib
from pathlib import Path

import pytest

from cmdb.backends import open_store

from ..lab import Collector, fleetgraph

FUSION, OCS = "fusioninventory-agent", "ocsinventory-agent"
pytestmark = pytest.mark.skipif(
    shutil.which(FUSION) is None or shutil.which(OCS) is None,
    reason=f"{FUSION} and {OCS} are needed (apt-get install -y {FUSION} {OCS}; `make test` installs them)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("legacy")
    collector = Collector(tmp / "cmdb.sqlite").start()
    (tmp / "empty.cfg").write_text("")
    yield collector, tmp, collector.token("agent", "legacy-agents")
    assert collector.stop() == 0, "".join(collector.log)


def softwares_in(xml_file: Path) -> int:
    return len(ET.parse(xml_file).getroot().find("CONTENT").findall("SOFTWARES"))


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=240, **kwargs)


def run_fusion(collector: Collector, tmp: Path, password: str,
               path: str = "/ocsinventory") -> tuple[subprocess.CompletedProcess, Path]:
    """One Fusion run to the collector, the same run also writing its inventory into a local dir."""
    local = tmp / "fusion-local"
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir()
    done = run([FUSION, f"--conf-file={tmp / 'empty.cfg'}", "--server", f"{collector.url}{path}",
                "--local", str(local), "--no-httpd", "--force", "--user", "fleetgraph", "--password", password])
    files = sorted(local.glob("*.ocs"))
    assert files, f"{FUSION} wrote no local inventory:\n{done.stderr[-3000:]}"
    return done, files[0]


def ocs_credential(text: str) -> str:
    """The OCS agent 2.10 reads --user and --password base64-encoded."""
    return base64.b64encode(text.encode()).decode()


def run_ocs(collector: Collector, basevardir: Path, password: str) -> subprocess.CompletedProcess:
    # --nolocal: Debian's /etc/ocsinventory/ocsinventory-agent.cfg sets local=..., which would win
    return run([OCS, "--server", f"{collector.url}/ocsinventory", f"--basevardir={basevardir}", "--nolocal",
                "--force", "--user", ocs_credential("fleetgraph"), "--password", ocs_credential(password)])


def machine(collector: Collector) -> dict:
    """This machine in the CMDB: its Computer CIs, installs, and identifiers."""
    store = open_store(collector.store_url)
    try:
        computers = store.list_cis("Computer")
        out = {"computers": computers, "reports": store.count_reports(), "failed": store.count_reports("failed"),
               "software_installs": store.count_cis().get("SoftwareInstall", 0)}
        if len(computers) == 1:
            ci = computers[0]
            out["installed_on"] = len(store.relationships(ci.ci_id, direction="in", type="INSTALLED_ON"))
            out["identifiers"] = {}
            for ident in store.identifiers_of([ci.ci_id])[ci.ci_id]:
                out["identifiers"].setdefault(ident.kind, set()).add(ident.value)
        return out
    finally:
        store.close()


def test_fusion_then_ocs_then_our_agent_make_one_computer(lab):
    collector, tmp, token = lab
    hostname = socket.gethostname().split(".")[0].lower()

    done, fusion_xml = run_fusion(collector, tmp, token)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "error" not in done.stderr.lower(), done.stderr[-3000:]
    collector.wait_reconciled()
    state = machine(collector)
    fusion_softwares = softwares_in(fusion_xml)
    assert fusion_softwares > 100  # a stock Debian machine has hundreds of packages
    assert len(state["computers"]) == 1 and state["failed"] == 0
    assert state["computers"][0].attributes["hostname"].value == hostname
    assert state["installed_on"] == state["software_installs"] == fusion_softwares
    assert state["reports"] == 1

    ocs_stdout = run([OCS, "--stdout", f"--basevardir={tmp / 'ocs-stdout'}"])
    ocs_softwares = len(ET.fromstring(ocs_stdout.stdout).find("CONTENT").findall("SOFTWARES"))
    done = run_ocs(collector, tmp / "ocs", token)
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr[-3000:]
    collector.wait_reconciled()
    state = machine(collector)
    assert state["reports"] == 2 and state["failed"] == 0
    assert len(state["computers"]) == 1, [c.attributes.get("hostname") for c in state["computers"]]
    assert state["installed_on"] == state["software_installs"] == ocs_softwares == fusion_softwares

    ours = fleetgraph("agent", "run", "--once", "--server", collector.url, "--state-dir", str(tmp / "agent"),
                      env={"FLEETGRAPH_AGENT_TOKEN": token})
    assert ours.returncode == 0
    collector.wait_reconciled()
    state = machine(collector)
    assert state["reports"] == 3 and state["failed"] == 0
    assert len(state["computers"]) == 1, [c.attributes.get("hostname") for c in state["computers"]]
    dpkg = len(run(["dpkg-query", "-W"]).stdout.splitlines())
    # Ours lists every package dpkg knows (also removed-but-configured ones); theirs the installed ones.
    assert state["installed_on"] == state["software_installs"] == dpkg >= fusion_softwares
    assert state["identifiers"]["hostname"] == {hostname}
    assert len(state["identifiers"]["agent_id"]) == 3  # our agent's id and both DEVICEIDs


def test_a_resent_inventory_is_stored_once(lab):
    collector, tmp, token = lab
    before = machine(collector)["reports"]
    done, local = run_fusion(collector, tmp, token, path="")  # no path: Fusion completes it to /ocsinventory
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr[-3000:]
    assert machine(collector)["reports"] == before + 1
    # Fusion's local copy of an inventory, sent twice by a tool: the second is acknowledged, not stored.
    request = urllib.request.Request(
        f"{collector.url}/ocsinventory", data=zlib.compress(local.read_bytes()), method="POST",
        headers={"Content-Type": "application/x-compress-zlib", "Authorization": f"Bearer {token}"})
    counts = []
    for _ in range(2):
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 200 and b"no_account_update" in zlib.decompress(resp.read())
        counts.append(machine(collector)["reports"])
    assert counts[0] in (before + 1, before + 2) and counts[1] == counts[0]
    collector.wait_reconciled()
    assert len(machine(collector)["computers"]) == 1


@pytest.mark.parametrize("agent", [FUSION, OCS])
def test_a_wrong_password_is_refused_and_stores_nothing(lab, agent):
    collector, tmp, _token = lab
    before = machine(collector)["reports"]
    if agent == FUSION:
        done, _ = run_fusion(collector, tmp, "not-a-token")
        assert "authentication required, wrong credentials" in done.stderr
    else:
        done = run_ocs(collector, tmp / "ocs-wrong", "not-a-token")
        # LWP logs the status line of the first 401 (the challenge), not of the refused retry
        assert "401" in done.stderr and "fleetgraph API token" in done.stderr
    assert machine(collector)["reports"] == before
