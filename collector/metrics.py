"""GET /metrics: Prometheus metrics of one collector app, from a registry of its own.

Counted as requests happen (the `observe` middleware, the ingest handler, the reconcile worker):

    fleetgraph_http_requests_total{method,route,status}      route = path template, bounded
    fleetgraph_reports_received_total{source_kind,outcome}   outcome: accepted | duplicate
    fleetgraph_reports_rejected_total{reason}                reason: one of REJECTION_REASONS
    fleetgraph_ingest_seconds                                histogram of accepted/duplicate reports
    fleetgraph_reconcile_seconds{outcome}                    histogram per report: reconciled | failed
    fleetgraph_rate_limited_total{scope}                     scope: token | source | anonymous

Read from the store at scrape time (off the event loop):

    fleetgraph_reports_pending              the queue: stored, not yet reconciled
    fleetgraph_reports_failed               reports reconcile gave up on (see the log)
    fleetgraph_cis{class}                   active CIs per class, every class (0 included)
    fleetgraph_open_incidents               store.count_open_incidents() when the store has it, else 0
    fleetgraph_store_up                     1, or 0 when the store did not answer (the rest is absent)
    fleetgraph_reconcile_worker_up          1 running, 0 stopped or off

Who may read it: `collector.metrics_auth` = "loopback" (the default: no token from 127.0.0.0/8 or
::1, a token of a query role from elsewhere) or "token" (always a token); see collector.roles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from cmdb.model import CI_CLASSES
from cmdb.store import Store
from collector.api import CONFIG_KEY, STORE_KEY, WORKER_KEY, APIError, call_store
from collector.auth import METRICS_AUTH_MODES

log = logging.getLogger("fleetgraph.collector.metrics")

routes = web.RouteTableDef()

METRICS_PATH = "/metrics"
# Requests to these paths are report submissions: their rejections are counted by reason.
INGEST_PATHS = {"/api/v1/reports", "/ocsinventory", "/ocsinventory/"}
REJECTION_REASONS = ("malformed_body", "invalid_report", "unauthenticated", "forbidden", "source_binding",
                     "timeout", "conflict", "too_large", "unsupported_media_type", "base_unknown",
                     "unprocessable", "rate_limited", "internal_error", "other")
_BY_STATUS = {400: "malformed_body", 401: "unauthenticated", 403: "forbidden", 408: "timeout",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
              429: "rate_limited"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _StoreGauges:
    """A custom collector: gauges read from the store each scrape."""

    def __init__(self, store: Store, worker_alive: Callable[[], bool | None]):
        self._store = store
        self._worker_alive = worker_alive

    def collect(self):
        alive = self._worker_alive()
        yield GaugeMetricFamily("fleetgraph_reconcile_worker_up", "1 when this process's reconcile worker "
                                "runs; 0 when it stopped or is off", value=1 if alive else 0)
        try:
            pending = self._store.count_reports("pending")
            failed = self._store.count_reports("failed")
            by_class = self._store.count_cis("active")
            counter = getattr(self._store, "count_open_incidents", None)
            incidents = counter() if callable(counter) else 0
        except Exception as exc:  # a scrape says "store down" rather than failing as a whole
            log.warning("metrics: the store did not answer: %s: %s", type(exc).__name__, exc)
            yield GaugeMetricFamily("fleetgraph_store_up", "1 when the store answered this scrape", value=0)
            return
        yield GaugeMetricFamily("fleetgraph_store_up", "1 when the store answered this scrape", value=1)
        yield GaugeMetricFamily("fleetgraph_reports_pending", "reports stored and not yet reconciled",
                                value=pending)
        yield GaugeMetricFamily("fleetgraph_reports_failed", "reports reconcile gave up on", value=failed)
        cis = GaugeMetricFamily("fleetgraph_cis", "active configuration items per class", labels=["class"])
        for ci_class in sorted(set(CI_CLASSES) | set(by_class)):
            cis.add_metric([ci_class], by_class.get(ci_class, 0))
        yield cis
        yield GaugeMetricFamily("fleetgraph_open_incidents", "open incidents (0 while the store keeps none)",
                                value=incidents)


class CollectorMetrics:
    def __init__(self, store: Store, worker_alive: Callable[[], bool | None] = lambda: None):
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter("fleetgraph_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.reports_received = Counter("fleetgraph_reports_received", "reports accepted or recognised as "
                                        "duplicates", ["source_kind", "outcome"], registry=r)
        self.reports_rejected = Counter("fleetgraph_reports_rejected", "report submissions refused",
                                        ["reason"], registry=r)
        self.ingest_seconds = Histogram("fleetgraph_ingest_seconds", "time to receive, validate and durably "
                                        "store a report", buckets=LATENCY_BUCKETS, registry=r)
        self.reconcile_seconds = Histogram("fleetgraph_reconcile_seconds", "time to reconcile one report",
                                           ["outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("fleetgraph_rate_limited", "requests refused with 429", ["scope"],
                                    registry=r)
        for reason in REJECTION_REASONS:  # every series exists from the start: rate() needs a zero
            self.reports_rejected.labels(reason)
        r.register(_StoreGauges(store, worker_alive))

    def observe_reconcile(self, outcome: str, seconds: float) -> None:
        """The reconcile worker's hook (called on its thread; prometheus_client is thread-safe)."""
        self.reconcile_seconds.labels(outcome).observe(seconds)


