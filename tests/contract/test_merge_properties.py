"""Properties of merge, split and undo over generated machines (hypothesis), through the real
reconcile engine on every backend:

- merging two CIs and undoing the merge gives back exactly the state before (CIs, identifiers,
  attributes and observations, relations, staleness records and stamps, shared identifiers; and on
  SQLite every row of those tables), whatever the two CIs hold: packages, interfaces and disks in
  common or not, attributes in conflict or not, the same source or two, retired dependents;
- after a merge, the next reports of both sources reconcile into the survivor: no new CI, no
  conflict, no two active dependents of one kind and key on it;
- splitting identifiers off a CI and undoing the split gives back the state before (the new CI
  stays in the store, retired and merged into the original).

The identity properties reconcile without the fast path (see test_merge_then_undo_is_the_identity);
the reporting property runs with the engine's default.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contract.conftest import BACKENDS
from tests.contract.merge_views import raw_tables, resend, snapshot, snapshot_diff, with_business_service
from tests.unit.reconcile.reports import machine_report

# FLEETGRAPH_PROPERTY_EXAMPLES=500 for a longer hunt.
SETTINGS = settings(
    max_examples=int(os.environ.get("FLEETGRAPH_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SOURCES = [
    ("agent", "agent-01"),
    ("agent", "agent-02"),
    ("ssh", "ssh-01"),
    ("ocs", "ocs-01"),
    ("fusion", "fusion-01"),
]
PACKAGES = ["bash", "curl", "nginx", "openssl", "vim"]
# Each machine draws its identifiers from its own family, so that reconcile keeps them apart.
IDENTIFIERS = [
    [
        {"serial": "SN-X1", "agent_id": "agent-x"},
        {"system_uuid": "4c4c4544-0042-3510-8052-b4c04f4d3701"},
        {"fqdn": "x.example.com", "mac": ["00:1a:2b:3c:4d:01"]},
    ],
    [
        {"serial": "SN-Y2"},
        {"system_uuid": "4c4c4544-0042-3510-8052-b4c04f4d3702", "hostname": "y"},
        {"mac": ["00:1a:2b:3c:4d:02"], "agent_id": "agent-y"},
    ],
]


@st.composite
def machine(draw, which: int):
    """One machine's report (and maybe a later one with other packages) from a drawn source."""
    kind, source_id = draw(st.sampled_from(SOURCES))
    attributes = draw(
        st.dictionaries(
            st.sampled_from(["hostname", "location", "cpu_count", "memory_bytes"]),
            st.sampled_from(["web01", "rack 4", 8, 16]),
            max_size=4,
        )
    )
    attributes["manufacturer"] = "Dell Inc."  # a serial identifies only with its manufacturer
    interfaces = draw(
        st.dictionaries(
            st.sampled_from(["eth0", "eth1"]),
            st.lists(st.sampled_from(["10.0.0.5", "10.0.0.6"]), unique=True, max_size=2),
            max_size=2,
        )
    )
    taken: set[str] = set()
    for name in interfaces:  # an address is one item per report
        interfaces[name] = [a for a in interfaces[name] if not (a in taken or taken.add(a))]
    packages = draw(
        st.dictionaries(st.sampled_from(PACKAGES), st.sampled_from(["1.0-1", "1.1-1"]), max_size=4)
    )
    disks = tuple(draw(st.lists(st.sampled_from(["sda", "sdb"]), unique=True, max_size=2)))
    report = machine_report(
        identifiers=draw(st.sampled_from(IDENTIFIERS[which])),
        attributes=attributes,
        interfaces=interfaces,
        packages=packages,
        disks=disks,
        source_kind=kind,
        source_id=source_id,
    )
    if which == 1 and draw(st.booleans()):
        report = with_business_service(report)
    later = None
    if draw(st.booleans()):  # a later complete run: what it no longer states retires
        kept = draw(
            st.dictionaries(st.sampled_from(PACKAGES), st.sampled_from(["1.0-1", "1.1-1"]), max_size=4)
        )
        later = machine_report(
            identifiers=report.items[0].identifiers,
            attributes=attributes,
            interfaces=interfaces,
            packages=kept,
            disks=disks,
            source_kind=kind,
            source_id=source_id,
        )
    return report, later


