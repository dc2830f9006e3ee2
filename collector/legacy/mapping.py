"""A parsed OCS Inventory / FusionInventory inventory as our native report (fleetgraph.report/1).

    detect_source_kind(user_agent, content_type, request)   "fusion" | "ocs"
    device_id_problem(device_id)                            why a DEVICEID cannot be a source id, or None
    inventory_report_id(kind, device_id, xml)               the idempotency key of one inventory
    map_inventory(request, kind, report_id, received_at, user_agent)
                                                            the Report (pure: no I/O, no clock)

Each mapped section is a collector of the report, named after it in lower case ("softwares",
"networks", ...), with its own status: `ok` when the agent sent the section, `not_applicable`
(with the reason) when it did not, so reconcile retires nothing a missing section would have
stated; `failed` if mapping it broke (its items are left out, the other sections still count).
Sections the agents send that fleetgraph does not map are listed as `not_applicable` too, with
why. Contributions are validated and merged by our agent's own report builder (`ReportGraph`),
whose Computer item carries the DEVICEID as its `agent_id`.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta

from agent.builder import ReportGraph
from cmdb.report import SCHEMA_V1, TOKEN_PATTERN, CollectorStatus, Report, Source
from collector.legacy.fields import local_time, text
from collector.legacy.sections import (
    Facts,
    SectionMapper,
    first,
    map_bios,
    map_controllers,
    map_cpus,
    map_drives,
    map_hardware,
    map_local_users,
    map_memories,
    map_networks,
    map_operating_system,
    map_storages,
    map_users,
    read_facts,
)
from collector.legacy.software import map_softwares
from collector.legacy.xml import TEXT, LegacyRequest

MAX_REASON = 2048
# The order our agent's collectors run in: the first section that speaks of the Computer names
# its collector, and the first value of an attribute wins within one report.
SECTION_MAPPERS: tuple[tuple[str, SectionMapper], ...] = (
    ("HARDWARE", map_hardware),
    ("BIOS", map_bios),
    ("CPUS", map_cpus),
    ("OPERATINGSYSTEM", map_operating_system),
    ("MEMORIES", map_memories),
    ("STORAGES", map_storages),
    ("DRIVES", map_drives),
    ("NETWORKS", map_networks),
    ("CONTROLLERS", map_controllers),
    ("SOFTWARES", map_softwares),
    ("LOCAL_USERS", map_local_users),
    ("USERS", map_users),
)
# Sections of the two agents that fleetgraph's model has no place for (yet), and why.
NOT_MAPPED: dict[str, str] = {
    "ACCESSLOG": "the time of the inventory: it is the report's collected_at",
    "VERSIONCLIENT": "the agent's version: it is the report's source.version",
    "VERSIONPROVIDER": "the agent's build details",
    "PROCESSES": "running processes are a snapshot, not inventory",
    "ENVS": "environment variables of the agent's process",
    "LOCAL_GROUPS": "group membership is not part of the model; LOCAL_USERS is mapped",
    "FIREWALL": "no firewall state in the model",
    "REPOSITORY": "package repositories are not part of the model",
    "VIDEOS": "no class for display adapters; CONTROLLERS has their PCI functions",
    "SOUNDS": "no class for sound devices; CONTROLLERS has their PCI functions",
    "MONITORS": "no class for monitors",
    "INPUTS": "no class for input devices",
    "PORTS": "no class for physical ports",
    "SLOTS": "no class for expansion slots",
    "MODEMS": "no class for modems",
    "PRINTERS": "locally attached printers are not mapped",
    "USBDEVICES": "no class for USB devices",
    "BATTERIES": "no class for batteries",
    "POWERSUPPLIES": "no class for power supplies",
    "VIRTUALMACHINES": "hosted guests are not mapped yet (VirtualMachine CIs with HOSTS relations)",
    "ANTIVIRUS": "no antivirus state in the model",
    "LICENSEINFOS": "Windows product keys are not collected",
    "LOGICAL_VOLUMES": "LVM volumes are not part of the model",
    "PHYSICAL_VOLUMES": "LVM volumes are not part of the model",
    "VOLUME_GROUPS": "LVM volumes are not part of the model",
    "REGISTRY": "Windows registry values are not collected",
    "REMOTE_MGMT": "remote management ids are not collected",
    "RUDDER": "Rudder agent details are not collected",
}
ABSENT_REASONS = {
    "OPERATINGSYSTEM": "the agent sent no OPERATINGSYSTEM section (OCS does not): the OS is read from HARDWARE",
    "SOFTWARES": "the agent sent no SOFTWARES section (none installed, or collection disabled: "
                 "ocsinventory-agent --nosoftware, fusioninventory-agent --no-category=software)",
}
# collected_at comes from the agent's clock only when it is plausible.
MAX_CLOCK_AHEAD = timedelta(hours=1)
MAX_INVENTORY_AGE = timedelta(days=30)

_TOKEN = re.compile(TOKEN_PATTERN)
_REPORT_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def detect_source_kind(user_agent: str | None, content_type: str | None, request: LegacyRequest) -> str:
    """"fusion" for FusionInventory (and its successor GLPI agent), "ocs" for the OCS agent: by
    User-Agent, else Content-Type (Fusion: application/x-compress-zlib, OCS: application/x-compress),
    else the XML (VERSIONCLIENT); "ocs" when nothing tells."""
    agent = (user_agent or "").strip().lower()
    if agent.startswith(("fusioninventory", "glpi-agent", "glpi_agent")):
        return "fusion"
    if agent.startswith(("ocs-ng", "ocs_", "ocsinventory")):
        return "ocs"
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == "application/x-compress-zlib":
        return "fusion"
    if mime == "application/x-compress":
        return "ocs"
    client = str(first(request, "VERSIONCLIENT").get(TEXT, "")).lower()
    return "fusion" if client.startswith(("fusioninventory", "glpi")) else "ocs"


def device_id_problem(device_id: str | None) -> str | None:
    """Why this DEVICEID cannot be our source id (cmdb.report TOKEN_PATTERN), None when it can."""
    if not device_id:
        return "the request has no DEVICEID; every OCS / FusionInventory request names its device"
    if len(device_id) > 128 or not _TOKEN.match(device_id):
        shown = device_id[:80] + ("..." if len(device_id) > 80 else "")
        return (f"DEVICEID {shown!r} cannot be a source id: it must be at most 128 characters of letters, "
                f"digits and ._:@/+- starting with a letter or digit ({TOKEN_PATTERN})")
    return None


def inventory_report_id(kind: str, device_id: str, xml: bytes) -> str:
    """The same inventory sent twice gets the same id (and is stored once): the device id and a
    digest of the decompressed XML, which changes with every run of the agent (its LOGDATE)."""
    digest = hashlib.sha256(f"{kind}\0{device_id}\0".encode() + xml).hexdigest()
    return f"{kind}-{_REPORT_ID_UNSAFE.sub('_', device_id)[:64]}-{digest[:40]}"


def collected_at(request: LegacyRequest, facts: Facts, received_at: datetime) -> datetime:
    """ACCESSLOG's LOGDATE when the agent also sent its UTC offset and the time is plausible
    (not ahead of ours, not older than a month); otherwise the time the collector received it."""
    logged = local_time(text(first(request, "ACCESSLOG"), "LOGDATE"), facts.utc_offset)
    if logged is not None and received_at - MAX_INVENTORY_AGE <= logged <= received_at + MAX_CLOCK_AHEAD:
        return logged
    return received_at


def source_version(request: LegacyRequest, user_agent: str | None) -> str | None:
    client = first(request, "VERSIONCLIENT").get(TEXT)
    version = client if isinstance(client, str) and client else (user_agent or "").strip()
    return version[:64] or None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_REASON]


def map_inventory(request: LegacyRequest, kind: str, report_id: str, received_at: datetime,
                  user_agent: str | None = None) -> Report:
    """The native report of an INVENTORY request whose DEVICEID passed `device_id_problem`,
    under `report_id` (see inventory_report_id)."""
    assert request.device_id is not None
    facts = read_facts(request, kind)
    graph = ReportGraph(request.device_id)
    statuses: dict[str, CollectorStatus] = {}
    for section, mapper in SECTION_MAPPERS:
        name = section.lower()
        if not request.entries(section):
            reason = ABSENT_REASONS.get(section, f"the agent sent no {section} section")
            statuses[name] = CollectorStatus(status="not_applicable", reason=reason)
            continue
        start = time.perf_counter()
        try:
            items, relations = graph.validated(name, mapper(request, facts))
            graph.merge(items, relations)
        except Exception as exc:  # one section that cannot be mapped must not cost the others
            statuses[name] = CollectorStatus(status="failed", reason=_reason(exc), duration_ms=_ms(start))
            continue
        statuses[name] = CollectorStatus(status="ok", duration_ms=_ms(start))
    for section in (request.content or {}):
        if section in NOT_MAPPED:
            statuses[section.lower()] = CollectorStatus(status="not_applicable",
                                                        reason=f"not mapped: {NOT_MAPPED[section]}")
    return Report(
        schema=SCHEMA_V1,
        report_id=report_id,
        source=Source(kind=kind, id=request.device_id, version=source_version(request, user_agent)),
        collected_at=collected_at(request, facts, received_at),
        mode="full",
        collectors=statuses,
        items=list(graph.items.values()),
        relations=graph.relations,
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
