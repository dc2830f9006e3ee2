"""nmap's XML output (`-oX`) as typed values: a pure function of bytes, no I/O.

Why not python-nmap's parser: it keeps one CPE per port (LAB.md), turns missing values into ""
and reads the whole document into a dict. This parser keeps every CPE of a service and of an OS
class, keeps absent values None, reads nmap 5's `<osclass>` under `<os>` and nmap 6+'s under
`<osmatch>`, and streams: each `<host>` is dropped from memory once read.

Hostile input is refused, never half-read: the XML goes through defusedxml (entity declarations,
hence billion laughs and external entities, are refused; nothing is fetched), its size is capped
before parsing, the root must be `<nmaprun>`, and a truncated document is an error. Any refusal is
an NmapXmlError that says what was wrong.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from discovery.nmap.errors import NmapXmlError

if TYPE_CHECKING:
    from discovery.nmap.options import NmapOptions

# A /16 with -sV and scripts stays well under this; a bigger document is a mistake or an attack.
MAX_XML_BYTES = 256 * 1024 * 1024
MAX_SCRIPT_OUTPUT = 4_096


@dataclass(frozen=True, slots=True)
class NmapService:
    name: str | None = None
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    tunnel: str | None = None
    method: str | None = None  # "probed" (-sV matched it) or "table" (guessed from the port number)
    conf: int | None = None  # 0-10
    ostype: str | None = None
    devicetype: str | None = None
    hostname: str | None = None
    cpe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NmapScript:
    id: str
    output: str | None = None


@dataclass(frozen=True, slots=True)
class NmapPort:
    protocol: str
    portid: int
    state: str | None
    reason: str | None
    service: NmapService | None = None
    scripts: tuple[NmapScript, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.protocol}/{self.portid}"


@dataclass(frozen=True, slots=True)
class OsClass:
    type: str | None = None
    vendor: str | None = None
    osfamily: str | None = None
    osgen: str | None = None
    accuracy: int | None = None
    cpe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OsMatch:
    name: str | None
    accuracy: int | None
    osclasses: tuple[OsClass, ...] = ()  # nmap 6+; nmap 5 lists them beside, in NmapHost.osclasses


@dataclass(frozen=True, slots=True)
class NmapAddress:
    addr: str
    addrtype: str | None
    vendor: str | None = None


@dataclass(frozen=True, slots=True)
class NmapHostname:
    name: str
    type: str | None  # "user" (the target as typed) or "PTR" (reverse DNS)


@dataclass(frozen=True, slots=True)
class ExtraPorts:
    state: str | None
    count: int | None


@dataclass(frozen=True, slots=True)
class NmapHost:
    state: str | None
    reason: str | None
    addresses: tuple[NmapAddress, ...] = ()
    hostnames: tuple[NmapHostname, ...] = ()
    ports: tuple[NmapPort, ...] = ()  # every <port>, any state
    extraports: tuple[ExtraPorts, ...] = ()  # ports folded into "Not shown: 997 closed ports"
    osmatches: tuple[OsMatch, ...] = ()
    osclasses: tuple[OsClass, ...] = ()  # every <osclass> of the host, in document order
    host_scripts: tuple[NmapScript, ...] = ()
    timed_out: bool = False  # nmap gave up on it (--host-timeout): its results were dropped
    starttime: int | None = None
    endtime: int | None = None

    def _address(self, kind: str) -> NmapAddress | None:
        return next((a for a in self.addresses if a.addrtype == kind), None)

    @property
    def ipv4(self) -> str | None:
        return a.addr if (a := self._address("ipv4")) else None

    @property
    def ipv6(self) -> str | None:
        return a.addr if (a := self._address("ipv6")) else None

    @property
    def mac(self) -> str | None:
        return a.addr if (a := self._address("mac")) else None

    @property
    def mac_vendor(self) -> str | None:
        return a.vendor if (a := self._address("mac")) else None

    @property
    def address(self) -> str | None:
        """The IP address nmap scanned (IPv4 first), else whatever address it has."""
        return self.ipv4 or self.ipv6 or (self.addresses[0].addr if self.addresses else None)

    @property
    def open_ports(self) -> list[NmapPort]:
        """Ports whose state is exactly "open" ("open|filtered" is a guess, not an open port)."""
        return [p for p in self.ports if p.state == "open"]

    @property
    def best_osmatch(self) -> OsMatch | None:
        """The most accurate OS match (nmap lists them best first; the first of equals wins)."""
        best = None
        for match in self.osmatches:
            if best is None or (match.accuracy or 0) > (best.accuracy or 0):
                best = match
        return best

    @property
    def best_osclasses(self) -> tuple[OsClass, ...]:
        """The OS classes of the best match (nmap 6+), else the host's own (nmap 5), best first."""
        best = self.best_osmatch
        classes = best.osclasses if best is not None and best.osclasses else self.osclasses
        return tuple(sorted(classes, key=lambda c: -(c.accuracy or 0)))


@dataclass(frozen=True, slots=True)
class ScanInfo:
    type: str | None
    protocol: str | None
    numservices: int | None