class Stores:
    """A fresh store of each backend per example (hypothesis runs many examples per test)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="fleetgraph-merge-")
        self._n = 0

    def each(self):
        for backend in BACKENDS:
            self._n += 1
            folder = Path(self._dir.name) / str(self._n)
            folder.mkdir()
            store = backend.open(folder)
            try:
                yield store
            finally:
                store.close()


STORES = Stores()


def _load(store, x, y, fast_path: bool | None = None) -> tuple[str, str, list]:
    ids, reports = [], []
    for report, later in (x, y):
        changes = resend(store, report, fast_path)
        ids.append(changes.ci_of_ref["computer"])
        reports.append(report)
        if later is not None:
            resend(store, later, fast_path)
            reports[-1] = later
    assert ids[0] != ids[1], "the generated machines must be two CIs"
    return ids[0], ids[1], reports


@SETTINGS
@given(x=machine(0), y=machine(1), into_first=st.booleans())
def test_merge_then_undo_is_the_identity(x, y, into_first):
    for store in STORES.each():
        # Without the reconcile fast path: a merge folds the stamps the fast path keeps on its
        # fingerprints into the values (sqlite_fingerprint.forget_fingerprints), which moves their
        # observed_at forward; the state compared here is the values'.
        first, second = _load(store, x, y, fast_path=False)[:2]
        survivor, absorbed = (first, second) if into_first else (second, first)
        before, raw = snapshot(store), raw_tables(store)
        op = store.merge_cis(survivor, absorbed, "prop")
        merged = store.get_ci(absorbed)
        assert merged.state == "retired" and merged.merged_into == survivor and merged.identifiers == []
        assert store.relationships(absorbed) == [] and merged.attributes == {}
        for dependent, target in op.dependents:
            assert store.get_ci(dependent).merged_into == target and store.get_ci(dependent).identifiers == []
        store.undo_ci_operation(op.seq, "prop")
        after = snapshot(store)
        assert after == before, snapshot_diff(before, after)
        assert raw_tables(store) == raw


@SETTINGS
@given(x=machine(0), y=machine(1), into_first=st.booleans())
def test_after_a_merge_both_machines_report_into_the_survivor(x, y, into_first):
    for store in STORES.each():
        first, second, reports = _load(store, x, y)
        survivor, absorbed = (first, second) if into_first else (second, first)
        store.merge_cis(survivor, absorbed, "prop")
        counts = store.count_cis()
        for report in reports + reports:
            changes = resend(store, report)
            assert changes.ci_of_ref["computer"] == survivor
            assert changes.created == [] and changes.conflicts == []
        assert {k: v for k, v in store.count_cis().items()} == counts
        keys = [(c.ci_class, i.kind, i.value) for c in store.list_cis(limit=100_000) for i in c.identifiers]
        assert len(keys) == len(set(keys))


@st.composite
def golden_image_pair(draw):
    """Two VMs cloned from one image that kept the agent id: reconcile took them for one machine
    (the agent id is the only key they share, each reports its own MAC and hostname)."""
    reports = []
    for n in (1, 2):
        packages = draw(
            st.dictionaries(st.sampled_from(PACKAGES), st.sampled_from(["1.0-1", "1.1-1"]), max_size=4)
        )
        reports.append(
            machine_report(
                identifiers={
                    "agent_id": "golden-0001",
                    "mac": [f"00:1a:2b:3c:4e:0{n}"],
                    "hostname": f"vm{n}",
                },
                attributes={"hostname": f"vm{n}"},
                packages=packages,
                interfaces=draw(st.sampled_from([{}, {"eth0": [f"10.0.0.{n}"]}])),
                disks=(),
                source_id=f"agent-vm{n}",
            )
        )
    return reports, draw(st.sampled_from([["mac"], ["mac", "hostname"], ["hostname"]]))


@SETTINGS
@given(pair=golden_image_pair(), explicit_sources=st.booleans())
def test_split_then_undo_is_the_identity(pair, explicit_sources):
    reports, kinds = pair
    for store in STORES.each():
        hosts = {resend(store, r, fast_path=False).ci_of_ref["computer"] for r in reports}
        assert len(hosts) == 1, "the clones must have been taken for one machine"
        host = hosts.pop()
        wanted = [
            (i.kind, i.value)
            for i in store.get_ci(host).identifiers
            if i.kind in kinds and i.value in ("00:1a:2b:3c:4e:02", "vm2")
        ]
        before, raw = snapshot(store), raw_tables(store)
        sources = [("agent", "agent-vm2")] if explicit_sources else None
        op = store.split_ci(host, wanted, "prop", sources=sources)
        new = store.get_ci(op.other_ci)
        assert new.ci_class == "Computer" and sorted((i.kind, i.value) for i in new.identifiers) == sorted(
            wanted
        )
        store.undo_ci_operation(op.seq, "prop")
        leave_out = frozenset({op.other_ci})
        after = snapshot(store, leave_out)
        assert after == before, snapshot_diff(before, after)
        assert raw_tables(store, leave_out) == raw
        assert store.get_ci(op.other_ci).merged_into == host
