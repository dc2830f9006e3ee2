"""Shapes for the merge and split contract tests: one machine seen as two CIs by two sources (what a
merge fixes), two machines seen as one (what a split fixes), and a snapshot of everything the
store says about its CIs, to compare before an operation and after its undo.

The reports go through the real reconcile engine (reconcile.engine.reconcile_report), so the
store holds what reconcile really writes: scoped dependents, observations, staleness scopes.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass
from datetime import timedelta

import msgspec

from cmdb.report import CollectorStatus, Item, Relation, Report, decode_report, encode_report
from cmdb.store import Store
from reconcile.engine import reconcile_report
from tests.unit.reconcile.reports import again, machine_report

UUID_B = "4c4c4544-0042-3510-8052-b4c04f4d3799"


def with_business_service(report: Report, name: str = "Shop") -> Report:
    """The report plus a business service that depends on its computer (a non-dependent CI with a
    relation to the host, which a merge must re-point)."""
    items = [
        *report.items,
        Item(
            class_="BusinessService",
            ref="bs",
            identifiers={"name": name},
            attributes={"name": name},
            collector="services",
        ),
    ]
    relations = [*report.relations, Relation(from_="bs", type="DEPENDS_ON", to="computer")]
    collectors = {**report.collectors, "services": CollectorStatus(status="ok")}
    return decode_report(
        encode_report(
            msgspec.structs.replace(report, items=items, relations=relations, collectors=collectors)
        )
    )


def agent_view(**changes) -> Report:
    """The machine as its agent reports it: serial, agent id, hostname web01."""
    args = dict(
        identifiers={
            "serial": "SN-A1",
            "agent_id": "agent-01",
            "hostname": "web01",
            "mac": ["00:1a:2b:3c:4d:5e"],
        },
        packages={"bash": "5.2.15-2", "curl": "7.88.1-10", "openssl": "3.0.11-1"},
        interfaces={"eth0": ["10.0.0.5"]},
        source_id="agent-01",
    )
    args.update(changes)
    return machine_report(**args)


def ssh_view(**changes) -> Report:
    """The same machine as an SSH scan sees it, with none of the agent's identifiers: a system UUID
    and an FQDN; some packages in common, one the agent did not report, another interface."""
    args = dict(
        identifiers={"system_uuid": UUID_B, "fqdn": "web01.example.com"},
        attributes={"hostname": "web01-ssh", "cpu_count": 16, "location": "rack 4"},
        packages={"bash": "5.2.15-2", "nginx": "1.22.1-9"},
        interfaces={"eth0": ["10.0.0.5"], "eth1": ["192.168.1.5"]},
        source_id="ssh-01",
        source_kind="ssh",
    )
    args.update(changes)
    return machine_report(**args)


@dataclass
class TwoViews:
    """One machine, two CIs: `agent` (the agent's) and `ssh` (the scanner's), and their reports."""

    agent: str
    ssh: str
    business: str
    agent_report: Report
    ssh_report: Report


def two_views(store: Store) -> TwoViews:
    agent_report, ssh_report = agent_view(), with_business_service(ssh_view())
    a = reconcile_report(store, agent_report)
    b = reconcile_report(store, ssh_report)
    return TwoViews(
        a.ci_of_ref["computer"], b.ci_of_ref["computer"], b.ci_of_ref["bs"], agent_report, ssh_report
    )


_later = itertools.count(1)


def resend(store: Store, report: Report, fast_path: bool | None = None, **changes):
    """The report's source reports again (a new report id), later than any report resent before.
    fast_path: as reconcile_report's (None: the engine's default)."""
    changes.setdefault("collected_at", report.collected_at + timedelta(days=1, hours=next(_later)))
    return reconcile_report(store, again(report, **changes), fast_path=fast_path)


def cis_by_class(store: Store) -> dict[str, int]:
    return store.count_cis("active")


def installs_on(store: Store, host: str) -> dict[str, str]:
    """{package name: install CI id} of the active installs of a host."""
    out = {}
    for rel in store.relationships(host, "in", "INSTALLED_ON"):
        ci = store.get_ci(rel.from_ci)
        assert ci is not None and ci.state == "active"
        assert ci.attributes["name"].value not in out, (
            f"two installs of {ci.attributes['name'].value} on {host}"
        )
        out[ci.attributes["name"].value] = ci.ci_id
    return out


def snapshot(store: Store, leave_out: frozenset[str] = frozenset()) -> dict:
    """Everything the contract says about the CIs (but history, which only grows), CI by CI:
    the CI with attributes, identifiers and merged_into, its observations, its active relations,
    the staleness records about it and the run stamps of their scopes, and the active sharers of
    its identifier values. `leave_out`: CIs to leave out (a split's new CI, still in the store
    after the undo)."""
    cis = [c for c in store.list_cis(state=None, limit=100_000) if c.ci_id not in leave_out]
    ids = [c.ci_id for c in cis]
    records = sorted(
        (
            (r.scope.source_kind, r.scope.source_id, r.scope.collector, r.scope.subject),
            r.ci_id,
            r.rel_type,
            r.to_ci,
            r.missed,
            r.last_seen_run,
        )
        for r in store.seen_records(ids)
    )
    scopes = sorted({r[0] for r in records})
    stamps = {}
    for kind, source_id, collector, subject in scopes:
        state = store.scope_states(kind, source_id, [(collector, subject)])[(collector, subject)]
        stamps[(kind, source_id, collector, subject)] = state.last_run
    values: dict[tuple[str, str], set[str]] = {}
    for c in cis:
        for i in c.identifiers:
            values.setdefault((c.ci_class, i.kind), set()).add(i.value)
    shared = {key: store.shared_identifiers(*key, sorted(vals)) for key, vals in sorted(values.items())}
    return {
        "cis": {c.ci_id: c for c in cis},
        "observations": {i: store.observations(i) for i in ids},
        "relations": sorted(
            (r.type, r.from_ci, r.to_ci, r.state, r.first_seen, r.last_seen, r.provenance)
            for r in store.relationships_touching(ids)
        ),
        "relation_counts": store.count_relationships(None),
        "records": records,
        "stamps": stamps,
        "shared": shared,
    }


def raw_tables(store: Store, leave_out: frozenset[str] = frozenset()) -> dict[str, list] | None:
    """For SQLite, every row of the CI tables but history and the operation log (scope ids, which
    no reader sees, replaced by the scope's key); None for another backend."""
    path = getattr(store, "path", None)
    if path is None or not str(path).endswith(".sqlite"):
        return None
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in (
            "ci",
            "identifier",
            "attribute",
            "observation",
            "relationship",
            "shared_identifier",
            "drift",
        ):
            out[table] = sorted(
                r
                for r in conn.execute(f"SELECT * FROM {table}")
                if not leave_out & {v for v in r if isinstance(v, str)}
            )
        out["scope"] = sorted(
            conn.execute("SELECT source_kind, source_id, collector, subject, last_run FROM scope")
        )
        out["seen_by"] = sorted(
            conn.execute(
                "SELECT s.source_kind, s.source_id, s.collector, s.subject, b.ci_id, b.rel_type, b.to_ci, "
                "b.last_seen_run, b.missed FROM seen_by b JOIN scope s ON s.id = b.scope_id"
            )
        )
        return out
    finally:
        conn.close()


def history_length(store: Store) -> int:
    return sum(
        len(store.history(c.ci_id, limit=1_000_000)) for c in store.list_cis(state=None, limit=100_000)
    )


def snapshot_diff(before: dict, after: dict) -> str:
    """What differs between two snapshots, CI by CI, for an assertion message."""
    lines = []
    for key in before:
        if before[key] == after.get(key):
            continue
        if isinstance(before[key], dict):
            for item in sorted(set(before[key]) | set(after.get(key, {})), key=str):
                was, now = before[key].get(item), after.get(key, {}).get(item)
                if was != now:
                    lines.append(f"{key} {item}:\n  before {was}\n  after  {now}")
        else:
            was, now = set(map(repr, before[key])), set(map(repr, after.get(key, [])))
            lines += [f"{key} only before: {r}" for r in sorted(was - now)]
            lines += [f"{key} only after: {r}" for r in sorted(now - was)]
    return "\n".join(lines)
