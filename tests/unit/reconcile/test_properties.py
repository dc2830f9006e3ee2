"""Properties of reconcile over generated machines (hypothesis), on the real SQLite store:

- reconciling a report again (same content, new report id, later) changes nothing: an empty change
  set and no new history rows, whatever the identifiers (junk, virtual MACs, names shared with
  machines already in the store);
- the order in which reports of different sources arrive does not change the final CIs (compared by
  class and identifier set, not by id), when the sources describe distinct machines, possibly
  the same machine several times, each view carrying the machine's strong key. Sources barred from
  creating host CIs (nmap, `reconcile.rules.BARRED_FROM_CREATING`) are left out of that one: what
  they add depends, on purpose, on whether a source that may create the host came first.
"""

from __future__ import annotations

import re
import tempfile
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdb.backends.sqlite import SQLiteStore
from cmdb.report import SOURCE_KINDS
from reconcile.engine import reconcile_report
from reconcile.rules import BARRED_FROM_CREATING
from tests.unit.reconcile.reports import T0, again, machine_report
from tests.unit.reconcile.test_rules import JUNK_SERIALS, JUNK_UUIDS

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MANUFACTURERS = ["Dell Inc.", "HP", "LENOVO", "Supermicro", "System manufacturer", "To Be Filled By O.E.M."]
VIRTUAL_MACS = ["02:42:ac:11:00:02", "02:42:7f:3a:9b:01", "52:54:00:12:34:56", "00:00:00:00:00:00"]
PACKAGES = ["bash", "coreutils", "openssh-server", "curl", "nginx"]
CREATING_SOURCES = tuple(k for k in SOURCE_KINDS if not BARRED_FROM_CREATING.get(k))


def hex_of(n: int, width: int) -> str:
    return f"{n:0{width}x}"


real_uuid = st.integers(1, 2**32).map(lambda n: f"4c4c4544-{hex_of(n >> 16, 4)}-3510-8052-{hex_of(n, 12)}")
real_mac = st.integers(1, 2**16).map(lambda n: f"00:1a:2b:3c:{hex_of(n >> 8, 2)}:{hex_of(n & 0xFF, 2)}")
# Small pools, so that generated machines share names, MACs and serials with each other.
serial = st.one_of(st.sampled_from(["SN-1", "SN-2", "CZJ1020BTL", "4V2VW0J"]), st.sampled_from(JUNK_SERIALS))
uuid = st.one_of(st.sampled_from(["4c4c4544-0042-3510-8052-b4c04f4d3732", "4c4c4544-0042-3510-8052-b4c04f4d3799"]),
                 real_uuid, st.sampled_from(JUNK_UUIDS))
mac = st.one_of(st.sampled_from(["00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5f"]), real_mac, st.sampled_from(VIRTUAL_MACS))
hostname = st.sampled_from(["web01", "web02", "db01", "localhost", "kiosk"])


@st.composite
def machines(draw, agent_number: int = 0):
    """One machine's agent report: any mix of identifiers (always an agent id, as agents have)."""
    identifiers: dict = {"agent_id": f"agent-{agent_number}-{draw(st.integers(0, 3))}"}
    for kind, values in (("serial", serial), ("system_uuid", uuid), ("hostname", hostname)):
        if draw(st.booleans()):
            identifiers[kind] = draw(values)
    macs = draw(st.lists(mac, max_size=3, unique=True))
    if macs:
        identifiers["mac"] = macs
    if identifiers.get("hostname") and draw(st.booleans()):
        identifiers["fqdn"] = f"{identifiers['hostname']}.example.com"
    attributes = {"manufacturer": draw(st.sampled_from(MANUFACTURERS)), "memory_bytes": draw(st.sampled_from([8, 16]))}
    # docker0 holds 172.17.0.1 on every host; a report names an address once (refs are unique)
    names = draw(st.lists(st.sampled_from(["eth0", "eno1", "docker0"]), max_size=2, unique=True))
    interfaces = {name: ["172.17.0.1"] if name == "docker0" else
                  [f"10.{i}.0.{n}" for n in draw(st.lists(st.sampled_from([5, 6]), max_size=2, unique=True))]
                  for i, name in enumerate(names)}
    packages = draw(st.dictionaries(st.sampled_from(PACKAGES), st.sampled_from(["1.0-1", "1.1-1"]), max_size=3))
    source = draw(st.sampled_from(SOURCE_KINDS))
    return machine_report(identifiers=identifiers, attributes=attributes, interfaces=interfaces,
                          packages=packages, source_kind=source, source_id=f"{source}-{agent_number}")


