"""Webhooks against a real HTTP receiver on loopback: signed, in order, retried with backoff under
the same idempotency key, dead-lettered after the last attempt, never sent the past."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from cmdb.backends.sqlite import SQLiteStore
from cmdb.records import NewIncident
from collector.webhooks import WebhookDispatcher, check_webhook_url, verify_signature

SECRET = b"s3cret-shared-with-the-receiver"


class Receiver:
    """A real aiohttp server: answers `fail_first` requests with 503, then 200."""

    def __init__(self, fail_first: int = 0, status: int = 503):
        self.fail_first, self.status = fail_first, status
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if len(self.requests) <= self.fail_first:
            return web.Response(status=self.status)
        return web.Response(status=204)


@pytest.fixture
async def receiver():
    made: list[web.AppRunner] = []

    async def start(fail_first: int = 0, status: int = 503) -> tuple[Receiver, str]:
        rec = Receiver(fail_first, status)
        app = web.Application()
        app.router.add_post("/hook", rec.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        made.append(runner)
        port = runner.addresses[0][1]
        return rec, f"http://127.0.0.1:{port}/hook"

    yield start
    for runner in made:
        await runner.cleanup()


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "cmdb.sqlite")
    yield s
    s.close()


async def _drain(dispatcher: WebhookDispatcher, rounds: int = 40) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            await dispatcher.deliver_once(session)
            await asyncio.sleep(0.02)


async def test_events_are_signed_ordered_and_never_the_past(store, receiver):
    store.create_incident(NewIncident("before the endpoint was configured", "alice"))
    rec, url = await receiver()
    dispatcher = WebhookDispatcher(store, [url], SECRET, max_backoff=0.01)
    async with aiohttp.ClientSession() as session:
        await dispatcher.deliver_once(session)  # registers the endpoint at the newest event
        assert rec.requests == []
        store.create_incident(NewIncident("disk failing on db01", "alice", impact=1, urgency=1))
        store.update_incident("INC0000002", "bob", state="in_progress")
        await dispatcher.deliver_once(session)
    assert [json.loads(b)["type"] for _h, b in rec.requests] == ["incident.opened", "incident.transitioned"]
    headers, body = rec.requests[0]
    event = json.loads(body)
    assert event["record"] == "INC0000002" and event["data"]["priority"] == 1
    assert headers["Idempotency-Key"] == headers["X-Fleetgraph-Delivery"] == event["id"]
    assert verify_signature(SECRET, headers["X-Fleetgraph-Timestamp"], body, headers["X-Fleetgraph-Signature"])
    assert not verify_signature(b"wrong", headers["X-Fleetgraph-Timestamp"], body,
                                headers["X-Fleetgraph-Signature"])
    assert not verify_signature(SECRET, headers["X-Fleetgraph-Timestamp"], body + b" ",
                                headers["X-Fleetgraph-Signature"])
    assert not verify_signature(SECRET, "1", body, headers["X-Fleetgraph-Signature"])  # a replay, long after


async def test_a_failing_receiver_gets_the_same_event_again_until_it_answers(store, receiver):
    rec, url = await receiver(fail_first=3)
    dispatcher = WebhookDispatcher(store, [url], SECRET, max_backoff=0.01)
    async with aiohttp.ClientSession() as session:
        await dispatcher.deliver_once(session)
    store.create_incident(NewIncident("one", "alice"))
    store.create_incident(NewIncident("two", "alice"))
    await _drain(dispatcher)
    keys = [h["Idempotency-Key"] for h, _b in rec.requests]
    assert keys == ["evt-1"] * 4 + ["evt-2"], keys  # three 503s, then delivered, then the next in order
    state = store.webhook_state(url)
    assert state[0] == 2 and state[1] == 0 and state[4] == 0


async def test_an_event_the_receiver_never_takes_becomes_a_dead_letter(store, receiver, caplog):
    rec, url = await receiver(fail_first=1000, status=500)
    dispatcher = WebhookDispatcher(store, [url], SECRET, max_attempts=3, max_backoff=0.01)
    async with aiohttp.ClientSession() as session:
        await dispatcher.deliver_once(session)
    store.create_incident(NewIncident("poison", "alice"))
    store.create_incident(NewIncident("next", "alice"))
    await _drain(dispatcher)
    keys = [h["Idempotency-Key"] for h, _b in rec.requests]
    assert keys == ["evt-1"] * 3 + ["evt-2"] * 3
    assert store.webhook_state(url)[4] == 2
    assert "dead letter" in caplog.text and SECRET.decode() not in caplog.text


async def test_an_unreachable_receiver_is_retried_with_backoff_not_hammered(store, tmp_path):
    dispatcher = WebhookDispatcher(store, ["http://127.0.0.1:9/hook"], SECRET, max_backoff=60)
    async with aiohttp.ClientSession() as session:
        await dispatcher.deliver_once(session)
        store.create_incident(NewIncident("x", "alice"))
        await dispatcher.deliver_once(session)
        await dispatcher.deliver_once(session)  # not due yet: no second attempt
    delivered, attempts, next_at, error, _dead = store.webhook_state("http://127.0.0.1:9/hook")
    assert delivered == 0 and attempts == 1 and "ClientConnectorError" in error and next_at > 0


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///nohost", "http://user:pw@127.0.0.1/hook", "not a url"])
def test_bad_webhook_urls_are_refused(url):
    with pytest.raises(ValueError, match="webhook URL"):
        check_webhook_url(url)


def test_webhooks_without_a_secret_are_refused(store):
    with pytest.raises(ValueError, match="secret"):
        WebhookDispatcher(store, ["http://127.0.0.1:1/x"], b"")
