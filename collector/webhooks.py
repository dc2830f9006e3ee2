"""Webhooks: every record event (cmdb.records RecordEvent: a change created, approved, verified, an
incident opened, drift attached, ...) is POSTed as JSON to each configured URL.

Delivery is at least once and in order, per endpoint: the record event log is the outbox (written in
the transaction of the record change it announces), and each endpoint keeps a cursor in the store
(`webhook_endpoint.delivered_seq`), moved only after a 2xx. A failure is retried with exponential
backoff (1 s, 2 s, 4 s, ... capped at `webhook_max_backoff`, with jitter); after
`webhook_max_attempts` the event is counted as a dead letter, logged, and skipped so one poisoned
event does not block the endpoint forever. A receiver deduplicates on the idempotency key, which
is the same for every attempt of one event.

Every request carries:

    Content-Type: application/json
    X-Fleetgraph-Event: incident.opened | change.transitioned | ...
    X-Fleetgraph-Delivery / Idempotency-Key: evt-<seq>       (the event's id, stable across retries)
    X-Fleetgraph-Timestamp: <unix seconds of this attempt>
    X-Fleetgraph-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the shared secret>

A receiver checks the signature with the secret and refuses timestamps too far from its clock
(replay); `verify_signature` below is the reference.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

from cmdb.records import RecordEvent
from cmdb.store import Store

log = logging.getLogger("fleetgraph.collector.webhooks")
T = TypeVar("T")
_encoder = msgspec.json.Encoder()
SIGNATURE_HEADER = "X-Fleetgraph-Signature"
TIMESTAMP_HEADER = "X-Fleetgraph-Timestamp"
BATCH = 100


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host, no credentials in it (they would be logged): ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url[:100]!r}: expected http(s)://host[:port]/path")
    if parts.username or parts.password:
        raise ValueError(f"webhook URL for {parts.hostname}: put no credentials in the URL; receivers "
                         "authenticate fleetgraph by the HMAC signature")
    return url


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, now: float | None = None,
                     tolerance_s: float = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def payload(event: RecordEvent) -> bytes:
    kind = "change" if event.record.startswith("CHG") else "incident"
    return _encoder.encode({"id": event.event_id, "type": f"{kind}.{event.event}", "record": event.record,
                            "actor": event.actor, "at": event.at, "data": event.data})


def backoff(attempts: int, cap: float) -> float:
    """Seconds before the next attempt after `attempts` failures: 1, 2, 4, ... capped, +-20%."""
    return min(cap, 2.0 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)


class WebhookDispatcher:
    """Delivers the record event log to each endpoint. `run_store` runs a blocking store call off
    the event loop (the collector's executor)."""

    def __init__(self, store: Store, urls: Sequence[str], secret: bytes, *, timeout: float = 10.0,
                 max_attempts: int = 8, max_backoff: float = 300.0,
                 run_store: Callable[..., Any] | None = None):
        if urls and not secret:
            raise ValueError("webhooks need a shared secret to sign with (collector.webhook_secret_file)")
        self.store, self.urls, self.secret = store, [check_webhook_url(u) for u in urls], secret
        self.timeout, self.max_attempts, self.max_backoff = timeout, max_attempts, max_backoff
        self._run_store = run_store
        self.delivered = 0
        self.failures = 0

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        if self._run_store is None:
            return fn(*args)
        return await self._run_store(fn, *args)

    async def deliver_once(self, session: aiohttp.ClientSession) -> int:
        """One pass over every endpoint: send what is due; the number of events delivered."""
        sent = 0
        for url in self.urls:
            sent += await self._deliver_endpoint(session, url)
        return sent

    async def _deliver_endpoint(self, session: aiohttp.ClientSession, url: str) -> int:
        delivered_seq, attempts, next_at, _error, _dead = await self._store(self.store.webhook_state, url)
        now = datetime.now(UTC)
        if next_at and next_at > int(now.timestamp() * 1_000_000):
            return 0
        events = await self._store(self.store.record_events, delivered_seq, BATCH)
        sent = 0
        for event in events:
            error = await self._post(session, url, event)
            if error is None:
                await self._store(self.store.webhook_delivered, url, event.seq)
                self.delivered += 1
                sent += 1
                attempts = 0
                continue
            self.failures += 1
            attempts += 1
            if attempts >= self.max_attempts:
                log.error("webhook %s: giving up on event %s (%s) after %d attempts: %s; counted as a dead "
                          "letter", _where(url), event.event_id, event.record, attempts, error)
                await self._store(self.store.webhook_delivered, url, event.seq, True)
                attempts = 0
                continue
            delay = backoff(attempts, self.max_backoff)
            log.warning("webhook %s: event %s failed (%s); attempt %d of %d in %.1f s", _where(url),
                        event.event_id, error, attempts, self.max_attempts, delay)
            await self._store(self.store.webhook_failed, url, error, now + timedelta(seconds=delay))
            break
        return sent

    async def _post(self, session: aiohttp.ClientSession, url: str, event: RecordEvent) -> str | None:
        body = payload(event)
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "X-Fleetgraph-Event": msgspec.json.decode(body)["type"],
                   "X-Fleetgraph-Delivery": event.event_id, "Idempotency-Key": event.event_id,
                   TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(self.secret, ts, body)}
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}"
        except asyncio.TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        if not self.urls:
            return
        async with aiohttp.ClientSession(headers={"User-Agent": "fleetgraph-webhooks"}) as session:
            while not stop.is_set():
                try:
                    await self.deliver_once(session)
                except Exception:  # a store hiccup: log and try again next round, never die
                    log.exception("webhook delivery round failed; retrying")
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except asyncio.TimeoutError:
                    pass


def _where(url: str) -> str:
    """The endpoint for logs: scheme, host and path, never a query string (it may carry a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