@dataclass(frozen=True, slots=True)
class NmapRun:
    """One nmap run. `command`, `options` and `duration_s` are set by the runner (discovery.nmap.runner);
    parsing a file leaves them empty."""

    scanner: str | None = None
    nmap_version: str | None = None
    xmloutputversion: str | None = None
    args: str | None = None
    start: int | None = None
    scaninfo: tuple[ScanInfo, ...] = ()
    hosts: tuple[NmapHost, ...] = ()
    hosts_up: int | None = None  # <runstats><hosts up= down= total=>
    hosts_down: int | None = None
    hosts_total: int | None = None
    finished_exit: str | None = None  # "success" or "error"
    errormsg: str | None = None
    elapsed_s: float | None = None
    finished_time: int | None = None
    skipped_targets: tuple[str, ...] = ()  # <target status="skipped">: "spec (reason)"
    command: tuple[str, ...] = ()
    options: NmapOptions | None = None
    duration_s: float | None = None
    warnings: tuple[str, ...] = field(default=())  # nmap's stderr lines, when run by us


# -- reading values ------------------------------------------------------------------------------

def _text(elem: Element, name: str) -> str | None:
    value = elem.get(name)
    return value if value else None  # nmap writes "" for unknown in places: unknown is None


def _int(elem: Element, name: str, where: str) -> int | None:
    value = elem.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise NmapXmlError(f"{where}: {name}={value[:40]!r} is not a whole number") from None


def _float(elem: Element, name: str, where: str) -> float | None:
    value = elem.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise NmapXmlError(f"{where}: {name}={value[:40]!r} is not a number") from None


def _children(elem: Element | None, tag: str) -> list[Element]:
    """Direct children with this tag (a plain loop: ElementPath's findall costs more per call)."""
    return [] if elem is None else [child for child in elem if child.tag == tag]


def _child(elem: Element | None, tag: str) -> Element | None:
    return None if elem is None else next((child for child in elem if child.tag == tag), None)


def _cpes(elem: Element) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.text.strip() for c in _children(elem, "cpe") if c.text and c.text.strip()))


def _script(elem: Element) -> NmapScript | None:
    script_id = _text(elem, "id")
    if script_id is None:
        return None
    output = _text(elem, "output")
    return NmapScript(script_id, output[:MAX_SCRIPT_OUTPUT] if output else None)


def _service(elem: Element | None, where: str) -> NmapService | None:
    if elem is None:
        return None
    return NmapService(
        name=_text(elem, "name"), product=_text(elem, "product"), version=_text(elem, "version"),
        extrainfo=_text(elem, "extrainfo"), tunnel=_text(elem, "tunnel"), method=_text(elem, "method"),
        conf=_int(elem, "conf", where), ostype=_text(elem, "ostype"), devicetype=_text(elem, "devicetype"),
        hostname=_text(elem, "hostname"), cpe=_cpes(elem))


def _port(elem: Element, where: str) -> NmapPort:
    protocol = _text(elem, "protocol")
    portid = _int(elem, "portid", where)
    if protocol is None or portid is None or not 0 <= portid <= 65535:
        raise NmapXmlError(f"{where}: a <port> without a protocol or a port number from 0 to 65535")
    where = f"{where} port {protocol}/{portid}"
    state = _child(elem, "state")
    scripts = tuple(s for s in map(_script, _children(elem, "script")) if s is not None)
    return NmapPort(protocol=protocol, portid=portid,
                    state=_text(state, "state") if state is not None else None,
                    reason=_text(state, "reason") if state is not None else None,
                    service=_service(_child(elem, "service"), where), scripts=scripts)


def _osclass(elem: Element, where: str) -> OsClass:
    return OsClass(type=_text(elem, "type"), vendor=_text(elem, "vendor"), osfamily=_text(elem, "osfamily"),
                   osgen=_text(elem, "osgen"), accuracy=_int(elem, "accuracy", where), cpe=_cpes(elem))


def parse_host(elem: Element) -> NmapHost:
    """One `<host>` element."""
    addresses = tuple(NmapAddress(a.get("addr", ""), _text(a, "addrtype"), _text(a, "vendor"))
                      for a in _children(elem, "address") if a.get("addr"))
    where = f"host {addresses[0].addr}" if addresses else "a host without an address"
    status = _child(elem, "status")
    hostnames = tuple(NmapHostname(h.get("name", ""), _text(h, "type"))
                      for h in _children(_child(elem, "hostnames"), "hostname") if h.get("name"))
    ports_elem = _child(elem, "ports")
    ports = tuple(_port(p, where) for p in _children(ports_elem, "port")) if ports_elem is not None else ()
    extraports = tuple(ExtraPorts(_text(e, "state"), _int(e, "count", where))
                       for e in _children(ports_elem, "extraports")) if ports_elem is not None else ()
    os_elem = _child(elem, "os")
    osmatches: tuple[OsMatch, ...] = ()
    osclasses: tuple[OsClass, ...] = ()
    if os_elem is not None:
        osmatches = tuple(OsMatch(_text(m, "name"), _int(m, "accuracy", where),
                                  tuple(_osclass(c, where) for c in _children(m, "osclass")))
                          for m in _children(os_elem, "osmatch"))
        osclasses = tuple(_osclass(c, where) for c in os_elem.iter("osclass"))
    host_scripts = tuple(s for s in map(_script, _children(_child(elem, "hostscript"), "script")) if s is not None)
    return NmapHost(
        state=_text(status, "state") if status is not None else None,
        reason=_text(status, "reason") if status is not None else None,
        addresses=addresses, hostnames=hostnames, ports=ports, extraports=extraports,
        osmatches=osmatches, osclasses=osclasses, host_scripts=host_scripts,
        timed_out=elem.get("timedout") == "true",
        starttime=_int(elem, "starttime", where), endtime=_int(elem, "endtime", where))


