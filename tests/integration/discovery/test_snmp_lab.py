"""The SNMP scanner against real agents on loopback (snmp_lab.py): net-snmp snmpd for this machine
(v1, v2c, v3), snmpsim serving recorded real devices. Nothing is mocked."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from agent.collectors.network import parse_ip_json
from agent.collectors.software.dpkg import DPKG_QUERY, parse_dpkg_query
from cmdb.report import decode_report, encode_report
from discovery.snmp import SnmpCredential, scan_snmp_host
from tests.integration.discovery import snmp_lab

EXPECTED = json.loads((snmp_lab.REPO / "tests/fixtures/snmp/identification/expected.json").read_text())["devices"]
CORPORA_DEVICES = sorted(p.stem for p in (snmp_lab.CORPORA / "snmpsim").glob("*.snmprec"))
PUBLIC = SnmpCredential("2c", community="public")


def v3(user: str, **override) -> SnmpCredential:
    auth, auth_key, priv, priv_key = snmp_lab.V3_USERS[user]
    fields = {"auth_protocol": auth, "auth_key": auth_key, "priv_protocol": priv, "priv_key": priv_key, **override}
    return SnmpCredential("3", user=user, **fields)


@pytest.fixture(scope="module")
def lab():
    root = Path(tempfile.mkdtemp(prefix="fleetgraph-snmp-lab-"))
    agents = []
    try:
        agents.append(snmp_lab.start_snmpd(root))
        agents.append(snmp_lab.start_snmpsim(root))
        yield {"snmpd": agents[0], "snmpsim": agents[1], "root": root}
    finally:
        for agent in agents:
            agent.stop()
        shutil.rmtree(root, ignore_errors=True)


def scan(address, port, credentials, timeout=1.0, retries=1, **kwargs):
    return asyncio.run(scan_snmp_host(address, port, credentials, "lab-scanner", timeout, retries, **kwargs))


def _endpoint(lab, i: int) -> tuple[str, int]:
    endpoints = lab["snmpsim"].endpoints
    return endpoints[i % len(endpoints)]


def _device(report):
    return next(i for i in report.items if i.ref == "device")


def _owned(report, class_):
    return [i for i in report.items if i.class_ == class_ and not i.reference]


# -- this machine through net-snmp ----------------------------------------------------------------

def test_this_machine_over_v2c_is_the_computer_the_agent_reports(lab):
    result = scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT, [PUBLIC])
    assert result.error is None, result.error
    report = result.report
    assert decode_report(encode_report(report)) == report
    computer = _device(report)
    assert computer.class_ == "Computer" and computer.identifiers["hostname"] == "lab-snmp-01"
    assert result.summary["os"] == "Linux" and result.summary["type"] == "server"
    for name in ("system", "interfaces", "ip", "host_resources", "services"):
        assert report.collectors[name].status == "ok", (name, report.collectors[name])
    for name in ("entity", "lldp", "cdp", "bridge", "printer"):
        assert report.collectors[name].status == "not_applicable"
    # Interfaces: the kernel's names, as the agent's `ip` collector sees them.
    ip_names = {i.name for i in parse_ip_json(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True,
                                                             text=True, check=True).stdout)}
    assert {i.identifiers["name"] for i in _owned(report, "Interface")} == ip_names
    # Packages: net-snmp reads the dpkg database; the identifiers are the agent dpkg collector's.
    installed = [p for p in parse_dpkg_query(subprocess.run(DPKG_QUERY, capture_output=True, text=True).stdout)
                 if p.installed]
    agent_packages = {f"deb:{p.name}:{p.arch or 'unknown'}" for p in installed}
    snmp_packages = {i.identifiers["package"] for i in _owned(report, "SoftwareInstall")}
    assert snmp_packages == agent_packages
    purls = {i.identifiers["purl"] for i in _owned(report, "Software")}
    assert "pkg:deb/debian/bash" in purls
    assert "/" in {i.identifiers["mount"] for i in _owned(report, "FileSystem")}


def test_v1_reads_the_same_machine(lab):
    result = scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT, [SnmpCredential("1", community="public")])
    assert result.error is None and result.summary["credential"] == "v1 community"
    assert result.summary["interfaces"] == len(_owned(result.report, "Interface")) > 0
    assert _owned(result.report, "SoftwareInstall")


@pytest.mark.parametrize("user", ["labv3", "labsha2", "labauth"])
def test_v3_users_with_sha1_sha2_aes_and_auth_only(lab, user):
    result = scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT, [v3(user)])
    assert result.error is None, result.error
    assert result.report.collectors["host_resources"].status == "ok"
    assert _device(result.report).attributes["snmp_version"] == "3"


def test_credentials_are_tried_in_order_and_the_first_that_answers_is_used(lab):
    result = scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT,
                  [SnmpCredential("2c", community="wrong-community"), v3("labv3", auth_key="wrongAuthKey1"),
                   v3("labv3"), PUBLIC], timeout=0.5, retries=0)
    assert result.error is None and result.summary["credential"] == "v3 user 'labv3' SHA/AES"


@pytest.mark.parametrize("credential, words", [
    (SnmpCredential("2c", community="wrong-community"), "timeout: no answer within 0.5 s x 1 tries (wrong community"),
    (v3("labv3", auth_key="wrongAuthKey1"), "authentication failure: wrong v3 auth key"),
    (v3("labv3", priv_key="wrongPrivKey1"), "wrong privacy key or privacy protocol"),
    (v3("labv3", auth_protocol="SHA-512"), "authentication failure: wrong v3 auth key or auth protocol"),
    (SnmpCredential("3", user="nobody-here", auth_protocol="SHA", auth_key="whatever123"), "no such v3 user"),
])
def test_each_failure_has_a_clear_reason(lab, credential, words):
    result = scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT, [credential], timeout=0.5, retries=0)
    assert result.report is None
    assert result.error.startswith(f"SNMP {snmp_lab.SNMPD_ADDRESS}:{snmp_lab.SNMPD_PORT}: no credential set answered: ")
    assert words in result.error
    for secret in ("wrong-community", "wrongAuthKey1", "wrongPrivKey1", "labAuthPass123", "labPrivPass123"):
        assert secret not in result.error


def test_a_refused_port_fails_at_once_for_every_version(lab):
    started = time.perf_counter()
    result = scan(snmp_lab.SNMPD_ADDRESS, 16999, [PUBLIC, v3("labv3")], timeout=2.0, retries=2)
    assert "connection refused" in result.error and result.report is None
    assert time.perf_counter() - started < 2.0  # ICMP says so: no waiting out the timeouts
    v3_only = scan(snmp_lab.SNMPD_ADDRESS, 16999, [v3("labv3")], timeout=0.5, retries=0)
    assert "connection refused" in v3_only.error


def test_a_silent_listener_times_out_with_the_reason():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.19", 0))  # takes datagrams, never answers
    try:
        port = silent.getsockname()[1]
        result = scan("127.0.0.19", port, [PUBLIC, v3("labv3")], timeout=0.3, retries=0)
        assert result.report is None
        assert "v2c community: timeout" in result.error and "v3 user 'labv3' SHA/AES: timeout" in result.error
        assert "no SNMP agent answered" in result.error
    finally:
        silent.close()


def test_no_credentials_and_bad_addresses_are_errors_not_crashes(lab):
    assert "no SNMP credential set to try" in scan(snmp_lab.SNMPD_ADDRESS, snmp_lab.SNMPD_PORT, []).error
    result = scan("not-an-address.invalid", 161, [PUBLIC], timeout=0.3, retries=0)
    assert result.report is None and result.error


# -- recorded real devices through snmpsim ----------------------------------------------------------

@pytest.mark.parametrize("community", CORPORA_DEVICES)
def test_every_recorded_device_is_identified(lab, community):
    address, port = _endpoint(lab, CORPORA_DEVICES.index(community))
    result = scan(address, port, [SnmpCredential("2c", community=community)], timeout=2.0, retries=1)
    assert result.error is None, result.error
    report, summary = result.report, result.summary
    expected = EXPECTED[f"corpora/{community}"]
    truth = json.loads((snmp_lab.CORPORA / "expected" / f"{community}.json").read_text())
    assert (summary["vendor"], summary["model"], summary["serial"], summary["type"]) == (
        expected["vendor"], expected["model"], expected["serial"], expected["type"])
    device = _device(report)
    if truth.get("entity_chassis"):
        chassis = truth["entity_chassis"][0]
        assert device.attributes.get("serial") == (chassis["entPhysicalSerialNum"] or None)
        assert device.attributes.get("firmware") == (chassis["entPhysicalFirmwareRev"] or None)
        assert device.attributes.get("software_version") == (chassis["entPhysicalSoftwareRev"] or None)
    assert len(_owned(report, "Interface")) == truth["ifTable_rows"]
    if truth["system"]["sysName"]:
        assert device.attributes["sys_name"] == truth["system"]["sysName"]
    assert all(status.status != "failed" for status in report.collectors.values()), report.collectors
    assert decode_report(encode_report(report)) == report


def test_lldp_and_cdp_neighbours_become_connected_to_edges(lab):
    result = scan(*_endpoint(lab, 3), [SnmpCredential("2c", community="cisco-n5000")], timeout=2.0)
    report = result.report
    items = {i.ref: i for i in report.items}
    for protocol in ("lldp", "cdp"):
        edges = [r for r in report.relations if r.type == "CONNECTED_TO" and r.attributes.get("protocol") == protocol]
        assert edges, protocol
        assert all(items[e.from_].class_ == "Interface" and items[e.to].reference for e in edges)
        assert report.collectors[protocol].status == "ok"


def test_printers_are_printers(lab):
    result = scan(*_endpoint(lab, 5), [SnmpCredential("2c", community="printer-sharp-mx-3570n")])
    device = _device(result.report)
    assert device.class_ == "Printer" and device.identifiers["serial"] == "6509415X00"
    assert device.attributes["page_count"] == 121104 and device.attributes["vendor"] == "Sharp"
    assert result.report.collectors["printer"].status == "ok"


def test_a_malformed_value_does_not_stop_the_walk(lab):
    _, broken_oid = snmp_lab.broken_recording(snmp_lab.CORPORA / "snmpsim" / f"{snmp_lab.BROKEN_SOURCE}.snmprec")
    good = scan(*_endpoint(lab, 6), [SnmpCredential("2c", community=snmp_lab.BROKEN_SOURCE)], timeout=2.0)
    broken = scan(*_endpoint(lab, 7), [SnmpCredential("2c", community="broken-ip")], timeout=2.0)
    assert broken.error is None
    status = broken.report.collectors["ip"]
    assert status.status == "ok" and "skipped 1 value" in status.reason
    addresses = lambda r: sorted(i.identifiers["address"] for i in _owned(r, "IPAddress"))  # noqa: E731
    assert addresses(broken.report) == addresses(good.report)  # the row is known from its index
    assert len(_owned(broken.report, "Interface")) == len(_owned(good.report, "Interface"))
    assert broken_oid.rsplit(".", 4)[0] == "1.3.6.1.2.1.4.20.1.1"
