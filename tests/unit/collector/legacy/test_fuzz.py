"""Hypothesis over the OCS / FusionInventory protocol, against the real collector app and store:
whatever the body (random bytes, generated XML requests, mutated real inventories, compressed or
not), the answer is never 5xx, the collector keeps answering, and a refused request changes
nothing in the store. An accepted inventory is stored as a valid native report."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmdb.backends import sqlite_url
from cmdb.config import CollectorConfig
from cmdb.report import decode_report

from .conftest import FUSION_HEADERS, NO_RATE_LIMITS, OCS_HEADERS, PATH, basic, cases, snapshot

REAL = [c.xml for c in cases("inventories")]
SECTIONS = ("HARDWARE", "BIOS", "CPUS", "OPERATINGSYSTEM", "MEMORIES", "STORAGES", "DRIVES", "NETWORKS",
            "CONTROLLERS", "SOFTWARES", "LOCAL_USERS", "USERS", "ACCESSLOG", "VERSIONCLIENT", "PROCESSES")
FIELDS = ("NAME", "VERSION", "ARCH", "ARCHITECTURE", "FROM", "MACADDR", "IPADDRESS", "IPMASK", "IPADDRESS6",
          "DESCRIPTION", "VIRTUALDEV", "TYPE", "SSN", "SMANUFACTURER", "UUID", "MEMORY", "DISKSIZE", "TOTAL",
          "FREE", "FQDN", "DNS_DOMAIN", "KERNEL_NAME", "LOGDATE", "INSTALLDATE", "CAPACITY", "CAPTION",
          "PCISLOT", "LOGIN", "CORE", "THREAD", "SPEED", "WORKGROUP", "BOOT_TIME", "FILESIZE")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


class SyncCollector:
    """The app on its own event loop, so hypothesis (synchronous) can drive it request by request."""

    def __init__(self, store: Any, db_path) -> None:
        from collector.app import RUNNER_KWARGS, create_app

        self.loop = asyncio.new_event_loop()
        self.store = store
        config = CollectorConfig(store=sqlite_url(db_path), reconcile=False, max_report_bytes=4 * 1024 * 1024,
                                 **NO_RATE_LIMITS)
        server = TestServer(create_app(store, config))
        self.loop.run_until_complete(server.start_server(**RUNNER_KWARGS))
        self.client = TestClient(server, loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async def go() -> tuple[int, bytes]:
            resp = await self.client.post(PATH, data=body, headers=headers)
            return resp.status, await resp.read()
        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture
def app(store, db_path, tokens) -> Iterator[tuple[SyncCollector, dict[str, str]]]:
    sync = SyncCollector(store, db_path)
    yield sync, tokens
    sync.close()


def check(app: SyncCollector, body: bytes, headers: dict[str, str]) -> int:
    before = snapshot(app.store)
    status, answer = app.post(body, headers)
    assert status < 500, f"{status}: {answer[:300]!r}"
    event(f"status {status}")  # --hypothesis-show-statistics: how much got past each check
    assert zlib.decompress(answer)  # every answer, refusals too, is zlib XML the agents can read
    if status != 200:
        assert snapshot(app.store) == before, f"a refused request ({status}) changed the store"
    elif app.store.count_reports() > before[0]:
        for stored in app.store.pending_reports(1000):
            decode_report(stored.body)  # whatever was stored is a valid native report
    return status


# Mostly text XML can carry; now and then a control character (the document is then malformed).
text = (st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
        | st.text(st.characters(blacklist_categories=("Cs",)), max_size=10))
field = st.tuples(st.sampled_from(FIELDS) | st.from_regex(r"[A-Z][A-Z_]{0,10}", fullmatch=True),
                  text | st.sampled_from(["", "0", "-1", "00:00:00:00:00:00", "02:42:ac:11:00:02",
                                          "255.255.255.0", "fe80::1", "deb", "rpm", "libc6:amd64",
                                          "2024/00/31 10:00:00", "31/02/2024", "+0200", "MSWin32"]))
entry = st.lists(field, max_size=8)
section = st.tuples(st.sampled_from(SECTIONS) | st.from_regex(r"[A-Z][A-Z_]{0,10}", fullmatch=True), entry)


@st.composite
def requests(draw) -> bytes:
    """A well-formed agent request with arbitrary content."""
    # Mostly a valid header, so that most examples reach the mapping and the store.
    valid = draw(st.integers(0, 4)) > 0
    device_id = draw(st.sampled_from(["vm-2026-11-21-20-37-42", "host-01"]) if valid else text)
    query = draw(st.sampled_from(["PROLOG", "INVENTORY", "INVENTORY"]) if valid else text)
    parts = ["<REQUEST>"]
    if valid or draw(st.booleans()):
        parts.append("<CONTENT>")
        for name, fields in draw(st.lists(section, max_size=12)):
            parts.append(f"<{name}>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields) + f"</{name}>")
        parts.append("</CONTENT>")
    parts.append(f"<DEVICEID>{escape(device_id)}</DEVICEID><QUERY>{escape(query)}</QUERY></REQUEST>")
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        return b"<REQUEST/>"


@given(body=st.binary(max_size=2048), compress=st.booleans(), fusion=st.booleans())
@FUZZ
def test_random_bodies(app, body, compress, fusion):
    sync, tokens = app
    headers = {**(FUSION_HEADERS if fusion else OCS_HEADERS), **basic(tokens["agent"])}
    check(sync, zlib.compress(body) if compress else body, headers)


@given(xml=requests(), fusion=st.booleans())
@FUZZ
def test_generated_requests(app, xml, fusion):
    sync, tokens = app
    headers = {**(FUSION_HEADERS if fusion else OCS_HEADERS), **basic(tokens["agent"])}
    check(sync, zlib.compress(xml), headers)


@given(index=st.integers(0, len(REAL) - 1), data=st.data())
@FUZZ
def test_mutated_real_inventories(app, index, data):
    """Real inventories with bytes flipped, cut or inserted, before or after compression."""
    sync, tokens = app
    xml = bytearray(REAL[index])
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(xml) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            xml[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del xml[at:at + data.draw(st.integers(1, 64))]
        else:
            xml[at:at] = data.draw(st.sampled_from([b"<", b">", b"&", b"<!DOCTYPE x>", b"]]>", b"\x00", b"<A>"]))
    body = zlib.compress(bytes(xml))
    if data.draw(st.booleans()):
        compressed = bytearray(body)
        compressed[data.draw(st.integers(0, len(compressed) - 1))] ^= 0xFF
        body = bytes(compressed)
    check(sync, body, {**FUSION_HEADERS, **basic(tokens["agent"])})


@given(header=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: "Basic " + b.hex()))
@FUZZ
def test_arbitrary_authorization_headers(app, header):
    sync, _ = app
    if not header.isprintable() or not header.isascii():
        return  # not a header an HTTP client can send
    status = check(sync, zlib.compress(REAL[0]), {**FUSION_HEADERS, "Authorization": header})
    assert status == 401
