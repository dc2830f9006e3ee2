"""GET /metrics on the real app: counters move with real requests, store gauges are read at scrape
time, and who may read it follows collector.metrics_auth."""

from __future__ import annotations

import gzip

from prometheus_client.parser import text_string_to_metric_families

from cmdb.report import encode_report
from tests.integration.collector.access_harness import report_from, role_tokens
from tests.integration.collector.harness import auth, drain, json_headers, make_report


async def scrape(client, token: str | None = None, **headers) -> dict[tuple[str, tuple], float]:
    resp = await client.get("/metrics", headers={**(auth(token) if token else {}), **headers})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_reports_received_rejected_and_reconciled_are_counted(collector, store):
    client = await collector(reconcile=True)
    tokens = await role_tokens(client, store)
    body = encode_report(make_report(hostname="web-01"))
    assert (await client.post("/api/v1/reports", data=body, headers=json_headers(tokens["agent"]))).status == 202
    assert (await client.post("/api/v1/reports", data=gzip.compress(body),
                              headers=json_headers(tokens["agent"], **{"Content-Encoding": "gzip"}))).status == 200
    await drain(client)
    rejected = [
        (b"{}", json_headers(tokens["agent"])),                                      # invalid_report
        (body, {"Content-Type": "application/json"}),                                # unauthenticated
        (body, json_headers(tokens["reader"])),                                      # forbidden
        (b"not gzip", json_headers(tokens["agent"], **{"Content-Encoding": "gzip"})),  # malformed_body
        (report_from("agent", "x"), json_headers(tokens["scanner"])),               # source_binding
        (body, {**auth(tokens["agent"]), "Content-Type": "text/xml"}),               # unsupported_media_type
    ]
    for data, headers in rejected:
        assert (await client.post("/api/v1/reports", data=data, headers=headers)).status >= 400

    m = await scrape(client)
    assert value(m, "fleetgraph_reports_received_total", source_kind="agent", outcome="accepted") == 1
    assert value(m, "fleetgraph_reports_received_total", source_kind="agent", outcome="duplicate") == 1
    for reason in ("invalid_report", "unauthenticated", "forbidden", "malformed_body", "source_binding",
                   "unsupported_media_type"):
        assert value(m, "fleetgraph_reports_rejected_total", reason=reason) == 1, reason
    assert value(m, "fleetgraph_reports_rejected_total", reason="conflict") == 0  # exists, at zero
    assert value(m, "fleetgraph_ingest_seconds_count") == 2
    assert value(m, "fleetgraph_reconcile_seconds_count", outcome="reconciled") == 1
    assert value(m, "fleetgraph_reports_pending") == 0
    assert value(m, "fleetgraph_cis", **{"class": "Computer"}) == 1
    assert value(m, "fleetgraph_cis", **{"class": "OperatingSystem"}) == 1
    assert value(m, "fleetgraph_cis", **{"class": "Printer"}) == 0  # every class has its series
    assert value(m, "fleetgraph_store_up") == 1 and value(m, "fleetgraph_reconcile_worker_up") == 1
    assert value(m, "fleetgraph_http_requests_total", method="POST", route="/api/v1/reports", status="202") == 1


async def test_queue_depth_counts_unreconciled_reports(collector, store):
    client = await collector(reconcile=False)
    tokens = await role_tokens(client, store)
    for host in ("a-1", "a-2", "a-3"):
        resp = await client.post("/api/v1/reports", data=encode_report(make_report(hostname=host)),
                                 headers=json_headers(tokens["agent"]))
        assert resp.status == 202
    m = await scrape(client)
    assert value(m, "fleetgraph_reports_pending") == 3
    assert value(m, "fleetgraph_reconcile_worker_up") == 0


async def test_open_incidents_are_read_from_the_store_at_scrape_time(collector, store):
    from cmdb.records import NewIncident

    client = await collector()
    assert value(await scrape(client), "fleetgraph_open_incidents") == 0
    for title in ("disk full on db-01", "web-01 unreachable"):
        store.create_incident(NewIncident(title=title, created_by="test"))
    assert value(await scrape(client), "fleetgraph_open_incidents") == 2


async def test_a_store_without_incidents_reports_zero(collector, store, monkeypatch):
    from collector.metrics import _StoreGauges

    # A backend of the store contract that predates incidents has no count_open_incidents.
    class Older:
        def __getattr__(self, name):
            if name == "count_open_incidents":
                raise AttributeError(name)
            return getattr(store, name)

    gauges = {m.name: m for m in _StoreGauges(Older(), lambda: None).collect()}
    assert gauges["fleetgraph_open_incidents"].samples[0].value == 0


async def test_a_failing_store_is_store_up_0_not_a_failed_scrape(collector, store, monkeypatch):
    client = await collector()

    def broken(*_args, **_kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(store, "count_cis", broken)
    m = await scrape(client)
    assert value(m, "fleetgraph_store_up") == 0
    assert ("fleetgraph_reports_pending", ()) not in m


async def test_rate_limited_requests_are_counted_by_scope(collector, store):
    client = await collector(rate_limit_token=0.01, rate_limit_token_burst=1)
    tokens = await role_tokens(client, store)
    assert (await client.get("/api/v1/cis", headers=auth(tokens["reader"]))).status == 200
    assert (await client.get("/api/v1/cis", headers=auth(tokens["reader"]))).status == 429
    m = await scrape(client)  # from loopback: no token, so the token bucket is not involved
    assert value(m, "fleetgraph_rate_limited_total", scope="token") == 1


async def test_metrics_auth_token_needs_a_query_role(collector, store):
    client = await collector(metrics_auth="token")
    tokens = await role_tokens(client, store)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=auth(tokens["agent"]))).status == 403
    m = await scrape(client, tokens["reader"])
    assert value(m, "fleetgraph_http_requests_total", method="GET", route="/metrics", status="401") == 1
    assert value(m, "fleetgraph_http_requests_total", method="GET", route="/metrics", status="403") == 1


async def test_loopback_behind_a_trusted_proxy_is_not_loopback(collector, store):
    """A local reverse proxy forwards outsiders from 127.0.0.1: with trusted_proxies set, the real
    client address decides, so /metrics is not open to the world through the proxy."""
    client = await collector(trusted_proxies=("127.0.0.1",))
    tokens = await role_tokens(client, store)
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 401
    await scrape(client, tokens["reader"], **{"X-Forwarded-For": "203.0.113.9"})
    await scrape(client, **{"X-Forwarded-For": "127.0.0.1"})


async def test_openmetrics_when_asked_for(collector):
    client = await collector()
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).rstrip().endswith("# EOF")
