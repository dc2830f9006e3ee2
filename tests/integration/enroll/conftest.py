"""Fixtures for enrollment: the collector app fixtures of tests/integration/collector, a throwaway
PKI for HTTPS, and helpers to enroll through the API."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from cmdb.report import Source, encode_report
from tests.integration.collector.conftest import collector, db_path, store, tokens  # noqa: F401 (fixtures)
from tests.integration.collector.harness import make_report
from tests.integration.enroll.tls import ThrowawayPKI, make_pki

AGENT_A = "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01"
AGENT_B = "0c7d9a52-8f1e-4f0a-b6a2-2d8f6c0e9b02"
ENROLL = "/api/v1/enroll"
REPORTS = "/api/v1/reports"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def enrollment_token(store):  # noqa: F811 (the imported fixture)
    """Create an enrollment token in the test store: enrollment_token(name, uses=1, expires_at=None)."""
    from collector.enroll import create_enrollment_token

    def create(name: str = "batch", uses: int = 1, expires_at=None) -> str:
        return create_enrollment_token(store, name, uses, expires_at)

    return create


def enroll_body(token: str, agent_id: str = AGENT_A, hostname: str = "web-01") -> dict:
    return {"enrollment_token": token, "agent_id": agent_id, "hostname": hostname}


def report_for(source_id: str, kind: str = "agent", **kwargs) -> bytes:
    """A valid report whose source is `kind`/`source_id`."""
    report = make_report(**kwargs)
    return encode_report(msgspec.structs.replace(report, source=Source(kind=kind, id=source_id, version="0.1.0")))


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
