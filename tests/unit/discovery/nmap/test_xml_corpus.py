"""The parser against the corpus: every nmap XML file in /work/shared/corpora/nmap/ (real scans by
nmap 5.21 to 7.91) read into exactly the facts of its expected/<name>.json, an oracle extracted
from the file itself with xml.etree, independent of our parser. A new file in the corpus is a new
case. The non-nmap/ files are refused cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import nmap as python_nmap
import pytest

from discovery.nmap.errors import NmapXmlError
from discovery.nmap.xml import NmapRun, OsClass, parse_nmap_xml

CORPUS = Path("/work/shared/corpora/nmap")
CASES = sorted(CORPUS.glob("*.xml"))
NON_NMAP = sorted((CORPUS / "non-nmap").glob("*.xml"))


def _osclass(c: OsClass) -> dict:
    return {"type": c.type, "vendor": c.vendor, "osfamily": c.osfamily, "osgen": c.osgen, "accuracy": c.accuracy}


def as_oracle(run: NmapRun) -> dict:
    """Our parse in the oracle's shape (corpora/README.md, section 2)."""
    hosts = []
    for h in run.hosts:
        addresses = [{"addr": a.addr, "addrtype": a.addrtype, **({"vendor": a.vendor} if a.vendor else {})}
                     for a in h.addresses]
        ports_open = [{
            "protocol": p.protocol, "portid": p.portid, "state": p.state, "reason": p.reason,
            "service": None if p.service is None else {
                "name": p.service.name, "product": p.service.product, "version": p.service.version,
                "extrainfo": p.service.extrainfo, "tunnel": p.service.tunnel, "method": p.service.method,
                "conf": p.service.conf, "cpe": list(p.service.cpe)},
            "scripts": [s.id for s in p.scripts]} for p in h.open_ports]
        hosts.append({
            "status": {"state": h.state, "reason": h.reason}, "addresses": addresses,
            "ipv4": h.ipv4, "ipv6": h.ipv6, "mac": h.mac, "mac_vendor": h.mac_vendor,
            "hostnames": [{"name": n.name, "type": n.type} for n in h.hostnames],
            "ports_listed": len(h.ports),
            "extraports": [{"state": e.state, "count": e.count} for e in h.extraports],
            "ports_open": ports_open,
            "osmatches": [{"name": m.name, "accuracy": m.accuracy} for m in h.osmatches],
            "osclasses": [_osclass(c) for c in h.osclasses],
        })
    return {
        "nmap_version": run.nmap_version, "xmloutputversion": run.xmloutputversion, "args": run.args,
        "start": run.start,
        "scaninfo": [{"type": s.type, "protocol": s.protocol, "numservices": s.numservices} for s in run.scaninfo],
        "runstats_hosts": {"up": run.hosts_up, "down": run.hosts_down, "total": run.hosts_total},
        "host_elements": len(run.hosts), "hosts_up": sum(h.state == "up" for h in run.hosts),
        "hosts": hosts,
    }


def test_the_corpus_is_there():
    assert len(CASES) == 24 and len(NON_NMAP) == 2, "the shared corpus moved: see /work/shared/corpora/README.md"


def empty_is_unknown(value):
    """The oracle keeps an attribute nmap wrote empty (product="") as ""; the house rule is that
    unknown is None, never "", and our parser says so: compare on that footing."""
    if isinstance(value, dict):
        return {k: empty_is_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [empty_is_unknown(v) for v in value]
    return None if value == "" else value


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_parse_matches_the_oracle(path: Path):
    expected = empty_is_unknown(json.loads((CORPUS / "expected" / f"{path.stem}.json").read_text()))
    for key in ("file", "origin", "oracle"):
        expected.pop(key, None)
    got = as_oracle(parse_nmap_xml(path.read_bytes()))
    assert got.keys() == expected.keys()
    for key in expected:
        if key != "hosts":
            assert got[key] == expected[key], key
    assert len(got["hosts"]) == len(expected["hosts"])
    for i, (ours, theirs) in enumerate(zip(got["hosts"], expected["hosts"])):
        assert ours == theirs, f"host #{i} ({theirs['ipv4'] or theirs['ipv6']})"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_every_cpe_survives_where_python_nmap_keeps_one(path: Path):
    """python-nmap's parser (the reason we parse ourselves) keeps at most one CPE per port."""
    run = parse_nmap_xml(path.read_bytes())
    theirs = python_nmap.PortScanner.__new__(python_nmap.PortScanner)  # no `nmap -V`: parse only
    try:
        parsed = theirs.analyse_nmap_xml_scan(path.read_text())
    except python_nmap.PortScannerError:
        pytest.skip("python-nmap cannot parse this file at all")
    for host in run.hosts:
        for port in host.open_ports:
            if host.ipv4 not in parsed["scan"] or port.service is None:
                continue
            their_cpe = parsed["scan"][host.ipv4].get(port.protocol, {}).get(port.portid, {}).get("cpe", "")
            assert (their_cpe or None) == (port.service.cpe[-1] if port.service.cpe else None)


def test_a_port_with_several_cpes_keeps_them_all():
    xml = (CORPUS / "fullscan.xml").read_bytes()
    host = next(h for h in parse_nmap_xml(xml).hosts if h.ipv4 == "192.168.1.4")
    ssh = next(p for p in host.open_ports if p.portid == 22)
    assert ssh.service is not None
    assert ssh.service.cpe == ("cpe:/a:openbsd:openssh:5.9p1", "cpe:/o:linux:linux_kernel")
    theirs = python_nmap.PortScanner.__new__(python_nmap.PortScanner)
    assert theirs.analyse_nmap_xml_scan(xml.decode())["scan"]["192.168.1.4"]["tcp"][22]["cpe"] == \
        "cpe:/o:linux:linux_kernel"  # python-nmap: one of the two


@pytest.mark.parametrize("path", NON_NMAP, ids=lambda p: p.name)
def test_non_nmap_files_are_refused(path: Path):
    expected = json.loads(path.with_suffix(".json").read_text())
    assert expected["is_nmaprun"] is False
    with pytest.raises(NmapXmlError) as refused:
        parse_nmap_xml(path.read_bytes())
    if expected["root_element"] is None:  # the external-entity probe: refused before any element
        assert "declares entities" in str(refused.value)
    else:
        assert f"the root element is <{expected['root_element']}>, not <nmaprun>" in str(refused.value)
