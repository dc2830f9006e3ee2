"""Hypothesis over the native report schema (issue 6 fuzz): POST /api/v1/reports on the real app and
store with generated reports (valid ones, and valid ones with one field replaced by junk), random
JSON and random bytes, gzipped or not. Never a 5xx; a refused report changes nothing in the store;
an accepted one is stored as it was sent and decodes as a valid report."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmdb.report import decode_report
from tests.unit.collector.legacy.conftest import db_path, snapshot, store, tokens  # noqa: F401
from tests.unit.collector.legacy.test_fuzz import SyncCollector

PATH = "/api/v1/reports"
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

_name = st.from_regex(r"\A[a-z][a-z0-9_]{0,12}\Z")
_ref = st.from_regex(r"\A[a-z][a-z0-9:/._-]{0,20}\Z")
_value = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                   st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3))
_junk = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=30), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), st.just("\u0000"),
                  st.just("x" * 5000), st.just(10**40))


@st.composite
def reports(draw: Any) -> dict[str, Any]:
    refs = draw(st.lists(_ref, min_size=1, max_size=6, unique=True))
    items = [{"class": draw(st.sampled_from(["Computer", "OperatingSystem", "Interface", "SoftwareInstall"])),
              "ref": ref,
              "identifiers": draw(st.dictionaries(st.sampled_from(["serial", "hostname", "family", "name",
                                                                   "package", "mac"]),
                                                  st.text(min_size=1, max_size=20), max_size=2)),
              "attributes": draw(st.dictionaries(_name, _value, max_size=4))} for ref in refs]
    relations = [{"from": draw(st.sampled_from(refs)), "type": draw(st.sampled_from(["RUNS_ON", "HAS_INTERFACE",
                                                                                      "INSTALLED_ON", "NOPE"])),
                  "to": draw(st.sampled_from(refs))} for _ in range(draw(st.integers(0, 3)))]
    return {"schema": "fleetgraph.report/1",
            "report_id": draw(st.from_regex(r"\Afuzz-[a-z0-9]{8,20}\Z")),
            "source": {"kind": draw(st.sampled_from(["agent", "snmp", "toaster"])),
                       "id": draw(st.from_regex(r"\A[a-z][a-z0-9-]{0,15}\Z"))},
            "collected_at": draw(st.sampled_from(["2026-11-21T10:00:00Z", "2026-11-21T10:00:00", "yesterday"])),
            "mode": draw(st.sampled_from(["full", "full", "delta"])),
            "collectors": {"hardware": {"status": draw(st.sampled_from(["ok", "failed", "maybe"]))}},
            "items": items, "relations": relations}


def _mutate(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    doc = draw(reports())
    paths = [["schema"], ["report_id"], ["source", "kind"], ["source", "id"], ["collected_at"], ["items"],
             ["items", 0, "class"], ["items", 0, "ref"], ["items", 0, "identifiers"], ["items", 0, "attributes"],
             ["relations"], ["collectors"], ["mode"]]
    return _mutate(doc, draw(st.sampled_from(paths)), draw(_junk))


@pytest.fixture
def app(store, db_path, tokens) -> Iterator[tuple[SyncCollector, dict[str, str]]]:  # noqa: F811
    sync = SyncCollector(store, db_path)
    yield sync, tokens
    sync.close()


def _post(app: SyncCollector, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        resp = await app.client.post(PATH, data=body, headers=headers)
        return resp.status, await resp.read()
    return app.loop.run_until_complete(go())


def check(app: SyncCollector, token: str, body: bytes, gzipped: bool) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    before = snapshot(app.store)
    status, answer = _post(app, body, headers)
    event(f"status {status}")
    assert status < 500, f"{status}: {answer[:300]!r}"
    assert json.loads(answer)  # every answer, refusals too, is JSON that says why
    if status not in (200, 202):
        assert snapshot(app.store) == before, f"a refused report ({status}) changed the store"
    for stored in app.store.pending_reports(1000):
        decode_report(stored.body)


@FUZZ
@given(doc=st.one_of(reports(), mutated()), gzipped=st.booleans())
def test_generated_and_mutated_reports(app, doc, gzipped):
    sync, creds = app
    check(sync, creds["agent"], json.dumps(doc).encode(), gzipped)


@FUZZ
@given(body=st.one_of(st.binary(max_size=2000), st.recursive(st.none() | st.booleans() | st.integers()
                                                                 | st.text(max_size=20),
                                                                 lambda c: st.lists(c, max_size=4)
                                                                 | st.dictionaries(st.text(max_size=8), c, max_size=4),
                                                                 max_leaves=20).map(lambda v: json.dumps(v).encode())),
       gzipped=st.booleans())
def test_random_bodies(app, body, gzipped):
    sync, creds = app
    check(sync, creds["agent"], body, gzipped)
