"""Safe parsing of the agents' XML: the shape it builds, and refusal of everything hostile (every
folder under tests/fixtures/legacy/hostile/, plus generated documents past the bounds)."""

from __future__ import annotations

import time

import pytest

from collector.legacy import xml as legacy_xml
from collector.legacy.protocol import LegacyError
from collector.legacy.routes import _check_request
from collector.legacy.xml import TEXT, XMLRefused, parse_request

from .conftest import Case, cases

HOSTILE = cases("hostile")


def test_the_shape_of_a_request():
    request = parse_request(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<REQUEST><CONTENT>'
        b"<HARDWARE><NAME> vm </NAME><NAME>second</NAME><EMPTY></EMPTY><MEMORY>24105</MEMORY></HARDWARE>"
        b"<OPERATINGSYSTEM><TIMEZONE><NAME>UTC</NAME><OFFSET>+0000</OFFSET></TIMEZONE></OPERATINGSYSTEM>"
        b"<SOFTWARES><NAME>a &amp; b</NAME></SOFTWARES><SOFTWARES><NAME>c</NAME><X><Y><Z>deep</Z></Y></X></SOFTWARES>"
        b"<VERSIONCLIENT>FusionInventory-Agent_v2.6-3</VERSIONCLIENT>"
        b"</CONTENT><DEVICEID>vm-2026-11-21-20-37-42</DEVICEID><QUERY>INVENTORY</QUERY></REQUEST>")
    assert request.query == "INVENTORY" and request.device_id == "vm-2026-11-21-20-37-42"
    assert request.entries("HARDWARE") == [{"NAME": "vm", "MEMORY": "24105"}]  # first value kept, empty absent
    assert request.entries("OPERATINGSYSTEM") == [{"TIMEZONE": {"NAME": "UTC", "OFFSET": "+0000"}}]
    assert request.entries("SOFTWARES") == [{"NAME": "a & b"}, {"NAME": "c", "X": {}}]  # deeper levels ignored
    assert request.entries("VERSIONCLIENT") == [{TEXT: "FusionInventory-Agent_v2.6-3"}]
    assert request.entries("NETWORKS") == []


def test_a_prolog_has_no_content():
    request = parse_request(b"<REQUEST><DEVICEID>x-1</DEVICEID><QUERY>PROLOG</QUERY><TOKEN>1</TOKEN></REQUEST>")
    assert (request.query, request.device_id, request.content) == ("PROLOG", "x-1", None)


def test_long_text_is_cut_not_refused():
    request = parse_request(b"<REQUEST><CONTENT><SOFTWARES><COMMENTS>" + b"x" * 100_000
                            + b"</COMMENTS></SOFTWARES></CONTENT></REQUEST>")
    assert request.entries("SOFTWARES")[0]["COMMENTS"] == "x" * legacy_xml.MAX_FIELD_CHARS


def test_other_encodings_are_read():
    request = parse_request('<?xml version="1.0" encoding="ISO-8859-1"?><REQUEST><DEVICEID>caf\xe9</DEVICEID>'
                            "</REQUEST>".encode("latin-1"))
    assert request.device_id == "café"


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_documents_are_refused_quickly(case: Case):
    started = time.monotonic()
    with pytest.raises((XMLRefused, LegacyError)) as refused:
        _check_request(parse_request(case.xml))
    assert time.monotonic() - started < 2, "a hostile document must not cost the collector time"
    assert refused.value.status == case.expected["status"]
    assert case.expected["error"] in refused.value.message


def test_too_many_elements(monkeypatch):
    monkeypatch.setattr(legacy_xml, "MAX_ELEMENTS", 1000)
    with pytest.raises(XMLRefused) as refused:
        parse_request(b"<REQUEST><CONTENT>" + b"<PROCESSES><CMD>x</CMD></PROCESSES>" * 600 + b"</CONTENT></REQUEST>")
    assert refused.value.status == 413 and "more than 1000 elements" in refused.value.message


def test_too_many_entries_in_a_section(monkeypatch):
    monkeypatch.setattr(legacy_xml, "MAX_ENTRIES_PER_SECTION", 10)
    with pytest.raises(XMLRefused) as refused:
        parse_request(b"<REQUEST><CONTENT>" + b"<SOFTWARES><NAME>x</NAME></SOFTWARES>" * 11 + b"</CONTENT></REQUEST>")
    assert refused.value.status == 413 and "SOFTWARES" in refused.value.message


def test_too_many_fields_in_an_entry():
    fields = b"".join(b"<F%d>x</F%d>" % (i, i) for i in range(legacy_xml.MAX_FIELDS_PER_ENTRY + 1))
    with pytest.raises(XMLRefused, match="fields"):
        parse_request(b"<REQUEST><CONTENT><HARDWARE>" + fields + b"</HARDWARE></CONTENT></REQUEST>")


def test_deep_nesting_costs_no_recursion_and_is_bounded_by_the_element_count():
    started = time.monotonic()
    deep = 200_000
    parse_request(b"<REQUEST>" + b"<a>" * deep + b"</a>" * deep + b"</REQUEST>")  # iterative: no stack to blow
    deeper = legacy_xml.MAX_ELEMENTS + 1
    with pytest.raises(XMLRefused) as refused:
        parse_request(b"<REQUEST>" + b"<a>" * deeper + b"</a>" * deeper + b"</REQUEST>")
    assert refused.value.status == 413 and time.monotonic() - started < 10
