"""The route access table (collector.roles.ROUTE_ACCESS) covers every route of the app, exactly."""

from __future__ import annotations

import pytest

from cmdb.config import CollectorConfig
from collector.roles import (
    ADMIN,
    AGENT,
    AUDITOR,
    OPERATOR,
    READER,
    ROLES,
    ROUTE_ACCESS,
    SCANNER,
    describe_binding,
    route_access,
    scanner_binding,
)

REPORT_SUBMISSIONS = {("POST", "/api/v1/reports"), ("POST", "/ocsinventory"), ("POST", "/ocsinventory/")}


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory):
    from cmdb.backends.sqlite import SQLiteStore
    from collector.app import create_app

    store = SQLiteStore(tmp_path_factory.mktemp("access") / "db.sqlite")
    try:
        app = create_app(store, CollectorConfig(reconcile=False))
        yield {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    finally:
        store.close()


def test_every_route_has_an_access_rule(app_routes):
    missing = sorted(f"{m} {p}" for m, p in app_routes if route_access(m, p) is None)
    assert not missing, f"routes without a rule in collector.roles.ROUTE_ACCESS (refused until added): {missing}"


def test_every_rule_names_a_real_route(app_routes):
    stale = sorted(f"{m} {p}" for m, p in ROUTE_ACCESS if (m, p) not in app_routes)
    assert not stale, f"ROUTE_ACCESS rules for routes the app does not have: {stale}"


def test_rules_use_known_roles_and_admin_may_do_everything():
    for (method, path), access in ROUTE_ACCESS.items():
        assert access.roles <= set(ROLES), (method, path)
        if not access.public:
            assert ADMIN in access.roles, f"{method} {path}: admin may do everything"


def test_report_credentials_only_submit_reports():
    for key, access in ROUTE_ACCESS.items():
        if AGENT in access.roles or SCANNER in access.roles:
            assert key in REPORT_SUBMISSIONS, f"{key}: agent and scanner credentials only submit reports"


_QUERIES = {"GET /api/v1/cis", "GET /api/v1/cis/{ci_id}", "GET /api/v1/cis/{ci_id}/history", "GET /api/v1/drift",
            "GET /metrics", "GET /api/v1/changes", "GET /api/v1/changes/{number}", "GET /api/v1/incidents",
            "GET /api/v1/incidents/{number}"}
_RECORD_WRITES = {"POST /api/v1/changes", "PATCH /api/v1/changes/{number}", "POST /api/v1/changes/{number}/transitions",
                  "POST /api/v1/incidents", "PATCH /api/v1/incidents/{number}"}


@pytest.mark.parametrize("role,allowed", [
    (READER, _QUERIES),
    (AUDITOR, _QUERIES | {"GET /api/v1/cis/export"}),
    (OPERATOR, _QUERIES | _RECORD_WRITES | {"POST /api/v1/reports"}),
    (AGENT, {"POST /api/v1/reports", "POST /ocsinventory", "POST /ocsinventory/"}),
    (SCANNER, {"POST /api/v1/reports"}),
])
def test_what_each_role_may_call(role, allowed):
    """The issue's roles: reader queries, auditor queries + exports, operator scans (reports) and
    queries, agent and scanner only submit reports; token, enrollment and config routes are admin's."""
    granted = {f"{m} {p}" for (m, p), a in ROUTE_ACCESS.items() if not a.public and role in a.roles}
    assert granted == allowed


def test_admin_routes_are_admin_only():
    for (method, path), access in ROUTE_ACCESS.items():
        if path.startswith(("/api/v1/tokens", "/api/v1/enrollment-tokens", "/api/v1/config")):
            assert access.roles == {ADMIN}, (method, path)


def test_head_follows_get_and_unknown_routes_have_no_rule():
    assert route_access("HEAD", "/api/v1/cis") == route_access("GET", "/api/v1/cis")
    assert route_access("PUT", "/api/v1/cis") is None
    assert route_access("GET", "/api/v1/nothing") is None


def test_bindings_are_described_for_people():
    assert describe_binding(AGENT, None) == "any"
    assert describe_binding(AGENT, "4b0f5e3c-3f7a-4c55-9a59-6f4c6b1f3a01").startswith("agent/")
    assert describe_binding(SCANNER, scanner_binding("dc1")) == "nmap|snmp|ssh/dc1/*"
    assert describe_binding(SCANNER, None) == "none (refused)"
    assert describe_binding(SCANNER, "dc1") == "none (refused)"  # not a scanner binding


def test_docs_security_lists_every_route_with_its_roles():
    """docs/security.md's route table is what ROUTE_ACCESS enforces."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "security.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z]+ /[^`]*)` \| ([^|]+) \|$", doc, re.M))
    for (method, path), access in ROUTE_ACCESS.items():
        key = f"{method} {path}"
        cell = rows.get(key) or rows.get(f"{method} {path.rstrip('/')}[/]")
        assert cell is not None, f"docs/security.md has no row for {key}"
        if access.public:
            assert cell.startswith("anyone"), key
        else:
            listed = {w.strip() for w in re.split(r"[;(]", cell)[0].split(",")}
            assert listed == set(access.roles), (key, cell)
