"""Malformed and hostile XML: each refused with an NmapXmlError that says what was wrong, nothing
fetched, nothing expanded, no crash. The recorded lab scan is the well-formed base."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from discovery.nmap.errors import NmapXmlError
from discovery.nmap.xml import MAX_SCRIPT_OUTPUT, MAX_XML_BYTES, parse_nmap_xml

LAB_SCAN = (Path(__file__).resolve().parents[3] / "fixtures" / "nmap" / "lab-service-version" / "scan.xml").read_bytes()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<nmaprun args="&lol9;"/>"""


@pytest.mark.parametrize("xml, message", [
    (BILLION_LAUGHS, "declares entities"),
    (b'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY e SYSTEM "file:///etc/passwd">]><nmaprun args="&e;"/>',
     "declares entities"),
    (b'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><nmaprun/>',
     "declares entities"),
    (b'<!DOCTYPE nmaprun [<!ENTITY x SYSTEM "http://127.0.0.19:9/x" NDATA gif>]><nmaprun/>', "declares entities"),
    (b'<?xml version="1.0"?><!DOCTYPE nmaprun PUBLIC "-//x//y" "http://127.0.0.19:9/x.dtd"><nmaprun/>',
     "external DTD"),
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"nmap: command not found\n", "malformed at line 1, column 0: syntax error"),
    (b"<nmaprun><host>", "truncated"),
    (b"<nmaprun/><nmaprun/>", "junk after document element"),
    (b"<nmaprun>\x00</nmaprun>", "malformed"),
    (b'<nmaprun args="\xff\xfe"/>', "malformed"),
    (b"<root><host/></root>", "the root element is <root>, not <nmaprun>"),
    (b'<nmaprun start="yesterday"/>', "start='yesterday' is not a whole number"),
    (b'<nmaprun><host><address addr="10.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="22x"/>'
     b"</ports></host></nmaprun>", "host 10.0.0.1: portid='22x' is not a whole number"),
    (b'<nmaprun><host><ports><port protocol="tcp" portid="70000"/></ports></host></nmaprun>',
     "port number from 0 to 65535"),
    (b'<nmaprun><host><ports><port portid="22"/></ports></host></nmaprun>', "without a protocol"),
    (b'<nmaprun><host><os><osmatch name="x" accuracy="high"/></os></host></nmaprun>',
     "accuracy='high' is not a whole number"),
    (b'<nmaprun><runstats><finished elapsed="fast"/></runstats></nmaprun>', "elapsed='fast' is not a number"),
    (b"\xef\xbb\xbf<nmaprun>" + b"<x>" * 10, "truncated"),
])
def test_refused_with_a_reason(xml, message):
    with pytest.raises(NmapXmlError, match=message):
        parse_nmap_xml(xml)


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.75, 0.99])
def test_a_real_scan_cut_short_is_truncated_not_half_read(cut):
    with pytest.raises(NmapXmlError, match="truncated|malformed"):
        parse_nmap_xml(LAB_SCAN[: int(len(LAB_SCAN) * cut)])


def test_too_large_is_refused_before_parsing():
    with pytest.raises(NmapXmlError, match=r"is \d+ bytes, over the limit of 1000"):
        parse_nmap_xml(LAB_SCAN, max_bytes=1000)
    assert MAX_XML_BYTES == 256 * 1024 * 1024


def test_an_external_dtd_is_never_fetched():
    """A listener on a lab address: a parser that fetched the DTD would connect to it."""
    listener = socket.socket()
    listener.bind(("127.0.0.19", 0))
    listener.listen(1)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    connected: list[bool] = []

    def watch():
        try:
            listener.accept()
            connected.append(True)
        except OSError:
            pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(NmapXmlError, match="external DTD"):
            parse_nmap_xml(f'<!DOCTYPE nmaprun SYSTEM "http://127.0.0.19:{port}/x.dtd"><nmaprun/>'.encode())
        watcher.join()
    finally:
        listener.close()
    assert connected == []


def test_a_huge_sweep_streams_and_deep_nesting_is_harmless():
    host = (b'<host><status state="down" reason="no-response"/><address addr="10.%d.%d.%d" addrtype="ipv4"/>'
            b"</host>\n")
    body = b"".join(host % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(20_000))
    run = parse_nmap_xml(b'<?xml version="1.0"?><!DOCTYPE nmaprun><nmaprun args="nmap 10.0.0.0/16">' + body +
                         b'<runstats><hosts up="0" down="20000" total="65536"/></runstats></nmaprun>')
    assert len(run.hosts) == 20_000 and run.hosts[-1].ipv4 == "10.0.78.31" and run.hosts_down == 20_000
    deep = b"<nmaprun><host>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</host></nmaprun>"
    assert parse_nmap_xml(deep).hosts[0].ports == ()


def test_long_script_output_is_cut_and_text_input_is_accepted():
    xml = ('<nmaprun><host><address addr="10.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="22">'
           f'<state state="open"/><script id="banner" output="{"x" * 100_000}"/></port></ports></host></nmaprun>')
    (port,) = parse_nmap_xml(xml).hosts[0].ports
    assert len(port.scripts[0].output) == MAX_SCRIPT_OUTPUT
    with pytest.raises(NmapXmlError, match="bytes or text"):
        parse_nmap_xml(42)  # type: ignore[arg-type]


def test_empty_attributes_are_unknown_and_nmap_errors_are_kept():
    run = parse_nmap_xml(b'<nmaprun version=""><host><address addr="10.0.0.1" addrtype="ipv4"/><ports>'
                         b'<port protocol="tcp" portid="1"><state state="open"/><service name="x" product=""/>'
                         b'</port></ports></host><runstats><finished exit="error" errormsg="Failed to open device"/>'
                         b"</runstats></nmaprun>")
    assert run.nmap_version is None and run.hosts[0].ports[0].service.product is None
    assert (run.finished_exit, run.errormsg) == ("error", "Failed to open device")
