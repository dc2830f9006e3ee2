"""nmap runs as CMDB reports: recorded lab scans (tests/fixtures/nmap/<case>/, one folder per
case) against their expected.json, every corpus file through the collector's own decoder, the
class and identifier rules, and what reconcile does with the reports on the real embedded store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmdb.report import SCHEMA_V1, Item, Report, Source, decode_report, encode_report
from discovery.nmap.options import NmapOptions
from discovery.nmap.report import host_class, nmap_host_reports, requested_features
from discovery.nmap.xml import (
    NmapHost,
    NmapPort,
    NmapRun,
    NmapScript,
    NmapService,
    OsClass,
    OsMatch,
    parse_nmap_xml,
)
from reconcile.engine import reconcile_report
from tests.unit.discovery.nmap.shape import host_scan_shape

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "nmap"
CASES = sorted(p for p in FIXTURES.iterdir() if (p / "scan.xml").exists())
CORPUS = sorted(Path("/work/shared/corpora/nmap").glob("*.xml"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_recorded_lab_scans_map_as_expected(case: Path):
    expected = json.loads((case / "expected.json").read_text())
    run = parse_nmap_xml((case / "scan.xml").read_bytes())
    scans = nmap_host_reports(run, expected["scanner_id"], include_unseen=expected["include_unseen"])
    assert [host_scan_shape(s) for s in scans] == expected["hosts"]


@pytest.mark.parametrize("path", CORPUS + [c / "scan.xml" for c in CASES], ids=lambda p: p.parent.name + "/" + p.name)
def test_every_report_passes_the_collectors_decoder(path: Path):
    run = parse_nmap_xml(path.read_bytes())
    scans = nmap_host_reports(run, "scanner-1", include_unseen=True)
    assert len(scans) == len(run.hosts)
    for scan in scans:
        assert (scan.report is None) != (scan.error is None)
        if scan.report is not None:
            decoded = decode_report(encode_report(scan.report))
            assert decoded.source.kind == "nmap"
            assert decoded.source.id == f"scanner-1/nmap/{scan.address}"
            assert set(decoded.collectors) == {"ports", "services", "os"}


def test_an_address_that_is_no_address_is_an_error_not_a_crash():
    run = parse_nmap_xml(Path("/work/shared/corpora/nmap/test_osclass.xml").read_bytes())  # addr="IP"
    (scan,) = nmap_host_reports(run, "s")
    assert scan.report is None and "'IP' is not an IP address" in scan.error


def test_scanner_id_is_checked():
    with pytest.raises(ValueError, match="scanner id 'a b'"):
        nmap_host_reports(NmapRun(), "a b")


def test_down_hosts_and_silent_loopback_addresses_are_not_reports():
    run = parse_nmap_xml(Path("/work/shared/corpora/nmap/full_sudo6.xml").read_bytes())
    assert len(run.hosts) == 256
    assert [s.address for s in nmap_host_reports(run, "s")] == ["192.168.1.1", "192.168.1.2", "192.168.1.5",
                                                               "192.168.1.3"]
    unseen = [s for s in nmap_host_reports(run, "s", include_unseen=True) if s.error]
    assert len(unseen) == 252 and unseen[0].error.startswith("down: no answer to host discovery")


@pytest.mark.parametrize("args, service_version, os_detection", [
    ("nmap -sV 10.0.0.1", True, False), ("nmap -O 10.0.0.1", False, True), ("nmap -A 10.0.0.0/24", True, True),
    ("nmap -sSV 10.0.0.1", True, False), ("nmap -sT --version-light 10.0.0.1", False, False), (None, False, False),
])
def test_features_of_a_run_read_from_a_file(args, service_version, os_detection):
    features = requested_features(NmapRun(args=args))
    assert (features.service_version, features.os_detection) == (service_version, os_detection)
    assert requested_features(NmapRun(args="nmap -A"), NmapOptions()).service_version is False  # options win


def test_identifiers_mac_and_names():
    run = parse_nmap_xml(Path("/work/shared/corpora/nmap/2_hosts.xml").read_bytes())
    scanme = next(s for s in nmap_host_reports(run, "s") if s.address == "74.207.244.221")
    host = next(i for i in scanme.report.items if i.ref == "host")
    assert host.identifiers == {"fqdn": "scanme.nmap.org", "hostname": "scanme"}  # PTR and typed name: one
    run = parse_nmap_xml(Path("/work/shared/corpora/nmap/full_sudo6.xml").read_bytes())
    scans = {s.address: s for s in nmap_host_reports(run, "s")}
    windows = next(i for i in scans["192.168.1.5"].report.items if i.ref == "host")
    assert windows.class_ == "Computer" and windows.identifiers["mac"] == "00:1f:3c:87:66:50"
    box = next(i for i in scans["192.168.1.1"].report.items if i.ref == "host")
    assert box.class_ == "NetworkDevice" and box.identifiers == {"chassis_mac": "6c:2e:85:19:af:00"}
    assert box.attributes["mac_vendor"] == "Sagemcom" and scans["192.168.1.1"].summary["type"] == "WAP"


def _host(osmatches=(), ports=()) -> NmapHost:
    return NmapHost(state="up", reason="arp-response", osmatches=tuple(osmatches), ports=tuple(ports),
                    osclasses=tuple(c for m in osmatches for c in m.osclasses))


def _port(devicetype: str | None, portid: int = 80) -> NmapPort:
    return NmapPort("tcp", portid, "open", "syn-ack", NmapService(name="x", method="probed", devicetype=devicetype))


@pytest.mark.parametrize("host, expected", [
    (_host([OsMatch("Cisco IOS 15", 100, (OsClass(type="switch", osfamily="IOS", accuracy=100),))]),
     ("NetworkDevice", "switch")),
    (_host([OsMatch("HP LaserJet", 98, (OsClass(type="printer", accuracy=98),))]), ("Printer", "printer")),
    # a guess among look-alikes: a Linux-based WAP at 93 % on a Linux server
    (_host([OsMatch("ASUS RT-N56U WAP", 93, (OsClass(type="WAP", accuracy=93),))]), ("Computer", "WAP")),
    # the best match's classes disagree
    (_host([OsMatch("Linux 3.x", 96, (OsClass(type="general purpose", accuracy=96),
                                        OsClass(type="WAP", accuracy=96)))]), ("Computer", "general purpose")),
    # no OS match: -sV probes that agree decide
    (_host(ports=[_port("printer"), _port("printer", 2121)]), ("Printer", "printer")),
    (_host(ports=[_port("printer"), _port("storage-misc", 2121)]), ("Computer", None)),
    # a sure OS match is not overridden by one odd probe (a honeypot answers like a NAS)
    (_host([OsMatch("Linux 5", 100, (OsClass(type="general purpose", accuracy=100),))], [_port("storage-misc")]),
     ("Computer", "general purpose")),
])
def test_host_class(host, expected):
    assert host_class(host) == expected


def test_services_without_version_detection_state_only_protocol_and_port():
    """A quick port sweep must not overwrite -sV's probed name with nmap's port-number guess."""
    xml = Path(FIXTURES / "lab-service-version" / "scan.xml").read_bytes()
    run = parse_nmap_xml(xml)
    quick = nmap_host_reports(run, "s", NmapOptions(service_version=False))[0]
    services = [i for i in quick.report.items if i.class_ == "Service"]
    assert {tuple(sorted(s.attributes)) for s in services} == {("port", "protocol")}
    assert quick.report.collectors["services"].status == "not_applicable"


def test_script_output_only_from_the_allow_list():
    port = NmapPort("tcp", 22, "open", "syn-ack", NmapService(name="ssh"),
                    (NmapScript("ssh-hostkey", "\n  256 aa:bb (ED25519)\n"), NmapScript("ssl-date", "2026-11-21")))
    host = NmapHost(state="up", reason="syn-ack", ports=(port,),
                    addresses=(parse_nmap_xml(b'<nmaprun><host><address addr="10.0.0.9" addrtype="ipv4"/>'
                                              b'</host></nmaprun>').hosts[0].addresses))
    (scan,) = nmap_host_reports(NmapRun(hosts=(host,)), "s", NmapOptions(service_version=True))
    service = next(i for i in scan.report.items if i.class_ == "Service")
    assert service.attributes["nse.ssh_hostkey"] == "256 aa:bb (ED25519)"
    assert not any(name.startswith("nse.ssl") for name in service.attributes)


# -- what reconcile does with it: the real embedded store ---------------------------------------

@pytest.fixture
def store(tmp_path):
    from cmdb.backends.sqlite import SQLiteStore

    s = SQLiteStore(str(tmp_path / "cmdb.sqlite"))
    yield s
    s.close()


def _lab_scan(case: str, when: datetime, options: NmapOptions | None = None):
    run = parse_nmap_xml((FIXTURES / case / "scan.xml").read_bytes())
    return {s.address: s for s in nmap_host_reports(run, "lab", options, collected_at=when)}


def _agent_report(when: datetime) -> Report:
    """What an agent on lab-nmap-15 reports about itself (its names), creating the Computer."""
    return Report(schema=SCHEMA_V1, report_id="agent-report-0001", collected_at=when,
                  source=Source(kind="agent", id="agent-lab-15"),
                  items=[Item(class_="Computer", ref="computer", identifiers={
                      "agent_id": "agent-lab-15", "hostname": "lab-nmap-15", "fqdn": "lab-nmap-15.lab.test"})])


def _services(store, computer_id: str) -> dict[str, dict]:
    """{"tcp/22": attributes} of the active Services RUNS_ON the computer."""
    out = {}
    for rel in store.relationships(computer_id, "in", type="RUNS_ON"):
        ci = store.get_ci(rel.from_ci)
        if ci.ci_class == "Service" and rel.state == "active" and ci.state == "active":
            attributes = {name: value.value for name, value in ci.attributes.items()}
            out[f"{attributes['protocol']}/{attributes['port']}"] = attributes
    return out


def test_nmap_alone_creates_no_host(store):
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    scan = _lab_scan("lab-service-version", t0)["127.0.0.15"]
    changes = reconcile_report(store, scan.report)
    assert store.count_cis() == {}
    assert any("may not create a Computer" in s.reason for s in changes.skipped)


def test_an_address_alone_matches_no_host(store):
    """Without a MAC (off the LAN) or a PTR name (-n, no DNS), nmap cannot say which CI it saw."""
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    reconcile_report(store, _agent_report(t0))
    run = parse_nmap_xml((FIXTURES / "lab-service-version" / "scan.xml").read_bytes())
    nameless = replace(run, hosts=tuple(replace(h, hostnames=()) for h in run.hosts))
    scan = next(s for s in nmap_host_reports(nameless, "lab", collected_at=t0 + timedelta(minutes=1))
                if s.address == "127.0.0.15")
    changes = reconcile_report(store, scan.report)
    assert "host" not in changes.ci_of_ref and store.count_cis() == {"Computer": 1}


def test_nmap_enriches_the_computer_an_agent_created_and_retires_only_after_a_complete_run(store):
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    reconcile_report(store, _agent_report(t0))
    (computer,) = store.list_cis("Computer")

    first = _lab_scan("lab-service-version", t0 + timedelta(minutes=1))["127.0.0.15"]
    reconcile_report(store, first.report)
    services = _services(store, computer.ci_id)
    assert set(services) == {"tcp/2222", "tcp/2525"}
    assert services["tcp/2222"]["product"] == "OpenSSH"
    assert services["tcp/2222"]["cpe"] == ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]
    ips = [store.get_ci(r.to_ci) for r in store.relationships(computer.ci_id, "out", type="HAS_IP")]
    assert [ci.attributes["address"].value for ci in ips] == ["127.0.0.15"]

    # A quick sweep without -sV that sees only tcp/2222 (the services collector not_applicable):
    # nothing retired, and the probed product is not erased.
    quick = _lab_scan("lab-host-timeout", t0 + timedelta(minutes=2))["127.0.0.15"]
    assert quick.report.collectors["services"].status == "not_applicable"
    changes = reconcile_report(store, quick.report)
    assert changes.ci_of_ref["host"] == computer.ci_id  # matched by its PTR name
    services = _services(store, computer.ci_id)
    assert set(services) == {"tcp/2222", "tcp/2525"} and services["tcp/2222"]["product"] == "OpenSSH"

    # The same -sV profile again, with the SMTP server stopped: a complete run, tcp/2525 retired.
    again = _lab_scan("lab-service-version-smtp-stopped", t0 + timedelta(minutes=3))["127.0.0.15"]
    assert again.report.collectors["services"].status == "ok"
    changes = reconcile_report(store, again.report)
    assert set(_services(store, computer.ci_id)) == {"tcp/2222"} and changes.retired

    # -O: an OperatingSystem under the computer, family "linux" like the agent's.
    with_os = _lab_scan("lab-os-detection", t0 + timedelta(minutes=4))["127.0.0.15"]
    reconcile_report(store, with_os.report)
    os_cis = [ci for r in store.relationships(computer.ci_id, "in", type="RUNS_ON")
              if (ci := store.get_ci(r.from_ci)).ci_class == "OperatingSystem"]
    assert [(ci.attributes["name"].value, ci.attributes["accuracy"].value) for ci in os_cis] == [
        ("Linux 5.0 - 5.2", 97)]
