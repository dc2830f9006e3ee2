"""Safe parsing of the OCS Inventory / FusionInventory request XML into a small typed shape.

    parse_request(data) -> LegacyRequest      raises XMLRefused (a 4xx the handler answers)

The XML comes from the network: it is parsed by defusedxml's expat parser with DTDs forbidden
(so no entity can be declared: no billion laughs, no quadratic blowup, no external entity or
DTD fetch), and streamed into a builder that keeps only what the mapping reads, with hard
bounds on elements, entries per section and characters per field. Nothing builds a full
ElementTree, so a hostile document costs at most its (already capped) size in memory.

The shape follows the protocol: `<REQUEST>` holds `<DEVICEID>`, `<QUERY>` and, for an
inventory, `<CONTENT>` whose children are sections (`<SOFTWARES>`, `<NETWORKS>`, ...) repeated
once per entry; an entry's children are fields with text, a few with sub-fields one level down
(`<TIMEZONE><NAME>..</NAME><OFFSET>..</OFFSET></TIMEZONE>`). Deeper nesting is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

# Bounds far above what real agents send (a stock Debian machine: ~20,000 elements, 900 software
# entries), low enough that a hostile document cannot make the collector hold much.
MAX_ELEMENTS = 500_000
MAX_ENTRIES_PER_SECTION = 100_000
MAX_FIELDS_PER_ENTRY = 256
MAX_FIELD_CHARS = 8_192  # longer text (a package description) is cut here, not refused
MAX_HEADER_CHARS = 1_024  # DEVICEID, QUERY

TEXT = "#text"  # the key of a section's own text, for sections that are one value

# A field's value: its text, or for a field with sub-fields, {sub-field: text}.
FieldValue = str | dict[str, str]
Entry = dict[str, FieldValue]


class XMLRefused(ValueError):
    """The request XML cannot be accepted; `message` says why and what to do, `status` is the HTTP
    status to answer (400 malformed or hostile, 413 too large)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class LegacyRequest:
    query: str | None  # "PROLOG", "INVENTORY", ... as sent (stripped), None when absent
    device_id: str | None
    # section name -> its entries, in document order; None when the request has no <CONTENT>
    content: dict[str, list[Entry]] | None = None

    def entries(self, section: str) -> list[Entry]:
        return (self.content or {}).get(section, [])


@dataclass(slots=True)
class _Builder:
    """An expat target (start/end/data/close) that builds a LegacyRequest as the parser streams."""

    depth: int = 0
    elements: int = 0
    root: str | None = None
    query: str | None = None
    device_id: str | None = None
    content: dict[str, list[Entry]] | None = None
    # the open element names below the root, and the text of the innermost one
    path: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    text_len: int = 0
    entry: Entry | None = None
    sub: dict[str, str] | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise XMLRefused(f"the XML has more than {MAX_ELEMENTS} elements; no inventory is that large",
                             status=413)
        self.depth += 1
        self.text, self.text_len = [], 0
        if self.depth == 1:
            self.root = tag
            if tag != "REQUEST":
                raise XMLRefused(f"the XML root element is <{tag[:64]}>, not <REQUEST>: this endpoint takes "
                                 "OCS Inventory / FusionInventory agent requests")
            return
        self.path.append(tag)
        if self.depth == 2 and tag == "CONTENT" and self.content is None:
            self.content = {}
        elif self.depth == 3 and self._in_content():
            entries = self.content.setdefault(tag, [])  # type: ignore[union-attr]
            if len(entries) >= MAX_ENTRIES_PER_SECTION:
                raise XMLRefused(f"section {tag[:64]} has more than {MAX_ENTRIES_PER_SECTION} entries",
                                 status=413)
            self.entry = {}
            entries.append(self.entry)
        elif self.depth == 4 and self.entry is not None and tag not in self.entry:
            if len(self.entry) >= MAX_FIELDS_PER_ENTRY:
                raise XMLRefused(f"an entry of section {self.path[1][:64]} has more than "
                                 f"{MAX_FIELDS_PER_ENTRY} fields")
            self.sub = None
        elif self.depth == 5 and self.entry is not None and self.sub is None:
            parent = self.path[2]
            if parent not in self.entry:  # a field that has sub-fields (repeats keep the first)
                self.sub = {}
                self.entry[parent] = self.sub

    def data(self, text: str) -> None:
        room = MAX_FIELD_CHARS - self.text_len
        if room > 0 and self.depth >= 2:
            self.text.append(text[:room])
            self.text_len += min(len(text), room)

    def end(self, tag: str) -> None:
        value = "".join(self.text).strip()
        self.text, self.text_len = [], 0
        if self.depth == 2:
            if tag == "QUERY" and self.query is None:
                self.query = value[:MAX_HEADER_CHARS]
            elif tag == "DEVICEID" and self.device_id is None:
                self.device_id = value[:MAX_HEADER_CHARS]
        elif self.depth == 3 and self._in_content():
            if value and self.entry is not None and not self.entry:
                self.entry[TEXT] = value  # a section that is one value: <VERSIONCLIENT>..</VERSIONCLIENT>
            self.entry = None
        elif self.depth == 4 and self.entry is not None:
            if tag not in self.entry and value:  # a repeated field keeps its first value
                self.entry[tag] = value
            self.sub = None
        elif self.depth == 5 and self.sub is not None and value and tag not in self.sub:
            self.sub[tag] = value
        if self.depth >= 2:
            self.path.pop()
        self.depth -= 1

    def close(self) -> LegacyRequest:
        return LegacyRequest(query=self.query or None, device_id=self.device_id or None, content=self.content)

    def _in_content(self) -> bool:
        return self.content is not None and len(self.path) >= 1 and self.path[0] == "CONTENT"


def parse_request(data: bytes) -> LegacyRequest:
    """The request in `data` (the decompressed body). XMLRefused when it is not well-formed XML,
    declares a DTD or entities, exceeds the bounds, or is not an agent <REQUEST>."""
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        return parser.close()
    except XMLRefused:
        raise
    except DefusedXmlException as exc:
        raise XMLRefused(f"the XML declares a DTD or entities ({type(exc).__name__}); agents never send "
                         "one, and this collector refuses it") from None
    except ParseError as exc:
        raise XMLRefused(f"the body is not well-formed XML ({exc}); send the agent's XML request "
                         "zlib-compressed") from None
    except (LookupError, UnicodeError) as exc:  # an unknown or broken declared encoding
        raise XMLRefused(f"the XML's character encoding cannot be read ({exc}); send UTF-8") from None
