"""The report wire format, version 1: what every source sends to the collector.

A report is a small graph: `items` (class, local ref, identifiers, attributes) and `relations`
between their refs, plus who sent it, when, how complete the run was (per-collector status) and
whether it is a full report or a delta on a base report. The structs below are the single
definition: the collector validates against them, the agent and scanners build them, and
`cmdb/schema/report-v1.schema.json` is generated from them (`python -m cmdb.jsonschema`).

Unknown values are absent or null, never "" or vendor junk: `cmdb.junk` drops those at the edge.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Iterable, Literal

import msgspec
from msgspec import Meta, Struct, field

from cmdb.model import CI_CLASSES, CLASS_NAMES, REL_TYPE_NAMES

SCHEMA_V1 = "fleetgraph.report/1"
SOURCE_KINDS = ("agent", "ssh", "snmp", "nmap", "ocs", "fusion")

# Bounds that keep a hostile report from costing more than a real one ever would.
MAX_ITEMS = 500_000
MAX_RELATIONS = 1_000_000
MAX_STRING = 65_536
MAX_LIST = 10_000

# Names and refs are checked against these patterns in check_report, with a memo of names already
# seen: a report repeats ~50 attribute names thousands of times, and a per-string regex in the
# decoder costs more than the whole rest of the decode. The JSON Schema still states them.
TOKEN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$"
NAME_PATTERN = r"^[a-z][a-z0-9_.]*$"
Token = Annotated[str, Meta(min_length=1, max_length=128, extra_json_schema={"pattern": TOKEN_PATTERN})]
Name = Annotated[str, Meta(min_length=1, max_length=128, extra_json_schema={"pattern": NAME_PATTERN})]
Text = Annotated[str, Meta(max_length=MAX_STRING)]
Scalar = Text | int | float | bool
AttributeValue = Scalar | None | Annotated[list[Scalar], Meta(max_length=MAX_LIST)]
IdentifierValue = Annotated[str, Meta(min_length=1, max_length=1024)]

SourceKind = Literal[SOURCE_KINDS]  # type: ignore[valid-type]
ClassName = Literal[CLASS_NAMES]  # type: ignore[valid-type]
RelTypeName = Literal[REL_TYPE_NAMES]  # type: ignore[valid-type]
CollectorState = Literal["ok", "failed", "not_applicable"]


class Source(Struct, forbid_unknown_fields=True, omit_defaults=True):
    kind: SourceKind
    id: Token
    version: Annotated[str, Meta(max_length=64)] | None = None


class CollectorStatus(Struct, forbid_unknown_fields=True, omit_defaults=True):
    status: CollectorState
    reason: Annotated[str, Meta(max_length=2048)] | None = None
    duration_ms: Annotated[float, Meta(ge=0)] | None = None
    # In a delta report: this collector ran and found nothing changed since the base report, so
    # its items are left out. Reconcile states nothing and retires nothing for it.
    unchanged: bool = False


class Item(Struct, forbid_unknown_fields=True, omit_defaults=True):
    class_: ClassName = field(name="class")
    ref: Token
    identifiers: dict[Name, IdentifierValue | Annotated[list[IdentifierValue], Meta(max_length=256)]] = {}
    attributes: dict[Name, AttributeValue] = {}
    # Which collector produced the item: reconcile only retires what a complete collector missed.
    collector: Name | None = None
    # A pointer at a CI the source does not own (e.g. the remote end of an outbound connection):
    # reconcile resolves it to an existing CI and never creates one from it.
    reference: bool = False


class Relation(Struct, forbid_unknown_fields=True, omit_defaults=True):
    from_: Token = field(name="from")
    type: RelTypeName
    to: Token
    attributes: dict[Name, AttributeValue] = {}


class Report(Struct, forbid_unknown_fields=True, omit_defaults=True):
    schema: Literal["fleetgraph.report/1"]
    report_id: Annotated[str, Meta(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    source: Source
    collected_at: Annotated[datetime, Meta(tz=True)]
    mode: Literal["full", "delta"] = "full"
    base_report_id: Annotated[str, Meta(min_length=8, max_length=128)] | None = None
    collectors: dict[Name, CollectorStatus] = {}
    items: Annotated[list[Item], Meta(max_length=MAX_ITEMS)] = []
    relations: Annotated[list[Relation], Meta(max_length=MAX_RELATIONS)] = []


class ReportError(ValueError):
    """A report broke a rule of the wire format. `field` is a JSON path, `rule` says what to fix."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule}


