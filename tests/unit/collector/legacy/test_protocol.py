"""The wire: capped zlib inflation (bombs, truncation, not zlib) and the zlib XML replies."""

from __future__ import annotations

import gzip
import zlib

import pytest

from collector.legacy.protocol import (
    LegacyError,
    error_reply,
    inflate_capped,
    inventory_reply,
    prolog_reply,
    status_reason,
)
from collector.legacy.xml import parse_request

XML = b'<?xml version="1.0"?><REQUEST><DEVICEID>x-1</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>'


def test_zlib_and_gzip_bodies_inflate():
    assert inflate_capped(zlib.compress(XML), 1000) == XML
    assert inflate_capped(gzip.compress(XML), 1000) == XML
    assert inflate_capped(zlib.compress(XML), len(XML)) == XML  # exactly the limit is fine


def test_a_zlib_bomb_is_refused_at_the_limit():
    bomb = zlib.compress(b"\0" * (200 * 1024 * 1024), 9)  # 200 MiB of zeros in ~200 KB
    assert len(bomb) < 300_000
    with pytest.raises(LegacyError) as refused:
        inflate_capped(bomb, 1024 * 1024)
    assert refused.value.status == 413 and "max_report_bytes" in refused.value.message


@pytest.mark.parametrize("body, words", [
    (b"", "empty body"),
    (XML, "not zlib-compressed"),
    (zlib.compress(XML)[:-6], "truncated"),
    (zlib.compress(XML)[:2], "truncated"),
    (b"\x78\x9c" + b"\xff" * 50, "not zlib-compressed"),
    (bytes(range(256)), "not zlib-compressed"),
])
def test_bodies_that_are_not_a_complete_zlib_stream(body, words):
    with pytest.raises(LegacyError) as refused:
        inflate_capped(body, 1_000_000)
    assert refused.value.status == 400 and words in refused.value.message


def _reply(response) -> str:
    assert response.content_type == "application/x-compress"
    return zlib.decompress(response.body).decode()


def test_replies_are_zlib_xml():
    prolog = _reply(prolog_reply())
    assert "<RESPONSE>SEND</RESPONSE><PROLOG_FREQ>24</PROLOG_FREQ>" in prolog
    assert "<RESPONSE>no_account_update</RESPONSE>" in _reply(inventory_reply())


def test_errors_are_zlib_xml_with_the_reason_in_the_status_line():
    response = error_reply(400, "bad <thing> & \x01 ünïcode\nline two" + "x" * 500)
    body = _reply(response)
    assert response.status == 400 and "<STATUS>400</STATUS>" in body
    assert "bad &lt;thing&gt; &amp;" in body
    parse_request(body.replace("REPLY", "REQUEST").encode())  # well-formed XML: the agents can read it
    reason = response.reason
    assert reason.isascii() and "\n" not in reason and len(reason) <= 160
    assert status_reason("a\r\nb") == "a b"