# -- the document --------------------------------------------------------------------------------

class _NmapXmlParser(DefusedXMLParser):
    """defusedxml with one rule more: nmap writes `<!DOCTYPE nmaprun>`, so a DOCTYPE that names an
    external DTD (SYSTEM/PUBLIC) is refused rather than silently not fetched."""

    def __init__(self) -> None:
        super().__init__(forbid_dtd=True, forbid_entities=True, forbid_external=True)

    def defused_start_doctype_decl(self, name: str, sysid: str | None, pubid: str | None,
                                   has_internal_subset: bool) -> None:
        if sysid or pubid:
            raise DTDForbidden(name, sysid, pubid)


def _where(exc: ParseError) -> str:
    position = getattr(exc, "position", None)
    return f" at line {position[0]}, column {position[1]}" if position else ""


def parse_nmap_xml(xml: bytes | str, *, max_bytes: int = MAX_XML_BYTES) -> NmapRun:
    """Parse the XML of one nmap run. Raises NmapXmlError when it is not nmap XML, is malformed,
    truncated, too large, or declares entities or external references."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if not isinstance(data, (bytes, bytearray)):
        raise NmapXmlError(f"nmap XML must be bytes or text, not {type(xml).__name__}")
    if len(data) > max_bytes:
        raise NmapXmlError(f"the nmap XML is {len(data)} bytes, over the limit of {max_bytes}: "
                           "scan fewer hosts or ports per run")
    if not data.strip():
        raise NmapXmlError("the nmap XML is empty: nmap wrote nothing (did it start?)")
    run: dict[str, Any] = {}
    hosts: list[NmapHost] = []
    scaninfo: list[ScanInfo] = []
    skipped: list[str] = []
    root: Element | None = None
    try:
        for event, elem in iterparse(io.BytesIO(data), events=("start", "end"), parser=_NmapXmlParser()):
            if root is None:
                root = elem
                if elem.tag != "nmaprun":
                    raise NmapXmlError(f"not nmap XML: the root element is <{elem.tag[:40]}>, not <nmaprun> "
                                       "(give the output of nmap -oX)")
                run.update(scanner=_text(elem, "scanner"), nmap_version=_text(elem, "version"),
                           xmloutputversion=_text(elem, "xmloutputversion"), args=_text(elem, "args"),
                           start=_int(elem, "start", "<nmaprun>"))
                continue
            if event != "end":
                continue
            tag = elem.tag
            if tag == "host":
                hosts.append(parse_host(elem))
                elem.clear()  # keep memory flat on big sweeps: this host is read
            elif tag == "scaninfo":
                scaninfo.append(ScanInfo(_text(elem, "type"), _text(elem, "protocol"),
                                         _int(elem, "numservices", "<scaninfo>")))
            elif tag == "target" and elem.get("status") == "skipped":
                skipped.append(f"{elem.get('specification', '?')} ({elem.get('reason', 'no reason given')})")
            elif tag == "finished":
                run.update(finished_exit=_text(elem, "exit"), errormsg=_text(elem, "errormsg"),
                           elapsed_s=_float(elem, "elapsed", "<finished>"),
                           finished_time=_int(elem, "time", "<finished>"))
            elif tag == "hosts":
                run.update(hosts_up=_int(elem, "up", "<runstats>"), hosts_down=_int(elem, "down", "<runstats>"),
                           hosts_total=_int(elem, "total", "<runstats>"))
    except EntitiesForbidden:
        raise NmapXmlError("refused: the XML declares entities (nmap never does; this is how "
                           "billion-laughs and external-entity attacks start)") from None
    except (ExternalReferenceForbidden, DTDForbidden):
        raise NmapXmlError("refused: the XML refers to an external DTD or entity (nmap never does)") from None
    except ParseError as exc:
        reason = str(exc).split(":", 1)[0]
        if "no element found" in reason or "unclosed token" in reason:
            raise NmapXmlError(f"the nmap XML is truncated{_where(exc)} ({reason}): nmap was interrupted "
                               "or its output was cut; scan again") from None
        raise NmapXmlError(f"the nmap XML is malformed{_where(exc)}: {reason}") from None
    if root is None:
        raise NmapXmlError("the nmap XML has no root element")
    return NmapRun(scaninfo=tuple(scaninfo), hosts=tuple(hosts), skipped_targets=tuple(skipped), **run)