_decoder = msgspec.json.Decoder(Report)
_encoder = msgspec.json.Encoder()
_PATH = re.compile(r"^(?P<rule>.*?)(?: - at `(?P<key>key` in `)?(?P<field>[^`]*)`)?$", re.S)


def decode_report(body: bytes) -> Report:
    """Parse and validate a report; raise ReportError naming the field and the rule it broke."""
    try:
        report = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        m = _PATH.match(str(exc))
        field_, rule = (m["field"] or "$"), m["rule"]
        if m["key"]:
            rule = f"a key of this map: {rule}"
        if field_ == "$.schema":
            rule = f"unsupported report schema; this collector accepts {SCHEMA_V1!r}"
        raise ReportError(field_, rule) from None
    except msgspec.DecodeError as exc:
        raise ReportError("$", f"body is not valid JSON ({exc})") from None
    check_report(report)
    return report


_NAME_RE = re.compile(NAME_PATTERN)
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_GOOD_NAMES: set[str] = set()  # names already matched against NAME_PATTERN (bounded below)


def _check_names(names: Iterable[str], where: str) -> None:
    for name in names:
        if name in _GOOD_NAMES:
            continue
        if not _NAME_RE.match(name):
            raise ReportError(where, f"a key of this map: {name!r} does not match {NAME_PATTERN!r} "
                                     "(lower-case letters, digits, '_' and '.')")
        if len(_GOOD_NAMES) < 10_000:
            _GOOD_NAMES.add(name)


def _check_token(value: str, where: str) -> None:
    if not _TOKEN_RE.match(value):
        raise ReportError(where, f"{value!r} does not match {TOKEN_PATTERN!r}")


def check_item(item: Item, where: str) -> None:
    """The rules of one item the types cannot state: ref and name patterns, identifier kinds."""
    _check_token(item.ref, f"{where}.ref")
    _check_names(item.attributes, f"{where}.attributes")
    if item.collector is not None:
        _check_names((item.collector,), f"{where}.collector")
    allowed = CI_CLASSES[item.class_].identifier_kinds
    for kind in item.identifiers:
        if kind not in allowed:
            raise ReportError(f"{where}.identifiers.{kind}",
                              f"{item.class_} is identified by {', '.join(allowed)}, not {kind!r}")


def check_report(report: Report) -> None:
    """Rules the types alone cannot state: names, refs, relation ends, identifier kinds, delta bases."""
    if report.mode == "delta" and not report.base_report_id:
        raise ReportError("$.base_report_id", "a delta report must name the full report it applies to")
    _check_token(report.source.id, "$.source.id")
    _check_names(report.collectors, "$.collectors")
    refs: set[str] = set()
    for i, item in enumerate(report.items):
        if item.ref in refs:
            raise ReportError(f"$.items[{i}].ref", f"duplicate ref {item.ref!r}; refs are unique in a report")
        refs.add(item.ref)
        check_item(item, f"$.items[{i}]")
    for i, rel in enumerate(report.relations):
        for end, ref in (("from", rel.from_), ("to", rel.to)):
            if ref not in refs:
                raise ReportError(f"$.relations[{i}].{end}", f"{ref!r} is not the ref of an item in this report")
        if rel.attributes:
            _check_names(rel.attributes, f"$.relations[{i}].attributes")


def encode_report(report: Report) -> bytes:
    return _encoder.encode(report)


def report_schema() -> dict:
    """The JSON Schema of the wire format, generated from the structs above."""
    schema = msgspec.json.schema(Report)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fleetgraph.dev/schema/report-v1.schema.json"
    schema["title"] = SCHEMA_V1
    return schema
