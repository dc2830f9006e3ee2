"""An nmap run as CMDB reports: one `HostScan` per host nmap saw, source kind "nmap".

Per host (ref in brackets):

- [host] a Computer, or a NetworkDevice / Printer when nmap is sure of the device type (an OS
  match of at least 95 % whose classes agree, else -sV probes that all name it). Identified by
  what nmap can know from the network: the MAC (only on the scanner's LAN), and the PTR / typed
  names as fqdn + hostname. Attributes: dns_name, mac_vendor, device_type, host-script output.
- [ip:<address>] an IPAddress, host HAS_IP it.
- [svc:tcp/22] a Service per open port, identified "tcp/22" like the agent's, RUNS_ON the host;
  with -sV also service (nmap's name), product, version, extrainfo, tunnel, every CPE, how nmap
  knew (detection, confidence), and the output of allow-listed NSE scripts (nse.<script>).
- [os] an OperatingSystem from the best OS match (-O): family (its identifier, lower case, as the
  agent's "linux"), name, vendor, generation, accuracy, every CPE, RUNS_ON the host.

nmap is a weak source: reconcile (reconcile.rules.BARRED_FROM_CREATING) never lets it create a
Computer, NetworkDevice or Printer. Its report enriches a host some other source created, matched
by MAC or by a name unique on both sides; an address alone identifies no host. When the host is
matched, its Services, IPAddress and OperatingSystem are created or updated under it.

Collector statuses say how complete each part is, so reconcile retires only what a complete run
missed (reconcile.staleness) and removes no attribute a run did not look for (reconcile.merge):

- ports: ok for every reported host (the address it holds).
- services: ok with -sV: the Service items are the whole set of open ports scanned, with their
  attributes. Without -sV: not_applicable, and Services carry only protocol and port, so a quick
  port sweep neither retires services nor erases what a -sV run found (nmap's port-number guess
  of a name would otherwise overwrite the probed one on every sweep).
- os: ok when -O matched an OS; failed when -O ran and did not; not_applicable without -O.

A complete run speaks for the ports it scanned: give each port set (profile) its own scanner id
so that a 2-port sweep does not count the other ports of a 1,000-port scan as gone.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.collectors.base import present
from cmdb.junk import clean_mac
from cmdb.report import (
    TOKEN_PATTERN,
    CollectorStatus,
    Item,
    Relation,
    ReportError,
    decode_report,
    encode_report,
)
from discovery.base import HostScan, build_report, source_id
from discovery.nmap.options import SCRIPT_ALLOW_LIST, NmapOptions
from discovery.nmap.xml import NmapHost, NmapPort, NmapRun, NmapScript

HOST_REF = "host"
OS_REF = "os"
MAX_TEXT = 1_024  # per attribute value taken from the XML: nmap's own values are far shorter
MAX_CPES = 64

# nmap's device types (nmap-os-db "Class" lines, -sV devicetype) that are a NetworkDevice in
# cmdb.model's sense: "a switch, router, firewall, AP, UPS or storage head"; and the Printers.
NETWORK_DEVICE_TYPES = frozenset({
    "bridge", "broadband router", "firewall", "hub", "load balancer", "power-device", "router",
    "security-misc", "storage-misc", "switch", "terminal server", "WAP", "telecom-misc", "PBX",
    "proxy server",
})
PRINTER_TYPES = frozenset({"printer", "print server"})
# An OS match below this is a guess among look-alikes (on loopback a Linux host also matches a
# Linux-based WAP at 93 %): its device type is kept as an attribute, not used to pick the class.
TRUSTED_OS_ACCURACY = 95
_SCRIPT_NAME = re.compile(r"[^a-z0-9_]+")
_SCANNER_ID = re.compile(TOKEN_PATTERN)


@dataclass(frozen=True, slots=True)
class Features:
    """What the run looked for, which decides how complete each collector's view is."""

    service_version: bool
    os_detection: bool


def requested_features(run: NmapRun, options: NmapOptions | None = None) -> Features:
    """From the options the run was made with, else from its command line (a run read from a file)."""
    options = options or run.options
    if options is not None:
        return Features(options.service_version, options.os_detection)
    words = (run.args or "").split()
    short = [w[1:] for w in words if w.startswith("-") and not w.startswith("--")]
    aggressive = "A" in short
    return Features(aggressive or any(w.startswith("s") and "V" in w[1:] for w in short),
                    aggressive or "O" in short)


def _short(value: str | None) -> str | None:
    return value[:MAX_TEXT] if value else None


def _attribute_name(script: NmapScript) -> str | None:
    name = _SCRIPT_NAME.sub("_", script.id.lower()).strip("_")
    return f"nse.{name}" if name and name[0].isalpha() and len(name) <= 100 else None


def _script_attributes(scripts: Iterable[NmapScript]) -> dict[str, Any]:
    """Outputs of the allow-listed scripts only: others (in XML made elsewhere) print clocks, timings
    and probe results that change every run, which would be drift on every report."""
    return {name: _short(s.output.strip()) for s in scripts
            if s.id in SCRIPT_ALLOW_LIST and (name := _attribute_name(s)) and s.output and s.output.strip()}