def history_size(store) -> int:
    return sum(len(store.history(c.ci_id, limit=1_000_000)) for c in store.list_cis(state=None, limit=100_000))


class FreshStore:
    """A new SQLite file per example (pytest's tmp_path is per test, not per hypothesis example)."""

    def __enter__(self) -> SQLiteStore:
        self.dir = tempfile.TemporaryDirectory()
        self.store = SQLiteStore(f"{self.dir.name}/cmdb.sqlite")
        return self.store

    def __exit__(self, *exc) -> None:
        self.store.close()
        self.dir.cleanup()


@PROPERTY_SETTINGS
@given(background=st.lists(machines(0), max_size=3), report=machines(1))
def test_reconciling_a_report_again_changes_nothing(background, report):
    with FreshStore() as store:
        for other in background:
            reconcile_report(store, other)
        reconcile_report(store, report)
        rows = history_size(store)
        second = reconcile_report(store, again(report))
        assert second.is_empty, (second.summary(), [(a.name, a.before, a.after) for a in second.attributes],
                                 [c.describe() for c in second.conflicts])
        assert not second.measurements
        assert history_size(store) == rows


# -- order independence ---------------------------------------------------------------------------

@st.composite
def views(draw):
    """Reports of 2-4 sources over 1-4 distinct machines. Every view of a machine carries its strong
    key (manufacturer + serial, or its system UUID) plus any of its other identifiers, and may
    carry junk and software-made MACs that every machine shares."""
    n_machines = draw(st.integers(1, 4))
    vendors = ["Dell Inc.", "HP", "LENOVO", "Supermicro"]
    key_by_serial = [draw(st.booleans()) for _ in range(n_machines)]
    reports, described = [], set()
    for s in range(draw(st.integers(2, 4))):
        kind = draw(st.sampled_from(CREATING_SOURCES))
        seen = draw(st.lists(st.integers(0, n_machines - 1), min_size=1, max_size=n_machines, unique=True))
        described.update(seen)
        for m in seen:
            full = {"serial": f"SN-{m:04d}", "system_uuid": f"4c4c4544-0042-3510-8052-{m:012x}",
                    "mac": [f"00:1a:2b:3c:00:{m:02x}"], "hostname": f"host-{m}", "fqdn": f"host-{m}.example.com"}
            strong = "serial" if key_by_serial[m] else "system_uuid"
            kinds = {strong} | set(draw(st.lists(st.sampled_from(sorted(full)), max_size=4)))
            identifiers = {k: full[k] for k in kinds}
            if draw(st.booleans()):  # junk and shared software MACs ride along
                identifiers["mac"] = identifiers.get("mac", []) + ["02:42:ac:11:00:02"]
                identifiers.setdefault("serial", "To Be Filled By O.E.M.")
            attributes = {"manufacturer": vendors[m % len(vendors)]} if "serial" in kinds or key_by_serial[m] else {}
            interfaces = {"eth0": [f"10.0.{m}.1"]} if draw(st.booleans()) else {}
            packages = {PACKAGES[m % len(PACKAGES)]: "1.0-1"} if draw(st.booleans()) else {}
            reports.append(machine_report(identifiers=identifiers, attributes=attributes, interfaces=interfaces,
                                          packages=packages, source_kind=kind, source_id=f"{kind}-{s}-m{m}",
                                          collected_at=T0 + timedelta(minutes=len(reports))))
    return reports, len(described)


_HOST_PREFIX = re.compile(r"^([0-9a-f]{32})/")


def final_cis(store) -> set[tuple[str, frozenset]]:
    """Every active CI as (class, identifiers), a dependent's host id replaced by its host's identifiers."""
    cis = store.list_cis(limit=100_000)
    own = {c.ci_id: frozenset((i.kind, i.value) for i in c.identifiers) for c in cis}

    def portable(value: str) -> str:
        m = _HOST_PREFIX.match(value)
        return f"{sorted(own[m[1]])}/{value[m.end():]}" if m else value

    return {(c.ci_class, frozenset((i.kind, portable(i.value)) for i in c.identifiers)) for c in cis}


def reconcile_all(reports) -> set[tuple[str, frozenset]]:
    with FreshStore() as store:
        for report in reports:
            reconcile_report(store, report)
        return final_cis(store)


@PROPERTY_SETTINGS
@given(data=st.data(), generated=views())
def test_the_order_of_reports_from_different_sources_does_not_change_the_cis(data, generated):
    reports, machine_count = generated
    shuffled = data.draw(st.permutations(reports))
    in_order = reconcile_all(reports)
    assert reconcile_all(shuffled) == in_order
    assert sum(1 for cls, _ in in_order if cls == "Computer") == machine_count  # one CI per machine
