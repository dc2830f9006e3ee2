"""The scenario harness: recorded situations under tests/fixtures/reconcile/<scenario>/, replayed on
the real store and checked against the scenario's expected.json.

A scenario folder holds `README.md` (the situation and what must happen), `reports/NN-<name>.json`
(applied in name order) and `expected.json`. A report file is a *recipe*, expanded here into the
wire format and passed through the collector's validating decoder (`cmdb.report.decode_report`),
so a recipe the collector would reject fails here first. Recipe keys (all optional):

    source        {"kind": "agent", "id": "agent-01", "version": ...}       (these defaults)
    report_id     default "<scenario>-<NN>"
    collected_at  ISO 8601; default 2025-03-01T12:00Z + NN hours
    mode          "full" | "delta" (then base_report_id, default the id of report 01)
    extends       "NN": start from that report's recipe (not its id nor time); top-level keys
                  replace, except "machine", whose keys replace one by one
    same_report   "NN": this file is that report again, byte for byte (a resend, same report_id)
    collectors    {name: "ok" | "failed" | ... | {"status": ..., "unchanged": true}}, merged over
                  "ok" for every collector an item of the report names
    machine       one host, or `machines`: a list of them (see `expand_machine`)
    items, relations   raw wire items and relations, appended as they are
    records       record steps run before this report is reconciled (not inherited by extends):
                  {"change": {type, title, cis: ["NN:ref"], planned_start, planned_end, expected},
                   "to": [states...]}   create a change and move it along (actor "scenario")
                  {"transition": "CHG0000001", "to": "implement"}
                  {"incident": "INC0000001", "state": "resolved", "resolution": "..."}
                  {"verify_at": ISO 8601}   verify the changes whose window closed by then

Item refs in expected.json are written "NN:<item ref>" (the report, then the ref in it).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cmdb.report import Report, decode_report

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reconcile"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@dataclass(slots=True)
class ReportFile:
    number: str  # "01"
    name: str  # "01-agent-first-run"
    recipe: dict[str, Any]
    report: Report
    body: bytes


@dataclass(slots=True)
class Scenario:
    name: str
    path: Path
    readme: str
    reports: list[ReportFile]
    expected: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def discover() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir()) if FIXTURES.is_dir() else []


# -- recipe expansion ------------------------------------------------------------------------

def _item(cls: str, ref: str, identifiers: dict, attributes: dict | None = None,
          collector: str | None = None, reference: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"class": cls, "ref": ref, "identifiers": identifiers,
                            "attributes": attributes or {}}
    if collector:
        item["collector"] = collector
    if reference:
        item["reference"] = True
    return item


def _rel(from_: str, type_: str, to: str, attributes: dict | None = None) -> dict[str, Any]:
    rel: dict[str, Any] = {"from": from_, "type": type_, "to": to}
    if attributes:
        rel["attributes"] = attributes
    return rel


def expand_machine(machine: dict[str, Any], items: list, relations: list) -> None:
    """One host and what hangs off it. Keys: ref (default "computer"; other refs are prefixed
    "<ref>/"), class (Computer), identifiers, attributes, collector (hardware), os {family, ...},
    interfaces {name: {mac, ips, attributes}}, packages {name: version}, services ["tcp/22"],
    filesystems {mount: {attributes}}, connections [{from, to, port}] (references to addresses)."""
    ref = machine.get("ref", "computer")
    p = "" if ref == "computer" else f"{ref}/"
    items.append(_item(machine.get("class", "Computer"), ref, machine.get("identifiers", {}),
                       machine.get("attributes", {}), machine.get("collector", "hardware")))
    if "os" in machine:
        os_ = dict(machine["os"])
        family = os_.pop("family", "linux")
        items.append(_item("OperatingSystem", f"{p}os", {"family": family}, os_, "os"))
        relations.append(_rel(f"{p}os", "RUNS_ON", ref))
    for name, spec in machine.get("interfaces", {}).items():
        attributes = {"name": name, **spec.get("attributes", {})}
        if spec.get("mac"):
            attributes["mac"] = spec["mac"]
        items.append(_item("Interface", f"{p}if:{name}", {"name": name}, attributes, "network"))
        relations.append(_rel(ref, "HAS_INTERFACE", f"{p}if:{name}"))
        for address in spec.get("ips", []):
            items.append(_item("IPAddress", f"{p}ip:{address}", {"address": address},
                               {"address": address}, "network"))
            relations.append(_rel(f"{p}if:{name}", "HAS_IP", f"{p}ip:{address}"))
    for name, version in machine.get("packages", {}).items():
        sw, pkg = f"{p}sw:{name}", f"{p}pkg:{name}"
        items.append(_item("Software", sw, {"purl": f"pkg:deb/debian/{name}"},
                           {"name": name, "ecosystem": "deb"}, "software"))
        items.append(_item("SoftwareInstall", pkg, {"package": f"deb:{name}:amd64"},
                           {"name": name, "version": version, "arch": "amd64"}, "software"))
        relations += [_rel(pkg, "INSTALLED_ON", ref), _rel(pkg, "INSTANCE_OF", sw)]
    for name in machine.get("services", []):
        protocol, port = name.split("/")
        items.append(_item("Service", f"{p}svc:{name}", {"name": name},
                           {"protocol": protocol, "port": int(port)}, "services"))
        relations.append(_rel(f"{p}svc:{name}", "RUNS_ON", ref))
    for mount, attributes in machine.get("filesystems", {}).items():
        items.append(_item("FileSystem", f"{p}fs:{mount}", {"mount": mount},
                           {"mount": mount, **attributes}, "hardware"))
        relations.append(_rel(ref, "HAS_FILESYSTEM", f"{p}fs:{mount}"))
    for conn in machine.get("connections", []):
        remote = f"{p}remote:{conn['to']}"
        if all(i["ref"] != remote for i in items):
            items.append(_item("IPAddress", remote, {"address": conn["to"]}, None, "connections",
                               reference=True))
        from_ = conn.get("from", ref)
        relations.append(_rel(from_ if from_ == ref else f"{p}{from_}", "DEPENDS_ON", remote,
                              {"remote_port": conn["port"]}))


def _merged(base: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy({k: v for k, v in base.items()
                         if k not in ("report_id", "collected_at", "extends", "records")})
    for key, value in recipe.items():
        if key == "machine" and isinstance(out.get("machine"), dict):
            out["machine"] = {**out["machine"], **copy.deepcopy(value)}
        elif key not in ("extends", "records"):
            out[key] = copy.deepcopy(value)
    return out


def expand_report(recipe: dict[str, Any], scenario: str, number: str, first_id: str) -> dict[str, Any]:
    """A recipe as the wire dict (not validated yet)."""
    items: list[dict] = []
    relations: list[dict] = []
    machines = recipe.get("machines") or ([recipe["machine"]] if "machine" in recipe else [])
    for machine in machines:
        expand_machine(machine, items, relations)
    items += recipe.get("items", [])
    relations += recipe.get("relations", [])
    collectors: dict[str, Any] = {i["collector"]: {"status": "ok"} for i in items if i.get("collector")}
    for name, status in recipe.get("collectors", {}).items():
        collectors[name] = {"status": status} if isinstance(status, str) else status
    collected_at = recipe.get("collected_at") or (T0 + timedelta(hours=int(number))).isoformat()
    wire: dict[str, Any] = {
        "schema": "fleetgraph.report/1",
        "report_id": recipe.get("report_id", f"{scenario}-{number}"),
        "source": {"kind": "agent", "id": "agent-01", **recipe.get("source", {})},
        "collected_at": collected_at,
        "mode": recipe.get("mode", "full"),
        "collectors": collectors,
        "items": items,
        "relations": relations,
    }
    if wire["mode"] == "delta":
        wire["base_report_id"] = recipe.get("base_report_id", first_id)
    return wire


def load(path: Path) -> Scenario:
    files = sorted((path / "reports").glob("*.json"))
    recipes: dict[str, dict] = {}
    bodies: dict[str, bytes] = {}
    reports: list[ReportFile] = []
    first_id = f"{path.name}-{files[0].name[:2]}" if files else ""
    for file in files:
        number = file.name.split("-", 1)[0]
        recipe = json.loads(file.read_text())
        if "same_report" in recipe:
            body = bodies[recipe["same_report"]]
            recipe = {**recipes[recipe["same_report"]], "records": recipe.get("records", [])}
        else:
            if "extends" in recipe:
                recipe = {**_merged(recipes[recipe["extends"]], recipe), "records": recipe.get("records", [])}
            body = json.dumps(expand_report(recipe, path.name, number, first_id)).encode()
        try:
            report = decode_report(body)
        except ValueError as exc:
            raise AssertionError(f"scenario {path.name}, report {file.name}: not a valid report: {exc}") from exc
        recipes[number], bodies[number] = recipe, body
        reports.append(ReportFile(number, file.stem, recipe, report, body))
    return Scenario(path.name, path, (path / "README.md").read_text(), reports,
                    json.loads((path / "expected.json").read_text()))