def host_class(host: NmapHost) -> tuple[str, str | None]:
    """(CI class, nmap's device type). The type decides the class only when nmap is sure of it: an
    OS match of at least TRUSTED_OS_ACCURACY whose classes agree, else (no such match) -sV probes
    that all name one device type. A -sV type never overrides a sure OS match: a honeypot or an
    appliance emulator answers like a NAS on one port and like a router on the next."""
    best = host.best_osmatch
    classes = host.best_osclasses
    device_type = classes[0].type if classes else None
    accuracy = (best.accuracy if best is not None and best.accuracy is not None
                else classes[0].accuracy if classes else None) or 0
    trusted = bool(classes) and accuracy >= TRUSTED_OS_ACCURACY and all(c.type == device_type for c in classes)
    if not trusted:
        probed = {p.service.devicetype for p in host.open_ports
                  if p.service and p.service.devicetype and p.service.method == "probed"}
        if len(probed) == 1:
            device_type, trusted = probed.pop(), True
    if trusted and device_type in PRINTER_TYPES:
        return "Printer", device_type
    if trusted and device_type in NETWORK_DEVICE_TYPES:
        return "NetworkDevice", device_type
    return "Computer", device_type


def host_names(host: NmapHost) -> list[str]:
    """Names nmap knows for the host, reverse DNS first, lower case, without duplicates."""
    ordered = sorted(host.hostnames, key=lambda h: h.type != "PTR")
    return list(dict.fromkeys(h.name.lower().rstrip(".") for h in ordered if h.name.strip(".")))


def _one_or_list(values: list[str]) -> str | list[str] | None:
    return None if not values else values[0] if len(values) == 1 else values


def host_identifiers(class_: str, host: NmapHost) -> dict[str, Any]:
    mac = clean_mac(host.mac)
    if class_ == "NetworkDevice":
        return present({"chassis_mac": mac})
    if class_ == "Printer":
        return present({"mac": mac})
    names = [n for n in host_names(host) if len(n) <= 253]
    return present({"mac": mac,
                    "fqdn": _one_or_list([n for n in names if "." in n]),
                    "hostname": _one_or_list(list(dict.fromkeys(n.split(".", 1)[0] for n in names)))})


