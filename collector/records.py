"""The records API: change records and incidents (cmdb.records), read by readers, written by
operators (collector.roles ROUTE_ACCESS). The actor of every write is the caller's token name.

    GET   /api/v1/changes                     ?state= &ci= &open=true &limit=
    POST  /api/v1/changes                     {type, title, description, planned_start, planned_end, cis, expected}
    GET   /api/v1/changes/{number}            the change, with its events
    PATCH /api/v1/changes/{number}            {planned_start, planned_end, add_cis, expected} (before approval)
    POST  /api/v1/changes/{number}/transitions {to, note}   (approve: authorize -> scheduled)
    GET   /api/v1/incidents                   ?state= &ci= &open=true &limit=
    POST  /api/v1/incidents                   {title, description, impact, urgency, cis}
    GET   /api/v1/incidents/{number}          the incident, with its events
    PATCH /api/v1/incidents/{number}          {state, impact, urgency, assignee, resolution, note}
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from cmdb.records import (
    CHANGE_STATES,
    INCIDENT_STATES,
    ChangeRecord,
    ExpectedOutcome,
    Incident,
    NewChange,
    NewIncident,
    RecordError,
    RecordEvent,
    parse_level,
)
from collector.api import PRINCIPAL, STORE_KEY, APIError, call_store, json_response

routes = web.RouteTableDef()

MAX_BODY = 256 * 1024
MAX_LIMIT = 1000
Level = int | Literal["high", "medium", "low"]
CIId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]


class ChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["standard", "normal", "emergency"]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    planned_start: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    planned_end: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    cis: Annotated[list[CIId], msgspec.Meta(max_length=10_000)] = []
    expected: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=100)] = []


class ChangePatch(msgspec.Struct, forbid_unknown_fields=True):
    planned_start: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    planned_end: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    add_cis: Annotated[list[CIId], msgspec.Meta(max_length=10_000)] = []
    expected: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=100)] | None = None


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[str, msgspec.Meta(max_length=32)]
    note: Annotated[str, msgspec.Meta(max_length=8192)] | None = None


class IncidentIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    impact: Level = 2
    urgency: Level = 2
    cis: Annotated[list[CIId], msgspec.Meta(max_length=10_000)] = []


class IncidentPatch(msgspec.Struct, forbid_unknown_fields=True):
    state: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    impact: Level | None = None
    urgency: Level | None = None
    assignee: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    resolution: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    note: Annotated[str, msgspec.Meta(max_length=8192)] | None = None


class EventOut(msgspec.Struct):
    id: str
    event: str
    actor: str
    at: datetime
    data: dict[str, Any]


class ChangeOut(msgspec.Struct):
    number: str
    type: str
    state: str
    title: str
    description: str | None
    planned_start: datetime | None
    planned_end: datetime | None
    expected: list[dict[str, Any]]
    verification: str | None
    verified_at: datetime | None
    origin: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    cis: list[str]
    evidence: list[str]
    events: list[EventOut] | None = None


class IncidentOut(msgspec.Struct):
    number: str
    state: str
    title: str
    description: str | None
    impact: int
    urgency: int
    priority: int
    assignee: str | None
    resolution: str | None
    origin: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    cis: list[str]
    drift: list[str]
    events: list[EventOut] | None = None


class RecordList(msgspec.Struct):
    items: list[Any]
    count: int
    limit: int


def change_out(c: ChangeRecord, events: list[RecordEvent] | None = None) -> ChangeOut:
    return ChangeOut(c.number, c.type, c.state, c.title, c.description, c.planned_start, c.planned_end,
                     [e.to_json() for e in c.expected], c.verification, c.verified_at, c.origin, c.created_by,
                     c.created_at, c.updated_at, c.approved_by, c.approved_at, list(c.cis), list(c.evidence),
                     None if events is None else [_event(e) for e in events])


def incident_out(i: Incident, events: list[RecordEvent] | None = None) -> IncidentOut:
    return IncidentOut(i.number, i.state, i.title, i.description, i.impact, i.urgency, i.priority, i.assignee,
                       i.resolution, i.origin, i.created_by, i.created_at, i.updated_at, i.resolved_at,
                       i.closed_at, list(i.cis), list(i.drift), None if events is None else [_event(e) for e in events])


def _event(e: RecordEvent) -> EventOut:
    return EventOut(e.event_id, e.event, e.actor, e.at, e.data)


async def _body(request: web.Request, shape: type[msgspec.Struct]) -> Any:
    if request.content_type != "application/json":
        raise APIError(415, "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise APIError(413, f"a record request is at most {MAX_BODY} bytes")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise APIError(413, f"a record request is at most {MAX_BODY} bytes")
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as exc:
        raise APIError(400, f"invalid request: {exc}", rule="validation") from None
    except msgspec.DecodeError as exc:
        raise APIError(400, f"the body is not JSON: {exc}", rule="json") from None


def _actor(request: web.Request) -> str:
    principal = request.get(PRINCIPAL)
    return principal[0] if principal else "anonymous"


def _record_error(exc: RecordError) -> APIError:
    status = {"not_found": 404, "bad_transition": 409, "bad_state": 409, "no_window": 409}.get(exc.rule, 400)
    return APIError(status, str(exc), rule=exc.rule)


async def _run(request: web.Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await call_store(request, fn, *args, **kwargs)
    except RecordError as exc:
        raise _record_error(exc) from None


def _list_params(request: web.Request, states: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(request.query) - {"state", "ci", "open", "limit"}
    if unknown:
        raise APIError(400, f"unknown query parameter {sorted(unknown)[0]!r}; use state, ci, open, limit",
                       parameter=sorted(unknown)[0])
    state = request.query.get("state")
    if state is not None and state not in states:
        raise APIError(400, f"state must be one of {', '.join(states)}", parameter="state")
    open_raw = request.query.get("open", "false").lower()
    if open_raw not in ("true", "false"):
        raise APIError(400, "open is true or false", parameter="open")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise APIError(400, "limit must be an integer", parameter="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise APIError(400, f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
    ci = request.query.get("ci")
    if ci is not None and (len(ci) != 32 or any(c not in "0123456789abcdef" for c in ci)):
        raise APIError(400, "ci is a CI id (32 hex characters)", parameter="ci")
    return {"state": state, "ci_id": ci, "open_only": open_raw == "true", "limit": limit}


def _expected(raw: list[dict[str, Any]]) -> tuple[ExpectedOutcome, ...]:
    try:
        return tuple(ExpectedOutcome.from_json(e) for e in raw)
    except RecordError as exc:
        raise _record_error(exc) from None


# -- changes -------------------------------------------------------------------------------------

@routes.get("/api/v1/changes")
async def list_changes(request: web.Request) -> web.Response:
    return await _list(request, CHANGE_STATES, "list_changes", change_out)


@routes.post("/api/v1/changes")
async def create_change(request: web.Request) -> web.Response:
    body: ChangeIn = await _body(request, ChangeIn)
    new = NewChange(body.type, body.title, _actor(request), body.description, body.planned_start,
                    body.planned_end, _expected(body.expected), tuple(body.cis))
    store = request.config_dict[STORE_KEY]
    change = await _run(request, store.create_change, new)
    return json_response(change_out(change), status=201,
                         headers={"Location": f"/api/v1/changes/{change.number}"})


async def _list(request: web.Request, states: tuple[str, ...], method: str, out: Any) -> web.Response:
    params = _list_params(request, states)
    records = await _run(request, getattr(request.config_dict[STORE_KEY], method), **params)
    return json_response(RecordList([out(r) for r in records], len(records), params["limit"]))


async def _record_or_404(request: web.Request, method: str, what: str) -> Any:
    """The record named in the path (store.get_change / get_incident), or 404."""
    number = request.match_info["number"]
    record = await _run(request, getattr(request.config_dict[STORE_KEY], method), number)
    if record is None:
        raise APIError(404, f"no {what} {number[:40]}; list them at /api/v1/{what}s")
    return record


async def _show(request: web.Request, method: str, what: str, out: Any) -> web.Response:
    record = await _record_or_404(request, method, what)
    events = await _run(request, request.config_dict[STORE_KEY].record_events, 0, 1000, record.number)
    return json_response(out(record, events))


async def _change_or_404(request: web.Request) -> ChangeRecord:
    return await _record_or_404(request, "get_change", "change")


@routes.get("/api/v1/changes/{number}")
async def show_change(request: web.Request) -> web.Response:
    return await _show(request, "get_change", "change", change_out)


@routes.patch("/api/v1/changes/{number}")
async def update_change(request: web.Request) -> web.Response:
    change = await _change_or_404(request)
    body: ChangePatch = await _body(request, ChangePatch)
    store = request.config_dict[STORE_KEY]
    updated = await _run(request, store.update_change, change.number, _actor(request),
                         planned_start=body.planned_start, planned_end=body.planned_end, add_cis=body.add_cis,
                         expected=None if body.expected is None else _expected(body.expected))
    return json_response(change_out(updated))


@routes.post("/api/v1/changes/{number}/transitions")
async def transition_change(request: web.Request) -> web.Response:
    change = await _change_or_404(request)
    body: TransitionIn = await _body(request, TransitionIn)
    store = request.config_dict[STORE_KEY]
    moved = await _run(request, store.transition_change, change.number, body.to, _actor(request), body.note)
    return json_response(change_out(moved))


# -- incidents -----------------------------------------------------------------------------------

@routes.get("/api/v1/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    return await _list(request, INCIDENT_STATES, "list_incidents", incident_out)


@routes.post("/api/v1/incidents")
async def create_incident(request: web.Request) -> web.Response:
    body: IncidentIn = await _body(request, IncidentIn)
    try:
        new = NewIncident(body.title, _actor(request), parse_level("impact", body.impact),
                          parse_level("urgency", body.urgency), body.description, tuple(body.cis))
    except RecordError as exc:
        raise _record_error(exc) from None
    store = request.config_dict[STORE_KEY]
    incident = await _run(request, store.create_incident, new)
    return json_response(incident_out(incident), status=201,
                         headers={"Location": f"/api/v1/incidents/{incident.number}"})


async def _incident_or_404(request: web.Request) -> Incident:
    return await _record_or_404(request, "get_incident", "incident")


@routes.get("/api/v1/incidents/{number}")
async def show_incident(request: web.Request) -> web.Response:
    return await _show(request, "get_incident", "incident", incident_out)


@routes.patch("/api/v1/incidents/{number}")
async def update_incident(request: web.Request) -> web.Response:
    incident = await _incident_or_404(request)
    body: IncidentPatch = await _body(request, IncidentPatch)
    try:
        impact = None if body.impact is None else parse_level("impact", body.impact)
        urgency = None if body.urgency is None else parse_level("urgency", body.urgency)
    except RecordError as exc:
        raise _record_error(exc) from None
    store = request.config_dict[STORE_KEY]
    updated = await _run(request, store.update_incident, incident.number, _actor(request), state=body.state,
                         impact=impact, urgency=urgency, assignee=body.assignee, resolution=body.resolution,
                         note=body.note)
    return json_response(incident_out(updated))


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


_NUMBER = _param("number", "path", {"type": "string", "maxLength": 40}, "CHG0000001 / INC0000001")
_LIST_PARAMS = [_param("ci", "query", {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "only records naming this CI"),
                _param("open", "query", {"enum": ["true", "false"]}, "only open records"),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "most records")]


def _request_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _openapi() -> dict[str, Any]:
    from collector.openapi import error, json_body

    bad = error("the request is malformed or breaks a rule (named in the body)")
    missing = error("no such record")
    refused = error("the state machine or the record's state refuses it (the body says why)")
    body_errors = {"400": bad, "413": error("the body is too large"), "415": error("send application/json")}
    return {
        "paths": {
            "/api/v1/changes": {
                "get": {"summary": "change records, newest first",
                        "parameters": [_param("state", "query", {"enum": list(CHANGE_STATES)}, "one state"),
                                       *_LIST_PARAMS],
                        "responses": {"200": json_body("RecordList", "a page of changes"), "400": bad}},
                "post": {"summary": "create a change record (state new)", "requestBody": _request_body("ChangeIn"),
                         "responses": {"201": json_body("ChangeOut", "the change"), **body_errors}},
            },
            "/api/v1/changes/{number}": {
                "get": {"summary": "one change with its evidence and events", "parameters": [_NUMBER],
                        "responses": {"200": json_body("ChangeOut", "the change"), "400": bad, "404": missing}},
                "patch": {"summary": "plan a change (window, CIs, expected outcome) before it is approved",
                          "parameters": [_NUMBER], "requestBody": _request_body("ChangePatch"),
                          "responses": {"200": json_body("ChangeOut", "the change"), "404": missing,
                                        "409": refused, **body_errors}},
            },
            "/api/v1/changes/{number}/transitions": {
                "post": {"summary": "move a change along its state machine (authorize -> scheduled approves it)",
                         "parameters": [_NUMBER], "requestBody": _request_body("TransitionIn"),
                         "responses": {"200": json_body("ChangeOut", "the change"), "404": missing,
                                       "409": refused, **body_errors}},
            },
            "/api/v1/incidents": {
                "get": {"summary": "incidents, newest first",
                        "parameters": [_param("state", "query", {"enum": list(INCIDENT_STATES)}, "one state"),
                                       *_LIST_PARAMS],
                        "responses": {"200": json_body("RecordList", "a page of incidents"), "400": bad}},
                "post": {"summary": "open an incident", "requestBody": _request_body("IncidentIn"),
                         "responses": {"201": json_body("IncidentOut", "the incident"), **body_errors}},
            },
            "/api/v1/incidents/{number}": {
                "get": {"summary": "one incident with its drift and events", "parameters": [_NUMBER],
                        "responses": {"200": json_body("IncidentOut", "the incident"), "400": bad, "404": missing}},
                "patch": {"summary": "move, re-prioritise, assign or resolve an incident", "parameters": [_NUMBER],
                          "requestBody": _request_body("IncidentPatch"),
                          "responses": {"200": json_body("IncidentOut", "the incident"), "404": missing,
                                        "409": refused, **body_errors}},
            },
        },
        "schemas": (ChangeIn, ChangePatch, TransitionIn, IncidentIn, IncidentPatch, ChangeOut, IncidentOut,
                    RecordList),
    }


OPENAPI = _openapi()