METRICS_KEY = web.AppKey("metrics", CollectorMetrics)


def rejection_reason(status: int, extra: dict[str, Any] | None = None) -> str:
    extra = extra or {}
    if extra.get("rule") == "source_binding":
        return "source_binding"
    if extra.get("code") == "base_unknown":
        return "base_unknown"
    if status == 400 and "field" in extra and "rule" in extra:
        return "invalid_report"
    if status >= 500:
        return "internal_error"
    return _BY_STATUS.get(status, "other")


def report_received(request: web.Request, source_kind: str, outcome: str, seconds: float) -> None:
    """Called by a report-submitting handler once a report is accepted or known as a duplicate."""
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is not None:
        metrics.reports_received.labels(source_kind, outcome).inc()
        metrics.ingest_seconds.observe(seconds)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer; for report submissions, count rejections by reason."""
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is None:
        return await handler(request)
    route = request.match_info.route.resource
    template = route.canonical if route is not None and request.match_info.http_exception is None \
        else "unmatched"
    status, extra = 500, None
    try:
        response = await handler(request)
        status = response.status
        return response
    except APIError as exc:
        status, extra = exc.status, exc.extra
        raise
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        status = 499  # the client went away
        raise
    finally:
        metrics.requests.labels(request.method, template, str(status)).inc()
        if status == 429:
            metrics.rate_limited.labels((extra or {}).get("scope", "other")).inc()
        if template in INGEST_PATHS and status >= 400:
            metrics.reports_rejected.labels(rejection_reason(status, extra)).inc()


async def _attach(app: web.Application) -> AsyncIterator[None]:
    """After the reconcile worker started (cleanup_ctx order): hook its per-report timings."""
    worker = app.get(WORKER_KEY)
    if worker is not None:
        worker.observer = app[METRICS_KEY].observe_reconcile
    yield


def setup(app: web.Application) -> None:
    """The metrics of this app, the /metrics route and the worker hook. Call after the worker's
    cleanup_ctx is appended."""
    mode = app[CONFIG_KEY].metrics_auth
    if mode not in METRICS_AUTH_MODES:
        raise ValueError(f"collector.metrics_auth: expected {' or '.join(METRICS_AUTH_MODES)}, got {mode!r}")

    def worker_alive() -> bool | None:
        worker = app.get(WORKER_KEY)
        return None if worker is None else worker.is_alive()

    app[METRICS_KEY] = CollectorMetrics(app[STORE_KEY], worker_alive)
    app.cleanup_ctx.append(_attach)
    app.add_routes(routes)


@routes.get(METRICS_PATH)
async def get_metrics(request: web.Request) -> web.Response:
    metrics = request.config_dict[METRICS_KEY]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = await call_store(request, encoder, metrics.registry)  # the store gauges query the store
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


OPENAPI = {
    "paths": {
        METRICS_PATH: {"get": {
            "summary": "Prometheus metrics of this collector",
            "description": "Text exposition format (OpenMetrics when asked for in Accept). Without a token "
                           "from loopback when collector.metrics_auth is \"loopback\"; otherwise a token "
                           "of a query role.",
            "responses": {"200": {"description": "the metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    },
}
