"""Schemathesis against a real collector process on loopback, with an admin token: every operation
of /api/v1/openapi.json, valid and invalid inputs (both generation modes), must never answer 5xx,
and every answer must match the document (status, content type, headers, JSON schema).

Rate limits are off here (the fuzzer sends thousands of requests); they have their own tests.
The OCS/Fusion endpoint takes zlib-compressed XML: the serializer below compresses what
schemathesis generates for it.
"""

from __future__ import annotations

import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.lab import Collector

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 60


@schemathesis.serializer("application/x-compress")
def _zlib(_ctx, value) -> bytes:
    data = value if isinstance(value, (bytes, bytearray)) else str(value).encode()
    return zlib.compress(bytes(data))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    c = Collector(tmp_path_factory.mktemp("schemathesis") / "cmdb.sqlite",
                  ("--rate-limit-token", "0", "--rate-limit-anonymous", "0", "--rate-limit-source", "0"))
    c.start()
    try:
        yield c, c.token("admin", "schemathesis-admin")
    finally:
        code = c.stop()
        log = "".join(c.log)
        where = max(log.find("Traceback"), log.find("unhandled error"))
        assert where < 0, f"the collector logged an error while fuzzed:\n{log[max(0, where - 1000):where + 3000]}"
        assert code == 0, log[-3000:]


def _fuzz(strategy, call):
    from hypothesis import given

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        call(case)

    return run


def test_every_operation_conforms_and_never_fails(live):
    """schemathesis.pytest.from_fixture does not run under pytest 9 (it sets Function._nodeid), so
    the operations are driven here through the Python API: one hypothesis run per operation and
    generation mode, every failure collected, then reported together."""
    collector, token = live
    api = schemathesis.openapi.from_url(collector.url + "/api/v1/openapi.json")
    session = requests.Session()
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 16
    def _call(case, label: str) -> None:
        calls[label] = calls.get(label, 0) + 1
        case.call_and_validate(session=session, headers={"Authorization": f"Bearer {token}"},
                               checks=CHECKS, timeout=30)

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            try:
                _fuzz(operation.as_strategy(mode), lambda case, label=label: _call(case, label))()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, label  # no input to get wrong (GET /healthz)
            except BaseException as exc:  # FailureGroup is an exception group: keep the first report
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failures.setdefault(label, str(exc)[:3000])
    assert not failures, ("\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
                          + "\n\n== the collector's log, last lines\n" + "".join(collector.log)[-4000:])
    assert all(calls.get(f"{op.method.upper()} {op.path}") for op in operations)
