"""The fast path is an optimisation, never a behaviour change (reconcile.fastpath): random sequences
of scenario-like reports reconciled into two real SQLite stores, one with the fast path and one
forced onto the full path, leave the same state after every report — CIs (class, state,
identifiers), attribute values with their provenance (the fast path's stamps folded in, as the
engine reads them), observations, relations, last-seen stamps, drift events and records; and
every change set says the same (created, attribute changes, relations, retirements, drift).

CI ids are random, so the two stores are compared through the id mapping their change sets give
(the CI each item ref resolved to), which must itself stay one to one.

The sequences mix what breaks a fingerprint's premise: an attribute changed, a package upgraded,
added or removed, an interface gone, a collector failed, a delta report with unchanged sections, a
late report, the same report again, a second source (SSH) stating attributes of the same machine
and packages on it (precedence, observations), a reinstalled agent (new agent id), a changed
precedence order, scoped staleness with one or two missed runs before retirement, and a file
system whose free space is a measurement that changes every run.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmdb.backends.sqlite import SQLiteStore
from cmdb.report import CollectorStatus, Item, Relation, Report, Source, decode_report, encode_report
from reconcile.engine import reconcile_report
from reconcile.fastpath import fold_confirmations
from reconcile.precedence import DEFAULT_PRECEDENCE, PrecedenceTable

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=timezone.utc)
PACKAGES = ("bash", "curl", "nginx", "openssl", "vim")
SSH_FIRST = PrecedenceTable(("ssh", "agent", "ocs", "fusion", "snmp", "nmap"))

# FLEETGRAPH_EQUIVALENCE_EXAMPLES=1000 for a longer search than the suite's.
EQUIVALENCE_SETTINGS = settings(max_examples=int(os.environ.get("FLEETGRAPH_EQUIVALENCE_EXAMPLES", "60")),
                                deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large])


# -- reports ---------------------------------------------------------------------------------

def machine_items(m: dict[str, Any], source_kind: str, agent_id: str) -> tuple[list[Item], list[Relation]]:
    """One machine as a source of that kind states it (an SSH scan states less, and a kernel)."""
    identifiers: dict[str, Any] = {"serial": m["serial"], "hostname": m["hostname"], "mac": [m["mac"]]}
    attributes: dict[str, Any] = {"manufacturer": "Dell Inc.", "hostname": m["hostname"],
                                  "memory_bytes": m["memory"]}
    if source_kind == "agent":
        identifiers["agent_id"] = agent_id
        attributes["model"] = m["model"]
    else:
        attributes["kernel"] = m["kernel"]
    items = [Item(class_="Computer", ref="computer", identifiers=identifiers, attributes=attributes,
                  collector="hardware")]
    relations: list[Relation] = []
    if source_kind == "agent":
        items.append(Item(class_="OperatingSystem", ref="os", identifiers={"family": "linux"},
                          attributes={"name": "Debian GNU/Linux", "version": m["os_version"]}, collector="os"))
        relations.append(Relation(from_="os", type="RUNS_ON", to="computer"))
        for mount, free in m["filesystems"].items():
            items.append(Item(class_="FileSystem", ref=f"fs:{mount}", identifiers={"mount": mount},
                              attributes={"mount": mount, "size_bytes": 1000, "free_bytes": free}, collector="hardware"))
            relations.append(Relation(from_="computer", type="HAS_FILESYSTEM", to=f"fs:{mount}"))
        for name, addresses in m["interfaces"].items():
            items.append(Item(class_="Interface", ref=f"if:{name}", identifiers={"name": name},
                              attributes={"name": name, "mtu": 1500}, collector="network"))
            relations.append(Relation(from_="computer", type="HAS_INTERFACE", to=f"if:{name}"))
            for address in addresses:
                items.append(Item(class_="IPAddress", ref=f"ip:{address}", identifiers={"address": address},
                                  attributes={"address": address}, collector="network"))
                relations.append(Relation(from_=f"if:{name}", type="HAS_IP", to=f"ip:{address}"))
        for address in m["connects_to"]:  # an outbound connection: a reference to another host's address
            items.append(Item(class_="IPAddress", ref=f"remote:{address}", identifiers={"address": address},
                              attributes={}, collector="connections", reference=True))
            relations.append(Relation(from_="computer", type="DEPENDS_ON", to=f"remote:{address}",
                                      attributes={"remote_port": 443}))
    packages = m["packages"] if source_kind == "agent" else dict(list(m["packages"].items())[:2])
    for name, version in packages.items():
        items.append(Item(class_="Software", ref=f"sw:{name}", identifiers={"purl": f"pkg:deb/debian/{name}"},
                          attributes={"name": name}, collector="software"))
        items.append(Item(class_="SoftwareInstall", ref=f"pkg:{name}", identifiers={"package": f"deb:{name}:amd64"},
                          attributes={"name": name, "version": version}, collector="software"))
        relations += [Relation(from_=f"pkg:{name}", type="INSTALLED_ON", to="computer"),
                      Relation(from_=f"pkg:{name}", type="INSTANCE_OF", to=f"sw:{name}")]
    return items, relations


def build(m: dict[str, Any], number: int, source_kind: str, source_id: str, agent_id: str, when: datetime,
          failed: frozenset[str] = frozenset(), delta_of: dict[str, str] | None = None) -> Report:
    """A full report, or with `delta_of` {collector: "changed" | "unchanged"} an agent delta that
    carries the Computer and the changed sections only."""
    items, relations = machine_items(m, source_kind, agent_id)
    collectors = {i.collector: CollectorStatus(status="failed" if i.collector in failed else "ok")
                  for i in items if i.collector}
    mode, base = "full", None
    if delta_of is not None:
        mode, base = "delta", "base-report-0001"
        carried = {c for c, how in delta_of.items() if how == "changed"} | {"hardware"}
        refs = {i.ref for i in items if i.collector in carried}
        items = [i for i in items if i.ref in refs]
        relations = [r for r in relations if r.from_ in refs and r.to in refs]
        collectors = {c: CollectorStatus(status="ok", unchanged=c not in carried) for c in collectors}
    report = Report(schema="fleetgraph.report/1", report_id=f"report-{number:05d}",
                    source=Source(kind=source_kind, id=source_id, version="1"), collected_at=when, mode=mode,
                    base_report_id=base, collectors=collectors, items=items, relations=relations)
    return decode_report(encode_report(report))


def new_machine(n: int) -> dict[str, Any]:
    return {"serial": f"SN-{n:04d}", "hostname": f"host-{n}", "mac": f"00:1a:2b:3c:4d:{n:02x}",
            "memory": 8192, "model": "R640", "kernel": "6.1.0", "os_version": "12",
            "filesystems": {"/": 500}, "interfaces": {"eth0": [f"10.0.{n}.5"]},
            "packages": {"bash": "5.2-1", "curl": "7.88-1", "nginx": "1.22-1"},
            "connects_to": [f"10.0.{1 - n}.5"]}


STEP = st.fixed_dictionaries({
    "machine": st.integers(0, 1),
    "source": st.sampled_from(["agent", "agent", "agent", "ssh", "reinstalled"]),
    "change": st.sampled_from(["none", "none", "memory", "upgrade", "install", "remove", "interface",
                               "kernel", "model", "os", "connection"]),
    "failed": st.sampled_from([frozenset(), frozenset(), frozenset({"software"}), frozenset({"network"})]),
    "delta": st.sampled_from([None, None, None, "delta"]),
    "timing": st.sampled_from(["later", "later", "later", "late", "again"]),
    "precedence": st.sampled_from(["default", "default", "default", "ssh_first"]),
})


def mutate(m: dict[str, Any], change: str, step: int) -> str | None:
    """Apply a change to the machine; the collector whose section it changes."""
    if change == "memory":
        m["memory"] = 8192 if m["memory"] != 8192 else 16384
        return "hardware"
    if change == "upgrade" and m["packages"]:
        name = sorted(m["packages"])[step % len(m["packages"])]
        m["packages"][name] = f"{step}.0-1"
        return "software"
    if change == "install":
        missing = [p for p in PACKAGES if p not in m["packages"]]
        if missing:
            m["packages"][missing[0]] = "1.0-1"
        return "software"
    if change == "remove" and m["packages"]:
        m["packages"].pop(sorted(m["packages"])[0])
        return "software"
    if change == "interface":
        m["interfaces"] = {"eth0": m["interfaces"]["eth0"]} if "eth1" in m["interfaces"] else {
            **m["interfaces"], "eth1": [f"192.168.{step % 200}.7"]}
        return "network"
    if change == "connection":
        m["connects_to"] = [] if m["connects_to"] else [f"10.0.{step % 2}.5"]
        return "connections"
    if change == "kernel":
        m["kernel"] = f"6.1.{step}"
    if change == "model":
        m["model"] = "R650" if m["model"] == "R640" else "R640"
        return "hardware"
    if change == "os":
        m["os_version"] = "13" if m["os_version"] == "12" else "12"
        return "os"
    return None


def scenario_reports(steps: list[dict[str, Any]]) -> list[tuple[Report, PrecedenceTable]]:
    machines = [new_machine(0), new_machine(1)]
    out: list[tuple[Report, PrecedenceTable]] = []
    last: dict[str, Report] = {}
    for i, step in enumerate(steps):
        m = machines[step["machine"]]
        precedence = SSH_FIRST if step["precedence"] == "ssh_first" else DEFAULT_PRECEDENCE
        kind = "ssh" if step["source"] == "ssh" else "agent"
        source_id = {"agent": f"agent-m{step['machine']}", "ssh": "ssh-scan",
                     "reinstalled": f"agent-m{step['machine']}-new"}[step["source"]]
        if step["timing"] == "again" and source_id in last:
            out.append((last[source_id], precedence))  # the same report again, as a redelivery
            continue
        changed = mutate(m, step["change"], i)
        m["filesystems"] = {"/": 500 + i}  # a reading: different every run
        when = T0 + timedelta(hours=i)
        if step["timing"] == "late" and source_id in last:
            when = last[source_id].collected_at - timedelta(minutes=30)
        delta_of = None
        if step["delta"] and kind == "agent":
            delta_of = {c: ("changed" if c == changed else "unchanged")
                        for c in ("hardware", "os", "network", "software", "connections")}
        report = build(m, i, kind, source_id, source_id, when, step["failed"], delta_of)
        last[source_id] = report
        out.append((report, precedence))
    return out


# -- comparing two stores -----------------------------------------------------------------------

_HOST_PREFIX = re.compile(r"^([0-9a-f]{32})/")


class IdMap:
    """The CI of each item ref in store A and in store B, kept one to one."""

    def __init__(self) -> None:
        self.a_to_b: dict[str, str] = {}
        self.b_to_a: dict[str, str] = {}

    def learn(self, a_refs: dict[str, str], b_refs: dict[str, str]) -> None:
        assert a_refs.keys() == b_refs.keys(), (sorted(a_refs), sorted(b_refs))
        for ref, a in a_refs.items():
            b = b_refs[ref]
            assert self.a_to_b.setdefault(a, b) == b and self.b_to_a.setdefault(b, a) == a, \
                f"item {ref} resolved to different CIs in the two stores"

    def __call__(self, a: str | None) -> str | None:
        if a is None or a == "":
            return a
        match = _HOST_PREFIX.match(a)
        if match:
            return f"{self.a_to_b.get(match[1], match[1])}/{a[match.end():]}"
        return self.a_to_b.get(a, a)


def provenance(p) -> tuple:
    return (p.source_kind, p.source_id, p.report_id, p.observed_at)


def state(store, ids=lambda x: x) -> dict[str, Any]:
    """Everything the two paths must agree on, CI ids translated by `ids`."""
    cis = store.list_cis(state=None, limit=100_000)
    current = store.current_attributes([c.ci_id for c in cis])
    fold_confirmations(store, current)
    out: dict[str, Any] = {}
    for ci in cis:
        attributes = {name: (v.value, provenance(v.provenance)) for name, v in current.get(ci.ci_id, {}).items()}
        # the current values are `attributes` (with the stamps folded in); these are the others
        observations = sorted((o.name, repr(o.value), provenance(o.provenance))
                              for o in store.observations(ci.ci_id) if not o.current)
        relations = sorted((r.type, ids(r.from_ci), ids(r.to_ci), r.first_seen, r.last_seen, provenance(r.provenance))
                           for r in store.relationships(ci.ci_id, "out"))
        history = sorted((r.kind, r.name, repr(r.before), repr(ids(r.after) if r.kind == "ident.add" else r.after),
                          ids(r.related_ci), provenance(r.provenance)) for r in store.history(ci.ci_id, limit=100_000))
        out[ids(ci.ci_id)] = (ci.ci_class, ci.state, ci.first_seen, ci.last_seen,
                              sorted((i.kind, ids(i.value)) for i in ci.identifiers),
                              attributes, observations, relations, history)
    out["drift"] = sorted((ids(e.ci_id), e.attribute, repr(e.before), repr(e.after), ids(e.related_ci), e.disposition)
                          for e in store.drift_events(limit=100_000))
    conn = sqlite3.connect(store.path)
    try:  # the staleness records: what each scope saw, and how many runs have missed it
        out["seen_by"] = sorted((kind, source, collector, ids(subject), last_run, ids(ci_id), rel_type, ids(to_ci),
                                 missed, seen_run) for kind, source, collector, subject, last_run, ci_id, rel_type,
                                to_ci, missed, seen_run in conn.execute(
            "SELECT s.source_kind, s.source_id, s.collector, s.subject, s.last_run, b.ci_id, b.rel_type, b.to_ci, "
            "b.missed, b.last_seen_run FROM scope s LEFT JOIN seen_by b ON b.scope_id = s.id"))
    finally:
        conn.close()
    # (titles name the CI by its id, which differs between the stores)
    out["incidents"] = sorted((i.state, i.priority, sorted(ids(c) for c in i.cis), len(i.drift))
                              for i in store.list_incidents(limit=1000))
    return out


def change_summary(changes, ids=lambda x: x) -> dict[str, Any]:
    return {
        "created": sorted(c.ci_class for c in changes.created),
        "attributes": sorted((ids(a.ci_id), a.name, repr(a.before), repr(a.after)) for a in changes.attributes),
        "measurements": sorted((ids(a.ci_id), a.name, repr(a.after)) for a in changes.measurements),
        "relations": sorted((r.type, ids(r.from_ci), ids(r.to_ci), r.action) for r in changes.relations),
        "relations_seen": sorted((t, ids(f), ids(to)) for t, f, to in changes.relations_seen),
        "retired": sorted(ids(c) for c in changes.retired),
        "reactivated": sorted(ids(c) for c in changes.reactivated),
        "confirmed": len(changes.confirmed),
        "drift": sorted((ids(e.ci_id), e.attribute) for e in changes.drift),
        "empty": changes.is_empty,
    }


def assert_same(a: dict[str, Any], b: dict[str, Any], where: str) -> None:
    """Equal, or the first CI (or table) that differs, field by field."""
    for key in sorted(a.keys() | b.keys()):
        assert key in a and key in b, f"{where}: {key} only in the {'fast' if key in a else 'full'} store"
        if a[key] != b[key]:
            fields = ("class", "state", "first_seen", "last_seen", "identifiers", "attributes", "observations",
                      "relations", "history")
            diffs = [(name, x, y) for name, x, y in zip(fields, a[key], b[key]) if x != y] \
                if isinstance(a[key], tuple) else [(key, a[key], b[key])]
            raise AssertionError(f"{where}: {key} differs (fast, full): {diffs}")


class TwoStores:
    def __enter__(self) -> tuple[SQLiteStore, SQLiteStore]:
        self.dir = tempfile.TemporaryDirectory()
        self.fast = SQLiteStore(f"{self.dir.name}/fast.sqlite")
        self.full = SQLiteStore(f"{self.dir.name}/full.sqlite")
        return self.fast, self.full

    def __exit__(self, *exc) -> None:
        self.fast.close()
        self.full.close()
        self.dir.cleanup()


@EQUIVALENCE_SETTINGS
@given(steps=st.lists(STEP, min_size=2, max_size=9), threshold=st.sampled_from([1, 2]))
def test_the_fast_path_leaves_the_store_as_the_full_path_does(steps, threshold):
    ids = IdMap()
    with TwoStores() as (fast, full):
        for number, (report, precedence) in enumerate(scenario_reports(steps)):
            a = reconcile_report(fast, report, retire_after_missed_runs=threshold, precedence=precedence,
                                 fast_path=True)
            b = reconcile_report(full, report, retire_after_missed_runs=threshold, precedence=precedence,
                                 fast_path=False)
            ids.learn(a.ci_of_ref, b.ci_of_ref)
            event(f"fast path: {'confirms' if a.fingerprint_confirms else 'none'}, "
                  f"{'writes' if a.fingerprints else 'no writes'}, {'drops' if a.fingerprints_dropped else 'no drops'}")
            where = f"report {number} ({report.source.id}, {report.mode})"
            assert change_summary(a, ids) == change_summary(b), where
            assert_same(state(fast, ids), state(full), where)


def test_the_fast_path_is_taken_by_a_no_change_report():
    """Not vacuous: in a plain sequence the fast store really skips items (and the other never does)."""
    steps = [dict(machine=0, source="agent", change="none", failed=frozenset(), delta=None, timing="later",
                  precedence="default")] * 3
    with TwoStores() as (fast, full):
        for report, _ in scenario_reports(steps):
            a = reconcile_report(fast, report, fast_path=True)
            b = reconcile_report(full, report, fast_path=False)
        assert len(a.fingerprint_confirms) == sum(1 for i in report.items if i.class_ != "FileSystem" and not i.reference)
        assert not b.fingerprint_confirms and not b.fingerprints
        assert len(a.confirmed) == len(b.confirmed)
