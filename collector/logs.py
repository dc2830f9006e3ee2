"""The collector's logs: request ids, one access line per request, JSON or text, secrets redacted.

    configure_logging(level, fmt)   root handler on stderr: fmt "text" or "json" (one object a line)
    setup(app)                      X-Request-Id on every response, even a streamed one
    request_context                 the outermost middleware: request id, access line, duration

Every request gets an id: a sane client-supplied `X-Request-Id` (1-64 of A-Z a-z 0-9 . _ -) is
kept, anything else is replaced by a fresh one; it is returned in `X-Request-Id` and carried by
every log record made while the request is handled (a context variable, also inside store calls).

Secrets: the code logs token *names*, never tokens, and never headers. `RedactingFilter`, on the
handler `configure_logging` installs, is the second line: it masks whatever looks like a bearer
credential, an Authorization header, a `token=`/`password=`/`secret=` value, or a long token-like
run of URL-safe characters, in the message, the exception text and every extra field.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from collector.api import PRINCIPAL, REQUEST_ID
from collector.peers import client_address

REQUEST_ID_VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("fleetgraph_request_id",
                                                                            default=None)
LOG_FORMATS = ("text", "json")
ACCESS_LOG = logging.getLogger("fleetgraph.collector.access")
_QUIET_PATHS = ("/healthz", "/metrics")  # polled every few seconds: their successes log at debug
_REQUEST_ID_IN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REDACTED = "[REDACTED]"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# -- redaction -------------------------------------------------------------------------------------
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{4,}")
# Only the value after the key is replaced, so the key needs no prefix: "enrollment_token=" matches
# at "token=", while "token_name=" does not match at all.
_SECRET_VALUE = re.compile(
    r"""(?ix)((?:token|password|passwd|passphrase|secret|api[_-]?key|credential|authorization|community)
    ["']?\s*[:=]\s*)((?:bearer\s+|basic\s+)?\[REDACTED\]|"[^"]*"|'[^']*'|[^\s,;&}\]]+)""")
_TOKEN_LIKE = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{40,}(?![\w-])")
_UPPER, _LOWER, _DIGIT = re.compile("[A-Z]"), re.compile("[a-z]"), re.compile("[0-9]")
# Cheap tests first: most log text holds none of these, and then the patterns above never run.
_ANY_KEY = re.compile(r"(?i)token|passw|secret|api.?key|credential|authoriz|community")
_ANY_SCHEME = re.compile(r"(?i)bearer|basic")
_SECRET_PARAM = re.compile(r"(?i)(token|password|passwd|secret|key|credential|auth)")


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by [REDACTED]."""
    if _ANY_SCHEME.search(text):
        text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    if _ANY_KEY.search(text):
        text = _SECRET_VALUE.sub(lambda m: m[0] if m[2].endswith(REDACTED) else m[1] + REDACTED, text)
    if len(text) < 40:
        return text
    # A token_urlsafe(32) is 43 random characters: upper and lower case and digits, all but surely.
    # Digests, CI ids and "agent-<uuid>" token names are single-case: they stay readable.
    return _TOKEN_LIKE.sub(lambda m: REDACTED if _looks_random(m[0]) else m[0], text)


def _looks_random(run: str) -> bool:
    return bool(_UPPER.search(run) and _LOWER.search(run) and _DIGIT.search(run))


def safe_query(request: web.Request) -> str:
    """The query string for the log, with the value of every secret-sounding parameter masked."""
    parts = []
    for key, value in request.query.items():
        shown = REDACTED if _SECRET_PARAM.search(key) else value
        parts.append(f"{quote(key, safe='.')}={quote(shown[:200], safe='[]')}")
    return "&".join(parts)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (args merged in) and string extras through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        record._redacted = True  # the formatters need not do it again (exception text aside)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID_VAR.get()
        return True


# -- formatters ---------------------------------------------------------------------------------
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "taskName", "_redacted"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the extra fields
    (method, path, status, duration_ms, remote, token_name on access lines) and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        # Each value is redacted on its own: masking the encoded line could break its JSON.
        clean = _unchanged if getattr(record, "_redacted", False) else redact
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": clean(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID_VAR.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in doc:
                doc[key] = clean(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = redact(record.exc_text)
        return json.dumps(doc, default=lambda v: redact(str(v)), ensure_ascii=False)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Control characters as \\xNN: a request path with a newline cannot forge a log line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def _unchanged(text: str) -> str:
    return text


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return redact(f"{line} [request {request_id}]" if request_id else line)


def configure_logging(level: str, fmt: str = "text") -> None:
    """The root handler on stderr with the chosen format, request ids and redaction.
    ValueError (naming the option) for an unknown level or format."""
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise ValueError(f"collector.log_level: expected debug, info, warning or error, got {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"collector.log_format: expected text or json, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # request_context writes the access line; aiohttp's own would repeat it without the request id.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# -- the request context ----------------------------------------------------------------------
def request_id_of(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _REQUEST_ID_IN.match(incoming) else secrets.token_hex(8)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    REQUEST_ID_VAR.set(request_id)  # each request runs in its own task: the value is its own
    started = time.perf_counter()
    status = 499  # the client went away before an answer (nginx's convention)
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        _access_line(request, status, (time.perf_counter() - started) * 1000)


def _access_line(request: web.Request, status: int, duration_ms: float) -> None:
    level = logging.INFO
    if status >= 500:
        level = logging.ERROR
    elif status < 400 and request.path in _QUIET_PATHS:
        level = logging.DEBUG
    if not ACCESS_LOG.isEnabledFor(level):
        return
    principal = request.get(PRINCIPAL)
    query = redact(safe_query(request)) if request.query_string else ""
    path = redact(request.path)  # DELETE /api/v1/tokens/<a token pasted as its name>
    ACCESS_LOG.log(level, "%s %s%s %d %.1fms", request.method, path, f"?{query}" if query else "",
                   status, duration_ms,
                   extra={"request_id": request.get(REQUEST_ID), "method": request.method, "path": path,
                          "query": query or None,
                          "status": status, "duration_ms": round(duration_ms, 2),
                          "remote": client_address(request),
                          "token_name": principal[0] if principal else None,
                          "user_agent": request.headers.get("User-Agent", "")[:200] or None})


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers["X-Request-Id"] = request_id


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_add_request_id)