def _service_attributes(port: NmapPort, service_version: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = {"protocol": port.protocol, "port": port.portid}
    service = port.service
    if service_version and service is not None:
        attributes.update({
            "service": _short(service.name), "product": _short(service.product),
            "version": _short(service.version), "extrainfo": _short(service.extrainfo),
            "tunnel": _short(service.tunnel), "cpe": [c[:MAX_TEXT] for c in service.cpe[:MAX_CPES]],
            "detection": service.method, "confidence": service.conf,
            "ostype": _short(service.ostype), "devicetype": _short(service.devicetype),
        })
    attributes.update(_script_attributes(port.scripts))
    return present(attributes)


def _os_item(host: NmapHost) -> tuple[Item | None, str | None]:
    """(the OperatingSystem item, None) or (None, why there is none)."""
    best = host.best_osmatch
    if best is None:
        return None, ("nmap found no OS match (it needs at least one open and one closed TCP port, "
                      "and a fingerprint it knows)")
    classes = host.best_osclasses
    family = next((c.osfamily for c in classes if c.osfamily), None)
    if family is None:
        return None, f"nmap matched {best.name!r} but named no OS family"
    first = classes[0]
    cpes = list(dict.fromkeys(c[:MAX_TEXT] for cls in classes for c in cls.cpe))[:MAX_CPES]
    attributes = present({
        "name": _short(best.name), "family": _short(family), "vendor": _short(first.vendor),
        "generation": _short(first.osgen), "accuracy": best.accuracy, "cpe": cpes,
        "device_type": _short(first.type),
    })
    return Item(class_="OperatingSystem", ref=OS_REF, identifiers={"family": family.lower()[:MAX_TEXT]},
                attributes=attributes, collector="os"), None


def _collected_at(host: NmapHost, run: NmapRun) -> datetime:
    stamp = host.endtime or run.finished_time
    return datetime.fromtimestamp(stamp, UTC) if stamp else datetime.now(UTC)


def summarize(host: NmapHost, class_: str, device_type: str | None) -> dict[str, Any]:
    """What the end-of-scan table shows for the host."""
    classes = host.best_osclasses
    best = host.best_osmatch
    ostypes = [p.service.ostype for p in host.open_ports if p.service and p.service.ostype]
    states = Counter(p.state for p in host.ports)
    for extra in host.extraports:
        states[extra.state] += extra.count or 0
    names = host_names(host)
    return present({
        "ip": host.address, "hostname": names[0] if names else None, "mac": clean_mac(host.mac),
        "vendor": (classes[0].vendor if classes else None) or host.mac_vendor,
        "type": device_type or class_, "class": class_,
        "os": best.name if best else (ostypes[0] if ostypes else None),
        "open_ports": [p.key for p in host.open_ports],
        "closed_ports": states.get("closed"), "filtered_ports": states.get("filtered"),
    })


def host_scan(host: NmapHost, run: NmapRun, scanner_id: str, features: Features,
              collected_at: datetime | None = None) -> HostScan:
    """The HostScan of one host nmap reported up: its report, or why there is none."""
    address = host.address or "?"
    duration = float(host.endtime - host.starttime) if host.endtime and host.starttime else 0.0
    if host.timed_out:
        timeout = run.options.host_timeout_s if run.options else None
        limit = f" of {timeout:g} s" if timeout else ""
        return HostScan(address, "nmap", error=f"nmap gave up on {address} at the host timeout{limit} and kept "
                                               "no result for it: raise host_timeout_s or scan fewer ports",
                        duration_s=duration)
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return HostScan(address, "nmap", error=f"nmap reported a host whose address {address[:60]!r} is not "
                                               "an IP address: nothing reported for it")
    class_, device_type = host_class(host)
    names = host_names(host)
    host_attributes = present({"dns_name": names[0] if names else None,
                               "mac_vendor": _short(host.mac_vendor), "device_type": _short(device_type),
                               **_script_attributes(host.host_scripts)})
    # The host item has no collector: nmap never retires a host, and its attributes come from
    # different options (-n, -O, scripts) that one run may not use; absent is not "gone".
    items = [Item(class_=class_, ref=HOST_REF, identifiers=host_identifiers(class_, host),
                  attributes=host_attributes)]
    ip_ref = f"ip:{ip.compressed}"
    items.append(Item(class_="IPAddress", ref=ip_ref, identifiers={"address": ip.compressed},
                      attributes={"address": ip.compressed, "family": ip.version}, collector="ports"))
    relations = [Relation(from_=HOST_REF, type="HAS_IP", to=ip_ref)]
    for port in host.open_ports:
        ref = f"svc:{port.key}"
        if any(item.ref == ref for item in items):
            continue  # a hostile document listing one port twice
        items.append(Item(class_="Service", ref=ref, identifiers={"name": port.key},
                          attributes=_service_attributes(port, features.service_version), collector="services"))
        relations.append(Relation(from_=ref, type="RUNS_ON", to=HOST_REF))
    collectors = {
        "ports": CollectorStatus(status="ok"),
        "services": CollectorStatus(status="ok") if features.service_version else CollectorStatus(
            status="not_applicable", reason="service detection (-sV) was not requested: services carry "
                                            "protocol and port only, and none is retired"),
        "os": CollectorStatus(status="not_applicable", reason="OS detection (-O) was not requested"),
    }
    if features.os_detection:
        os_item, why_not = _os_item(host)
        if os_item is not None:
            items.append(os_item)
            relations.append(Relation(from_=OS_REF, type="RUNS_ON", to=HOST_REF))
            collectors["os"] = CollectorStatus(status="ok")
        else:
            collectors["os"] = CollectorStatus(status="failed", reason=why_not)
    report = build_report("nmap", source_id(scanner_id, "nmap", ip.compressed), items, relations, collectors,
                          collected_at=collected_at or _collected_at(host, run))
    try:  # the collector's own decoder: what passes here is accepted at ingest
        decode_report(encode_report(report))
    except ReportError as exc:
        return HostScan(address, "nmap", error=f"the report for {address} breaks the wire format ({exc}): "
                                               "nothing reported for it", duration_s=duration)
    return HostScan(address, "nmap", report=report, summary=summarize(host, class_, device_type),
                    duration_s=duration)


def why_unseen(host: NmapHost) -> str | None:
    """None when the host counts as seen, else why not: down, or up only because -Pn said so
    (on 127.0.0.0/8, and with -Pn anywhere, an address with no open port is no sign of a host)."""
    if host.timed_out:
        return None
    if host.state != "up":
        return f"down: no answer to host discovery ({host.reason or 'no reason given'})"
    if host.reason == "user-set" and not host.open_ports:
        states = Counter(p.state for p in host.ports)
        for extra in host.extraports:
            states[extra.state] += extra.count or 0
        seen = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: str(kv[0])))
        return (f"no open port ({seen or 'no port scanned'}); host discovery was skipped (-Pn), so nmap "
                "has no sign that a host is there")
    return None


def nmap_host_reports(run: NmapRun, scanner_id: str, options: NmapOptions | None = None, *,
                      include_unseen: bool = False, collected_at: datetime | None = None) -> list[HostScan]:
    """One HostScan per host the run saw (up with evidence, or timed out), in nmap's order.

    With `include_unseen`, hosts nmap listed without evidence (down, or -Pn with no open port)
    come too, as HostScans with `error` saying why (useful when a single target was asked for).
    `collected_at` defaults to nmap's end time for the host (1 s resolution)."""
    if not isinstance(scanner_id, str) or not _SCANNER_ID.match(scanner_id):
        raise ValueError(f"scanner id {scanner_id!r} must match {TOKEN_PATTERN} (it starts every source id)")
    features = requested_features(run, options)
    scans = []
    for host in run.hosts:
        reason = why_unseen(host)
        if reason is None:
            scans.append(host_scan(host, run, scanner_id, features, collected_at))
        elif include_unseen:
            scans.append(HostScan(host.address or "?", "nmap", error=reason))
    return scans
