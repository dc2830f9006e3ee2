"""The wire format: valid reports decode, every kind of bad report names its field and rule,
and the published JSON Schema is exactly what the structs generate."""

from __future__ import annotations

import json

import jsonschema
import pytest

from cmdb.jsonschema import SCHEMA_PATH, render
from cmdb.report import ReportError, decode_report, encode_report, report_schema


def valid_doc() -> dict:
    return {
        "schema": "fleetgraph.report/1",
        "report_id": "6f1c2d3e-aaaa-bbbb-cccc-000000000001",
        "source": {"kind": "agent", "id": "agent-1", "version": "0.1.0"},
        "collected_at": "2026-11-21T10:00:00Z",
        "mode": "full",
        "collectors": {"hardware": {"status": "ok", "duration_ms": 3.5},
                       "software.rpm": {"status": "not_applicable"}},
        "items": [
            {"class": "Computer", "ref": "computer",
             "identifiers": {"hostname": "web-01", "mac": ["52:54:00:12:34:56"]},
             "attributes": {"memory_bytes": 8 * 2**30, "cpu_model": "Xeon", "virtual": True, "load": 0.5,
                            "tags": ["a", 1], "serial": None}},
            {"class": "Interface", "ref": "if:eth0", "identifiers": {"name": "eth0"}},
        ],
        "relations": [{"from": "computer", "type": "HAS_INTERFACE", "to": "if:eth0"}],
    }


def encode(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def test_valid_report_round_trips():
    report = decode_report(encode(valid_doc()))
    assert report.items[0].class_ == "Computer"
    assert report.relations[0].from_ == "computer"
    assert report.collected_at.tzinfo is not None
    again = decode_report(encode_report(report))
    assert again == report


def mutate(path: str, value) -> dict:
    doc = valid_doc()
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is KeyError:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return doc


BAD = [
    # (what is wrong, mutation path, new value, expected field, words in the rule)
    ("wrong schema version", "schema", "fleetgraph.report/2", "$.schema", "unsupported report schema"),
    ("missing report_id", "report_id", KeyError, "$", "missing required field `report_id`"),
    ("report_id wrong type", "report_id", 42, "$.report_id", "Expected `str`"),
    ("report_id with shell chars", "report_id", "abcdefgh; rm -rf /", "$.report_id", "matching regex"),
    ("unknown source kind", "source.kind", "telnet", "$.source.kind", "Invalid enum value"),
    ("naive timestamp", "collected_at", "2026-11-21T10:00:00", "$.collected_at", "timezone"),
    ("not a timestamp", "collected_at", "yesterday", "$.collected_at", "datetime"),
    ("unknown mode", "mode", "partial", "$.mode", "Invalid enum value"),
    ("unknown collector state", "collectors.hardware.status", "meh", "$.collectors[...].status", "enum"),
    ("unknown CI class", "items.0.class", "Toaster", "$.items[0].class", "Invalid enum value"),
    ("attribute object", "items.0.attributes.cpu_model", {"x": 1}, "$.items[0].attributes[...]", "Expected"),
    ("bad attribute name", "items.0.attributes", {"Bad Name": 1}, "$.items[0].attributes", "a key of this map"),
    ("empty identifier", "items.0.identifiers.hostname", "", "$.items[0].identifiers[...]", "length"),
    ("identifier kind not of class", "items.1.identifiers", {"serial": "x"}, "$.items[1].identifiers.serial",
     "Interface is identified by"),
    ("unknown relation type", "relations.0.type", "LOVES", "$.relations[0].type", "Invalid enum value"),
    ("relation to unknown ref", "relations.0.to", "if:eth9", "$.relations[0].to", "not the ref of an item"),
    ("duplicate ref", "items.1.ref", "computer", "$.items[1].ref", "duplicate ref"),
    ("unknown top-level field", "extra", 1, "$", "unknown field `extra`"),
    ("delta without base", "mode", "delta", "$.base_report_id", "must name the full report"),
]


@pytest.mark.parametrize("what,path,value,field,rule", BAD, ids=[b[0] for b in BAD])
def test_bad_report_names_field_and_rule(what, path, value, field, rule):
    with pytest.raises(ReportError) as err:
        decode_report(encode(mutate(path, value)))
    assert err.value.field == field, str(err.value)
    assert rule.lower() in err.value.rule.lower(), str(err.value)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"schema": "fleetgraph.report/1"'])
def test_malformed_json_is_a_report_error(body):
    with pytest.raises(ReportError) as err:
        decode_report(body)
    assert err.value.field.startswith("$")


def test_published_schema_matches_structs():
    assert SCHEMA_PATH.read_text() == render(), "run `make schema` to regenerate cmdb/schema/report-v1.schema.json"


def test_json_schema_agrees_with_structs():
    """Third-party validators reading the published schema accept and reject what we do."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    validator.validate(valid_doc())
    for _, path, value, _, _ in BAD:
        if path in ("relations.0.to", "items.1.ref", "mode", "items.1.identifiers", "collected_at"):
            continue  # cross-field rules and tz-awareness the JSON Schema cannot state
        assert not validator.is_valid(mutate(path, value)), path
    assert report_schema()["title"] == "fleetgraph.report/1"
