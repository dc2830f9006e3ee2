"""The nmap scanner against the loopback lab (tests/integration/discovery/nmap_lab.py): real nmap,
a real OpenSSH sshd, small asyncio servers and a DNS server, all on 127.0.0.15-19 only.

Every scan below is limited with `allowed=LAB_RANGE`, so a mistake in a test cannot reach another
engineer's lab server on another 127 address.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess

import nmap as python_nmap
import pytest

from discovery.nmap import (
    NmapCrashed,
    NmapFailed,
    NmapNotFound,
    NmapOptions,
    NmapOptionsError,
    NmapTimeout,
    TargetError,
    locate_nmap,
    nmap_host_reports,
    run_nmap,
)
from discovery.nmap.xml import parse_nmap_xml
from tests.integration.discovery.nmap_lab import (
    DNS_HOST,
    FILTERED_PORT,
    LAB_RANGE,
    PRINTER_FTP_PORT,
    PRINTER_HOST,
    REFUSED_PORT,
    SMTP_PORT,
    SSH_HOST,
    SSH_PORT,
    TARPIT_HOST,
    TARPIT_PORT,
    LabServers,
    Sshd,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab's DNS server binds udp/53 (root)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nmap-lab")
    servers = LabServers(workdir)
    try:
        sshd = Sshd(workdir)
    except BaseException:
        servers.stop()
        raise
    yield workdir
    sshd.stop()
    servers.stop()


def scan(targets, timeout=60.0, **options):
    return run_nmap(targets, NmapOptions(**options), timeout, allowed=LAB_RANGE)


def by_address(run, **kwargs):
    return {s.address: s for s in nmap_host_reports(run, "lab", **kwargs)}


def items(host_scan):
    return {item.ref: item for item in host_scan.report.items}


async def test_service_version_names_openssh_and_postfix_with_every_cpe(lab):
    ports = f"{SSH_PORT},{SMTP_PORT},{REFUSED_PORT}"
    run = await scan(SSH_HOST, ports=ports, service_version=True, reverse_dns=False)
    assert run.command[1:] == ("-sT", "-Pn", "-n", "-p", ports, "-sV", "-oX", "-", "--", SSH_HOST)
    (host,) = by_address(run).values()
    got = items(host)
    ssh, smtp = got[f"svc:tcp/{SSH_PORT}"].attributes, got[f"svc:tcp/{SMTP_PORT}"].attributes
    assert (ssh["service"], ssh["product"]) == ("ssh", "OpenSSH")
    assert ssh["cpe"][0].startswith("cpe:/a:openbsd:openssh:") and "cpe:/o:linux:linux_kernel" in ssh["cpe"]
    assert (smtp["product"], smtp["cpe"]) == ("Postfix smtpd", ["cpe:/a:postfix:postfix", "cpe:/o:linux:linux_kernel"])
    assert f"svc:tcp/{REFUSED_PORT}" not in got  # connection refused: closed, no Service
    assert host.summary["closed_ports"] == 1
    assert {n: s.status for n, s in host.report.collectors.items()} == {
        "ports": "ok", "services": "ok", "os": "not_applicable"}

    # The same command run by hand, parsed by python-nmap: one CPE per port, the reason we parse.
    raw = subprocess.run(list(run.command), capture_output=True, check=True).stdout
    theirs = python_nmap.PortScanner.__new__(python_nmap.PortScanner).analyse_nmap_xml_scan(raw.decode())
    their_cpe = theirs["scan"][SSH_HOST]["tcp"][SSH_PORT]["cpe"]
    assert isinstance(their_cpe, str) and their_cpe in ssh["cpe"] and len(ssh["cpe"]) == 2
    ours = next(p for p in parse_nmap_xml(raw).hosts[0].ports if p.portid == SSH_PORT)
    assert ours.service.cpe == tuple(ssh["cpe"])


async def test_ptr_names_from_the_lab_dns_identify_the_host(lab):
    run = await scan(SSH_HOST, ports=str(SSH_PORT), dns_servers=[DNS_HOST])
    (host,) = by_address(run).values()
    assert items(host)["host"].identifiers == {"fqdn": "lab-nmap-15.lab.test", "hostname": "lab-nmap-15"}


async def test_printer_by_probe_and_a_filtered_port(lab):
    run = await scan(PRINTER_HOST, ports=f"{PRINTER_FTP_PORT},{FILTERED_PORT}", service_version=True,
                     reverse_dns=False)
    (host,) = by_address(run).values()
    got = items(host)
    assert got["host"].class_ == "Printer" and got["host"].attributes["device_type"] == "printer"
    assert got[f"svc:tcp/{PRINTER_FTP_PORT}"].attributes["cpe"] == ["cpe:/h:ricoh:pro_907ex"]
    assert f"svc:tcp/{FILTERED_PORT}" not in got and host.summary["filtered_ports"] == 1


async def test_host_timeout_is_a_clear_error_for_that_host_only(lab):
    run = await scan(f"{SSH_HOST} {PRINTER_HOST}", ports=f"{SSH_PORT},{FILTERED_PORT}", host_timeout_s=0.5,
                     reverse_dns=False)
    scans = by_address(run)
    assert scans[SSH_HOST].report is not None
    assert scans[PRINTER_HOST].report is None
    assert scans[PRINTER_HOST].error.startswith(f"nmap gave up on {PRINTER_HOST} at the host timeout of 0.5 s")


async def test_an_address_without_open_ports_is_no_host(lab):
    run = await scan(DNS_HOST, ports=f"{SSH_PORT},{REFUSED_PORT}", reverse_dns=False)
    assert by_address(run) == {}
    (unseen,) = by_address(run, include_unseen=True).values()
    assert unseen.error == ("no open port (2 closed); host discovery was skipped (-Pn), so nmap has no sign "
                            "that a host is there")


async def test_syn_scan_as_root(lab):
    run = await scan(SSH_HOST, ports=f"{SSH_PORT},{REFUSED_PORT}", scan="syn", reverse_dns=False)
    assert run.scaninfo[0].type == "syn"
    assert by_address(run)[SSH_HOST].summary["open_ports"] == [f"tcp/{SSH_PORT}"]


@pytest.mark.slow  # OS detection takes ~12 s on loopback
async def test_os_detection_as_root(lab):
    run = await scan(SSH_HOST, ports=f"{SSH_PORT},{REFUSED_PORT}", os_detection=True, reverse_dns=False)
    (host,) = by_address(run).values()
    os_item = items(host)["os"]
    assert os_item.identifiers == {"family": "linux"} and os_item.attributes["accuracy"] >= 85
    assert host.report.collectors["os"].status == "ok"


# -- what goes wrong ---------------------------------------------------------------------------

async def test_a_scan_past_its_timeout_is_killed(lab):
    pids: list[int] = []
    with pytest.raises(NmapTimeout, match=f"nmap scanning {TARPIT_HOST} did not finish within 1 s and was killed"):
        await run_nmap(TARPIT_HOST, NmapOptions(ports=str(TARPIT_PORT), service_version=True, reverse_dns=False),
                       timeout=1, allowed=LAB_RANGE, on_started=pids.append)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # killed and reaped: no process, not even a zombie


async def test_a_cancelled_scan_kills_nmap(lab):
    """Ctrl-C in the scan command cancels the task: nmap must not live on."""
    pids: list[int] = []
    task = asyncio.create_task(run_nmap(TARPIT_HOST, NmapOptions(ports=str(TARPIT_PORT), service_version=True,
                                                                 reverse_dns=False),
                                        timeout=30, allowed=LAB_RANGE, on_started=pids.append))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)

    def broken_progress(pid: int) -> None:
        pids.append(pid)
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        await run_nmap(TARPIT_HOST, NmapOptions(ports=str(TARPIT_PORT), service_version=True), timeout=30,
                       allowed=LAB_RANGE, on_started=broken_progress)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[-1], 0)


async def test_nmap_killed_mid_scan(lab):
    def kill_soon(pid: int) -> None:
        asyncio.get_running_loop().call_later(0.3, os.kill, pid, signal.SIGKILL)

    with pytest.raises(NmapCrashed, match="was killed by SIGKILL before it finished"):
        await run_nmap(TARPIT_HOST, NmapOptions(ports=str(TARPIT_PORT), service_version=True, reverse_dns=False),
                       timeout=30, allowed=LAB_RANGE, on_started=kill_soon)


async def test_nmap_failing_says_why(lab, tmp_path):
    """Real nmap run as `nobody` (through a wrapper), asked for a SYN scan we claim may run:
    nmap itself refuses and exits 1."""
    wrapper = tmp_path / "nmap-as-nobody"
    wrapper.write_text('#!/bin/sh\nexec /usr/sbin/runuser -u nobody -- /usr/bin/nmap "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(NmapFailed, match=r"failed \(exit status 1\): You requested a scan type which requires root"):
        await run_nmap(SSH_HOST, NmapOptions(ports=str(SSH_PORT), scan="syn"), timeout=30, allowed=LAB_RANGE,
                       nmap_path=str(wrapper), privileged=True)


async def test_nmap_missing_or_not_nmap(tmp_path):
    with pytest.raises(NmapNotFound, match="nmap not found at '/nonexistent/nmap'.*apt-get install nmap"):
        await run_nmap(SSH_HOST, NmapOptions(ports="22"), nmap_path="/nonexistent/nmap")
    with pytest.raises(NmapNotFound, match="/usr/bin/true -V did not print an nmap version"):
        await run_nmap(SSH_HOST, NmapOptions(ports="22"), nmap_path="/usr/bin/true")
    install = locate_nmap()
    assert install.path.endswith("/nmap") and install.version >= (6, 0)


@pytest.mark.parametrize("targets, message", [
    (";rm -rf /", "not a target"),
    ("-iL /etc/passwd", "looks like an nmap option"),
    ("127.0.0.1", "outside the allowed ranges"),
    ("127.0.0.10-20", "outside the allowed ranges"),
    ("localhost", "is a host name"),
])
async def test_hostile_targets_are_refused_before_nmap_runs(targets, message):
    started: list[int] = []
    with pytest.raises(TargetError, match=message):
        await run_nmap(targets, NmapOptions(ports="22"), allowed=LAB_RANGE, on_started=started.append)
    assert started == []


async def test_hostile_options_are_refused():
    with pytest.raises(NmapOptionsError, match="not on the allow-list"):
        await run_nmap(SSH_HOST, NmapOptions(scripts=["http-shellshock"]), allowed=LAB_RANGE)
    with pytest.raises(NmapOptionsError, match="SYN scan needs root"):
        await run_nmap(SSH_HOST, NmapOptions(scan="syn"), allowed=LAB_RANGE, privileged=False)


async def test_output_over_the_limit_is_refused(lab):
    with pytest.raises(NmapFailed, match="wrote more than 200 bytes of XML and was killed"):
        await run_nmap(SSH_HOST, NmapOptions(ports=str(SSH_PORT), reverse_dns=False), allowed=LAB_RANGE,
                       max_output_bytes=200)
