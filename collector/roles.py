"""API token roles and the one table that says which roles may call which route.

Importable without aiohttp (the CLI offers the roles as choices).

    reader    queries: CIs, history, drift
    auditor   queries + exports (GET /api/v1/cis/export)
    operator  queries + scans (submitting reports of any source) + changes and incidents
    admin     everything: tokens, enrollment tokens, configuration, and every other route
    agent     submits reports only; an enrolled agent's credential only for its own source id
    scanner   submits reports only, of kind nmap/snmp/ssh whose source.id starts with
              "<its scanner id>/" (an enrolled scanner credential; see collector.auth)

`ROUTE_ACCESS` maps (method, path template) to who may call it. The collector's access middleware
(`collector.auth.access_control`) enforces it for every request, and refuses a route that is not
in it (fail closed): a new route is added here in the same change that adds it, and
tests/unit/collector/test_access_table.py fails until it is. HEAD follows GET.
"""

from __future__ import annotations

from dataclasses import dataclass

READER, AUDITOR, OPERATOR, ADMIN, AGENT, SCANNER = "reader", "auditor", "operator", "admin", "agent", "scanner"
ROLES: tuple[str, ...] = (READER, AUDITOR, OPERATOR, ADMIN, AGENT, SCANNER)

ROLE_HELP = {
    READER: "queries (CIs, history, drift)",
    AUDITOR: "queries and exports",
    OPERATOR: "queries, scans (submit reports), changes and incidents",
    ADMIN: "everything: tokens, enrollment, configuration",
    AGENT: "submit reports only (an enrolled agent: only its own source id)",
    SCANNER: "submit nmap/snmp/ssh reports under its own scanner id (enrolled with kind scanner)",
}

# The roles that submit reports and nothing else: their credentials are bound to a source.
REPORTING_ROLES = frozenset({AGENT, SCANNER})
SCANNER_SOURCE_KINDS = ("nmap", "snmp", "ssh")

# A scanner's credential is stored bound to "scanner:<scanner id>", never to the bare id: agent ids
# and scanner ids share the store's one-live-credential-per-binding rule, and a scanner must never
# rotate (revoke) the credential of an agent whose id it happens to name.
SCANNER_BINDING_PREFIX = "scanner:"


def scanner_binding(scanner_id: str) -> str:
    return SCANNER_BINDING_PREFIX + scanner_id


def bound_scanner_id(binding: str | None) -> str | None:
    """The scanner id of a scanner credential's binding, None when it is not one."""
    if binding is None or not binding.startswith(SCANNER_BINDING_PREFIX):
        return None
    return binding[len(SCANNER_BINDING_PREFIX):] or None


def describe_binding(role: str, binding: str | None) -> str:
    """What a credential may write, for `fleetgraph token list` and the admin API."""
    if binding is None:
        return "none (refused)" if role == SCANNER else "any"
    if role == SCANNER:
        scanner_id = bound_scanner_id(binding)
        return f"{'|'.join(SCANNER_SOURCE_KINDS)}/{scanner_id}/*" if scanner_id else "none (refused)"
    return f"agent/{binding}"


QUERY = frozenset({READER, AUDITOR, OPERATOR, ADMIN})
EXPORT = frozenset({AUDITOR, ADMIN})
SUBMIT_REPORTS = frozenset({AGENT, SCANNER, OPERATOR, ADMIN})
RECORDS = frozenset({OPERATOR, ADMIN})  # changes and incidents (collector.records)
ADMIN_ONLY = frozenset({ADMIN})


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route. `public`: no token (rate limited per client address).
    `loopback_open`: no token from a loopback client when collector.metrics_auth is "loopback".
    `self_authenticated`: the handler calls collector.auth.authenticate itself (clients that cannot
    send a bearer token up front, like the OCS/Fusion agents' Basic auth after a challenge); the
    middleware leaves the request alone and `roles` documents what the handler admits."""

    roles: frozenset[str] = frozenset()
    public: bool = False
    loopback_open: bool = False
    self_authenticated: bool = False

    def allows(self, role: str) -> bool:
        return self.public or role in self.roles


PUBLIC = Access(public=True)

ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,  # the API's shape, no data
    ("GET", "/metrics"): Access(QUERY, loopback_open=True),
    ("POST", "/api/v1/enroll"): PUBLIC,  # the enrollment token travels in the body
    ("POST", "/api/v1/reports"): Access(SUBMIT_REPORTS),
    ("GET", "/api/v1/cis"): Access(QUERY),
    ("GET", "/api/v1/cis/export"): Access(EXPORT),
    ("GET", "/api/v1/cis/{ci_id}"): Access(QUERY),
    ("GET", "/api/v1/cis/{ci_id}/history"): Access(QUERY),
    ("GET", "/api/v1/drift"): Access(QUERY),
    ("GET", "/api/v1/changes"): Access(QUERY),
    ("POST", "/api/v1/changes"): Access(RECORDS),
    ("GET", "/api/v1/changes/{number}"): Access(QUERY),
    ("PATCH", "/api/v1/changes/{number}"): Access(RECORDS),
    ("POST", "/api/v1/changes/{number}/transitions"): Access(RECORDS),
    ("GET", "/api/v1/incidents"): Access(QUERY),
    ("POST", "/api/v1/incidents"): Access(RECORDS),
    ("GET", "/api/v1/incidents/{number}"): Access(QUERY),
    ("PATCH", "/api/v1/incidents/{number}"): Access(RECORDS),
    ("GET", "/api/v1/tokens"): Access(ADMIN_ONLY),
    ("POST", "/api/v1/tokens"): Access(ADMIN_ONLY),
    ("DELETE", "/api/v1/tokens/{name}"): Access(ADMIN_ONLY),
    ("GET", "/api/v1/enrollment-tokens"): Access(ADMIN_ONLY),
    ("POST", "/api/v1/enrollment-tokens"): Access(ADMIN_ONLY),
    ("DELETE", "/api/v1/enrollment-tokens/{name}"): Access(ADMIN_ONLY),
    ("GET", "/api/v1/config"): Access(ADMIN_ONLY),
    # OCS Inventory / FusionInventory agents (collector.legacy): Basic auth answered to a challenge.
    ("POST", "/ocsinventory"): Access(frozenset({AGENT, ADMIN}), self_authenticated=True),
    ("POST", "/ocsinventory/"): Access(frozenset({AGENT, ADMIN}), self_authenticated=True),
    ("GET", "/ocsinventory"): PUBLIC,  # a 405 that tells a browser what the endpoint is
    ("GET", "/ocsinventory/"): PUBLIC,
}


def route_access(method: str, path_template: str) -> Access | None:
    """The rule of a route, or None when it has none (and is refused)."""
    return ROUTE_ACCESS.get(("GET" if method == "HEAD" else method, path_template))
