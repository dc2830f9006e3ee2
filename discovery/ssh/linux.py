"""The report of a Linux host scanned over SSH: the agent's own collectors, run through an
`SshContext`, so the host's inventory is the one the agent would send from it (same parsers,
same items), as a source of kind "ssh".

Differences from an agent report, on purpose:
- the Computer carries no `agent_id` identifier (no agent runs there; the host is identified by
  its MACs, names, serial and UUID like any other source);
- collectors that read the scanning machine itself (psutil: services, connections) say
  `not_applicable`, as they do for any context whose `local` is False;
- each scan uses fresh collector instances: the registry's instances keep per-run state
  (a started dpkg-query, the license cache) that concurrent host scans must not share.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.builder import ReportGraph, prepare_collectors, run_collector
from agent.collectors import COLLECTORS, COMPUTER_REF, Collector
from cmdb.report import CollectorStatus, Report
from discovery.base import build_report
from discovery.ssh.context import SshContext


def fresh_collectors(collectors: Iterable[Collector] | None = None) -> list[Collector]:
    """New instances of the registry's collectors (or of `collectors`' classes), same order."""
    return [type(c)() for c in (COLLECTORS if collectors is None else collectors)]


def linux_report(ctx: SshContext, source_id: str, collectors: Iterable[Collector] | None = None) -> Report:
    """A full report of the host behind `ctx` (kind "ssh", id `source_id`)."""
    chosen = fresh_collectors(collectors)
    prepare_collectors(ctx, chosen)
    graph = ReportGraph(ctx.agent_id)
    statuses: dict[str, CollectorStatus] = {}
    for collector in chosen:
        statuses[collector.name] = run_collector(ctx, collector, graph)
    graph.items[COMPUTER_REF].identifiers.pop("agent_id", None)
    return build_report("ssh", source_id, list(graph.items.values()), graph.relations, statuses)


def linux_summary(report: Report) -> dict[str, object]:
    """What the end-of-scan table shows for a Linux host."""
    computer = next(i for i in report.items if i.ref == COMPUTER_REF)
    os_item = next((i for i in report.items if i.class_ == "OperatingSystem"), None)
    os_name = None
    if os_item is not None:
        os_name = os_item.attributes.get("pretty_name") or " ".join(
            str(v) for v in (os_item.attributes.get("name"), os_item.attributes.get("version")) if v) or None
    return {k: v for k, v in {
        "type": "computer",
        "vendor": computer.attributes.get("manufacturer"),
        "model": computer.attributes.get("model"),
        "serial": computer.identifiers.get("serial"),
        "hostname": computer.attributes.get("hostname") or computer.identifiers.get("hostname"),
        "os": os_name,
        "packages": sum(1 for i in report.items if i.class_ == "SoftwareInstall"),
    }.items() if v not in (None, "")}

