"""POST /api/v1/reports: authenticate, bound, decompress, validate, store durably, then acknowledge.

The order is the contract with the agents: a 202 means the report is committed to the raw-report
log (the store syncs before `put_report` returns), so an agent may drop it from its outbox. Every
rejection happens before the store is touched, so a rejected request leaves the store unchanged.

Bodies are bounded twice: `max_body_bytes` on the wire (Content-Length up front, and counted
while reading for chunked bodies) and `max_report_bytes` after gzip decompression, which is done
incrementally so a gzip bomb costs at most `max_report_bytes` of memory before it is refused.
The server must run with `auto_decompress=False` (see `collector.app.RUNNER_KWARGS`) so that
this handler, not aiohttp, sees the compressed bytes.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from aiohttp import web

from cmdb.report import Report, ReportError, decode_report
from cmdb.store import ReportConflict, Store
from collector.api import CONFIG_KEY, PRINCIPAL, STORE_KEY, WORKER_KEY, APIError, call_store, json_response
from collector.auth import check_source_binding
from collector.metrics import report_received
from collector.openapi import error, json_body
from collector.ratelimit import spend
from collector.timeouts import body_received

log = logging.getLogger("fleetgraph.collector.ingest")

routes = web.RouteTableDef()

REPORTS_PATH = "/api/v1/reports"
_GZIP = ("gzip", "x-gzip")
_IDENTITY = ("", "identity")
_DECOMPRESS_STEP = 256 * 1024  # inflate at most this much per call: memory stays bounded


class ReportAccepted(msgspec.Struct):
    report_id: str
    status: Literal["accepted"]
    seq: int


class ReportDuplicate(msgspec.Struct):
    report_id: str
    status: Literal["duplicate"]
    seq: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class _Limits:
    max_body: int  # bytes on the wire (compressed)
    max_report: int  # bytes of report JSON (after decompression)

    def too_large_on_wire(self) -> APIError:
        return APIError(413, f"request body larger than {self.max_body} bytes; split the report "
                             "(e.g. send a delta) or raise collector.max_body_bytes",
                        limit=self.max_body)

    def too_large_inflated(self) -> APIError:
        return APIError(413, f"report larger than {self.max_report} bytes after decompression; "
                             "split the report or raise collector.max_report_bytes",
                        limit=self.max_report)


class _GunzipCapped:
    """Incremental gzip decoder that refuses to inflate more than `max_report` bytes in total."""

    def __init__(self, limits: _Limits):
        self._limits = limits
        self._d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._out = bytearray()
        self._seen_input = False

    def feed(self, data: bytes) -> None:
        self._seen_input = self._seen_input or bool(data)
        while True:
            limit = min(self._limits.max_report - len(self._out) + 1, _DECOMPRESS_STEP)  # +1: "over"
            try:
                chunk = self._d.decompress(data, limit)
            except zlib.error as exc:
                raise APIError(400, f"body is not valid gzip ({exc}); send the report gzip-compressed "
                                    "or drop the Content-Encoding header") from None
            self._out += chunk
            if len(self._out) > self._limits.max_report:
                raise self._limits.too_large_inflated()
            if self._d.eof:
                data = self._d.unused_data
                if not data:
                    return
                # A second gzip member: concatenated members are valid gzip.
                self._d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                continue
            data = self._d.unconsumed_tail
            if not data and len(chunk) < limit:  # input used up and no output held back
                return

    def finish(self) -> bytes:
        if not self._seen_input:
            raise APIError(400, "empty body: send the report JSON (gzip-compressed here)")
        if not self._d.eof:
            raise APIError(400, "gzip stream is truncated; send the complete compressed report")
        return bytes(self._out)


async def _read_body(request: web.Request, limits: _Limits) -> bytes:
    """The report bytes, decompressed, within both limits; APIError otherwise."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _GZIP + _IDENTITY:
        raise APIError(415, f"unsupported Content-Encoding {encoding!r}; send the report plain or gzip",
                       supported=["gzip", "identity"])
    if request.content_length is not None and request.content_length > limits.max_body:
        raise limits.too_large_on_wire()

    if encoding in _GZIP and getattr(request.content, "total_compressed_bytes", None) is not None:
        # aiohttp inflated the body already (the runner lacks RUNNER_KWARGS): the caps and the
        # error messages here would not hold, so refuse loudly instead of half-working.
        log.error("the collector runs without auto_decompress=False; pass collector.app.RUNNER_KWARGS "
                  "to the runner")
        raise APIError(500, "the collector is misconfigured for compressed reports (see its log); "
                            "send the report uncompressed meanwhile")
    gunzip = _GunzipCapped(limits) if encoding in _GZIP else None
    plain = bytearray()
    received = 0
    try:
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received > limits.max_body:
                raise limits.too_large_on_wire()
            if gunzip is not None:
                gunzip.feed(chunk)
            else:
                plain += chunk
    except web.RequestPayloadError as exc:
        raise APIError(400, f"request body is malformed or was cut off ({exc}); send it again") from None
    body_received(request)  # the deadline (collector.request_timeout) covers the upload, not the store write
    if gunzip is not None:
        return gunzip.finish()
    if len(plain) > limits.max_report:
        raise limits.too_large_inflated()
    if not plain:
        raise APIError(400, "empty body: send the report JSON")
    return bytes(plain)


