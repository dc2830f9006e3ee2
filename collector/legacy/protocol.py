"""The OCS Inventory / FusionInventory agent protocol on the wire: zlib in, zlib XML out.

    inflate_capped(body, limit)     the request XML from the zlib (or gzip) body, bounded
    prolog_reply(freq)              <REPLY><RESPONSE>SEND</RESPONSE><PROLOG_FREQ>..  (zlib)
    inventory_reply()               <REPLY><RESPONSE>no_account_update</RESPONSE>    (zlib)
    error_reply(status, message)    a 4xx the agents can read and log

Both agents POST `zlib.compress(xml)` (header 78 9C). Replies are always zlib-compressed XML:
the OCS agent refuses anything else ("Deflating problem"), and FusionInventory reads it too.
An agent logs an HTTP error as its status line ("Cannot establish communication : 400 ...",
"communication error: 400 ..."), not the body: errors carry the short reason in the status line
as well as in the body.
"""

from __future__ import annotations

import re
import zlib
from xml.sax.saxutils import escape

from aiohttp import web

REPLY_CONTENT_TYPE = "application/x-compress"
PROLOG_FREQ_HOURS = 24  # how often an agent should come back (OCS: hours between inventories)
_INFLATE_STEP = 256 * 1024  # inflate at most this much per call: memory stays bounded
_REASON_CHARS = 160
# Characters XML 1.0 cannot carry: a message that quotes a hostile value must still be readable XML.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class LegacyError(Exception):
    """A refused agent request: HTTP status, a message that says what to do, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def inflate_capped(body: bytes, limit: int) -> bytes:
    """The decompressed request: zlib (what both agents send) or gzip, at most `limit` bytes.
    A compression bomb costs at most `limit` bytes of memory before it is refused."""
    if not body:
        raise LegacyError(400, "empty body: the agent must POST its zlib-compressed XML request")
    inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # zlib or gzip, told by the header
    out = bytearray()
    pending = body
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, min(limit - len(out) + 1, _INFLATE_STEP))  # +1: "over"
            out += chunk
            if len(out) > limit:
                raise LegacyError(413, f"the request XML is larger than {limit} bytes once decompressed; "
                                       "raise collector.max_report_bytes if the inventory is genuine")
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break  # input used up, nothing more to come, and no end of stream: truncated
    except zlib.error as exc:
        raise LegacyError(400, f"the body is not zlib-compressed ({exc}); point an OCS Inventory or "
                               "FusionInventory agent at this URL, or compress the XML with zlib") from None
    if not inflater.eof:
        raise LegacyError(400, "the zlib stream is truncated; the agent must send the complete request")
    return bytes(out)


def _reply(xml: str, status: int = 200, reason: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body = zlib.compress(('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode("utf-8"))
    return web.Response(body=body, status=status, reason=reason, headers=headers,
                        content_type=REPLY_CONTENT_TYPE)


def prolog_reply(prolog_freq: int = PROLOG_FREQ_HOURS) -> web.Response:
    """SEND: the agent is to send its inventory now, and come back in `prolog_freq` hours."""
    return _reply(f"<REPLY><RESPONSE>SEND</RESPONSE><PROLOG_FREQ>{int(prolog_freq)}</PROLOG_FREQ></REPLY>")


def inventory_reply() -> web.Response:
    """The inventory is stored (or was already): nothing for the agent to update."""
    return _reply("<REPLY><RESPONSE>no_account_update</RESPONSE></REPLY>")


def status_reason(message: str) -> str:
    """The message as an HTTP reason phrase: one line of printable ASCII, short."""
    text = "".join(c if " " <= c <= "~" else " " for c in message)
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + "..."


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A refusal the agents log: the reason in the status line, the whole message in the body."""
    xml = (f"<REPLY><RESPONSE>ERROR</RESPONSE><STATUS>{int(status)}</STATUS>"
           f"<ERROR>{escape(_NOT_XML.sub('?', message))}</ERROR></REPLY>")
    return _reply(xml, status=status, reason=status_reason(message), headers=headers)
