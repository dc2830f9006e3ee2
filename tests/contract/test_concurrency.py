"""The collector reads from a thread pool while the reconcile thread applies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from cmdb.changes import AttributeChange, ChangeSet, IdentifierClaim, NewCI, RelationChange
from tests.contract.fleet import at, provenance

ROUNDS = 40
READERS = 4


def test_readers_and_a_writer_at_once(store, fleet):
    done = threading.Event()
    errors: list[BaseException] = []
    reads = [0] * READERS

    def read(n: int) -> None:
        seen_cis = 0
        try:
            while not done.is_set() or reads[n] == 0:
                count = sum(store.count_cis().values())
                assert count >= seen_cis  # committed state only moves forward
                seen_cis = count
                listed = store.list_cis("Service", limit=1000)
                attrs = store.current_attributes([c.ci_id for c in listed])
                for ci in listed:  # a snapshot: a listed CI comes with all its attributes
                    assert ci.attributes.keys() == attrs[ci.ci_id].keys()
                    assert ci.ci_id == fleet.service or ci.attributes.keys() == {"port", "round"}
                store.resolve_identifiers("Service", "name", [f"{fleet.host}/svc-{k}" for k in range(ROUNDS)])
                store.get_ci(fleet.host)
                store.history(fleet.host)
                store.relationships(fleet.host)
                store.graph()
                store.pending_reports()
                reads[n] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(READERS)]
    for t in threads:
        t.start()
    try:
        for k in range(ROUNDS):
            svc = f"{k:032x}"
            put = store.put_report(f"report-svc-{k:04d}", "agent", "agent-web-01", at(k), b"{}")
            store.apply(ChangeSet(provenance(k + 1, f"report-svc-{k:04d}"), created=[NewCI(svc, "Service")],
                                  identifiers=[IdentifierClaim(svc, "Service", "name", f"{fleet.host}/svc-{k}")],
                                  attributes=[AttributeChange(svc, "port", None, 8000 + k),
                                              AttributeChange(svc, "round", None, k)],
                                  relations=[RelationChange("RUNS_ON", svc, fleet.host)],
                                  seen=[svc, fleet.host]), report_seq=put.seq)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert all(reads)
    assert store.count_cis()["Service"] == ROUNDS + 1
    assert store.count_reports("reconciled") == ROUNDS


def test_puts_from_a_thread_pool_store_each_report_once(store):
    ids = [f"report-{n % 25:04d}" for n in range(200)]  # every id put eight times, concurrently
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda rid: (rid, store.put_report(rid, "agent", "a", at(0), rid.encode())), ids))
    created = [rid for rid, put in results if put.created]
    assert sorted(created) == sorted(set(ids))
    seqs = {}
    for rid, put in results:
        assert seqs.setdefault(rid, put.seq) == put.seq
    assert store.count_reports() == 25