def _check_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        given = request.headers.get("Content-Type") or "none"
        raise APIError(415, f"Content-Type must be application/json (got {given}); "
                            "send the report as JSON, optionally with Content-Encoding: gzip",
                       supported=["application/json"])


@routes.post(REPORTS_PATH)  # who may: collector.roles.ROUTE_ACCESS (agent, scanner, operator, admin)
async def post_report(request: web.Request) -> web.Response:
    started = time.perf_counter()
    config = request.config_dict[CONFIG_KEY]
    store = request.config_dict[STORE_KEY]
    _check_content_type(request)
    body = await _read_body(request, _Limits(config.max_body_bytes, config.max_report_bytes))
    try:
        report = await call_store(request, decode_report, body)  # CPU work: off the event loop
    except ReportError as exc:
        raise APIError(400, "invalid report", field=exc.field, rule=exc.rule) from None
    check_source_binding(request, report.source.kind, report.source.id)  # before the store is touched
    spend(request, "source", f"{report.source.kind}/{report.source.id}")  # per agent, whatever its token

    if report.mode == "delta":
        await call_store(request, _check_delta_base, store, report)

    try:
        put = await call_store(request, store.put_report, report.report_id, report.source.kind,
                               report.source.id, report.collected_at, body, report.mode)
    except ReportConflict:
        raise _conflict(report.report_id) from None

    if not put.created:
        # Only a re-sent report_id needs our own digest: the store digests what it stores.
        if put.digest != hashlib.sha256(body).hexdigest():
            raise _conflict(report.report_id, seq=put.seq)
        report_received(request, report.source.kind, "duplicate", time.perf_counter() - started)
        return json_response(ReportDuplicate(report.report_id, "duplicate", put.seq, put.received_at))

    name, _role = request[PRINCIPAL]
    log.info("report %s accepted: seq %d, %s/%s, %d items, %d relations, %d bytes (token %r)",
             report.report_id, put.seq, report.source.kind, report.source.id, len(report.items),
             len(report.relations), len(body), name)
    worker = request.config_dict.get(WORKER_KEY)
    if worker is not None:
        worker.wake()
    report_received(request, report.source.kind, "accepted", time.perf_counter() - started)
    return json_response(ReportAccepted(report.report_id, "accepted", put.seq), status=202)


def _check_delta_base(store: Store, report: Report) -> None:
    """A delta is applied on its base: the base must be a full report of the same source that this
    store holds. Otherwise 422 with code "base_unknown": the agent then sends a full report."""
    base = store.report_head(report.base_report_id or "")
    problem = None
    if base is None:
        problem = "is not in this collector's store"
    elif (base.source_kind, base.source_id) != (report.source.kind, report.source.id):
        problem = "belongs to another source"
    elif base.mode != "full":
        problem = "is not a full report"
    if problem is not None:
        raise APIError(422, f"base report {report.base_report_id!r} of this delta {problem}; "
                            "send a full report", code="base_unknown", base_report_id=report.base_report_id)


def _conflict(report_id: str, seq: int | None = None) -> APIError:
    extra = {"report_id": report_id} | ({"seq": seq} if seq is not None else {})
    return APIError(409, f"report_id {report_id!r} was already received with a different body; "
                         "a report_id names exactly one report: send changed data under a new report_id",
                    **extra)


OPENAPI = {
    "paths": {REPORTS_PATH: {"post": {
        "summary": "submit a report (fleetgraph.report/1)",
        "description": "Plain JSON or `Content-Encoding: gzip`. 202 means stored durably before the answer. "
                       "An enrolled agent's credential may only submit its own source; a scanner's only "
                       "nmap/snmp/ssh sources under its scanner id (rule source_binding).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref":
                        "#/components/schemas/Report"}}}},
        "responses": {
            "202": json_body("ReportAccepted", "stored durably; reconciled shortly after"),
            "200": json_body("ReportDuplicate", "the same report_id and body were already accepted"),
            "400": error("malformed JSON or gzip, or a report that breaks a rule (field and rule named)"),
            "409": error("the report_id was already accepted with a different body"),
            "413": error("over collector.max_body_bytes on the wire or max_report_bytes inflated"),
            "415": error("Content-Type not JSON, or a Content-Encoding other than gzip/identity"),
            "422": error("a delta whose base report is unknown here (code base_unknown): send a full report"),
        },
    }}},
    "schemas": (Report, ReportAccepted, ReportDuplicate),
}
