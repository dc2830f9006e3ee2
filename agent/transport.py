"""Sending a report to the collector, with the standard library only (the agent stays light).

POST <server>/api/v1/reports, gzip body, bearer token. 202: stored, 200: the collector had this
report_id already (a replay). Anything else raises a typed error carrying the HTTP status and
the collector's own message. The token is only ever put in the Authorization header: it is not
in any error, log line or repr.

HTTPS verifies the collector's certificate and host name against the system CA store, or, with a
`cafile` (agent.ca_file), against that file's CAs only: pinning the fleet's own CA.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from agent import FLEETGRAPH_VERSION

REPORTS_PATH = "/api/v1/reports"
USER_AGENT = f"fleetgraph-agent/{FLEETGRAPH_VERSION}"
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class SendResult:
    status: int  # 202 or 200
    duplicate: bool  # True on 200: the collector already had this report
    bytes_sent: int  # the gzip body
    response: dict | None  # the collector's JSON answer, when it sent one


class TransportError(Exception):
    """The report was not delivered."""


class ServerUnreachable(TransportError):
    """No HTTP answer: DNS, refused connection, timeout, TLS failure."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"collector at {url} is unreachable: {reason}")


class ServerRejected(TransportError):
    """The collector answered with an error status. `message` is its own explanation."""

    def __init__(self, url: str, status: int, message: str | None, code: str | None = None):
        self.url = url
        self.status = status
        self.message = message
        self.code = code  # the collector's machine-readable reason, e.g. "base_unknown"
        hint = _HINTS.get(status, "")
        detail = f": {message}" if message else ""
        super().__init__(f"collector at {url} rejected the report with HTTP {status}{detail}{hint}")


_HINTS = {
    401: " (the agent credential was refused: re-enroll the agent or check its token)",
    403: " (this agent may not write these CIs: check its enrollment)",
    413: " (the report is larger than the collector accepts: raise its limit or send deltas)",
    429: " (the collector is busy: retry later)",
    503: " (the collector is unavailable: retry later)",
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would lose its body or carry the bearer token to another host.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401, ANN001
        return None


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (TLS >= 1.2): the system CAs, or only the CAs in `cafile`."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except FileNotFoundError:
        raise TransportError(f"CA file {cafile} does not exist (agent.ca_file / --ca-file)") from None
    except ssl.SSLError as exc:
        raise TransportError(f"CA file {cafile} holds no usable PEM CA certificate ({exc.reason or exc}); "
                             "pass the PEM of the CA that signed the collector's certificate") from None
    except OSError as exc:
        raise TransportError(f"CA file {cafile} cannot be read: {exc.strerror or exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def unreachable_reason(reason: object, cafile: str | None = None) -> str:
    """Why a connection failed, in words; a failed certificate check says what to do about it."""
    if isinstance(reason, ssl.SSLCertVerificationError):
        trusted = f"the CA in {cafile}" if cafile else "the system CA store"
        return (f"TLS certificate verify failed: {reason.verify_message or reason.reason}; the collector's "
                f"certificate is not trusted by {trusted} (pass the collector's CA with --ca-file / "
                "agent.ca_file)")
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def reports_url(server_url: str) -> str:
    parsed = urllib.parse.urlsplit(server_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"server URL must be http:// or https:// with a host, got {server_url!r}")
    if parsed.username or parsed.password:
        raise ValueError("server URL must not carry credentials; the agent sends its token itself")
    return urllib.parse.urlunsplit(
        (parsed.scheme, parsed.netloc, parsed.path.rstrip("/") + REPORTS_PATH, "", ""))


def _error_message(raw: bytes) -> str | None:
    """The collector's explanation from an error body: {"error": ...}, {"field","rule"}, text."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE]
    if isinstance(doc, dict):
        error = doc.get("error", doc.get("message", doc.get("detail")))
        if isinstance(error, dict):
            doc, error = error, error.get("message")
        if error is None and "rule" in doc:
            error = doc["rule"]
        if "field" in doc and "rule" in doc and isinstance(doc["rule"], str):
            error = f"{doc['field']}: {doc['rule']}"
        if error is not None:
            return str(error)[:_MAX_MESSAGE]
    return text[:_MAX_MESSAGE]


def _error_code(raw: bytes) -> str | None:
    """The `code` of a JSON error body ({"error": ..., "code": "base_unknown"}), if any."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else None


def send_report(server_url: str, token: str, body: bytes, timeout: float = 30.0, *,
                cafile: str | None = None) -> SendResult:
    """POST an encoded report (JSON bytes) gzip-compressed; raise ServerRejected/ServerUnreachable."""
    if not token or any(c in token for c in "\r\n"):
        raise ValueError("the agent token is empty or malformed")
    url = reports_url(server_url)
    payload = gzip.compress(body, compresslevel=6)
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {token}",
    })
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(cafile)))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            raw = response.read(_MAX_ERROR_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read(_MAX_ERROR_BODY) if exc.fp else b""
        raise ServerRejected(url, exc.code, _error_message(raw), _error_code(raw)) from None
    except urllib.error.URLError as exc:
        raise ServerUnreachable(url, unreachable_reason(exc.reason, cafile)) from None
    except (TimeoutError, socket.timeout):
        raise ServerUnreachable(url, f"no answer within {timeout:g}s") from None
    except (ConnectionError, OSError) as exc:  # e.g. reset while reading the answer
        raise ServerUnreachable(url, exc.strerror or type(exc).__name__) from None
    if status not in (200, 202):
        raise ServerRejected(url, status, _error_message(raw))
    try:
        answer = json.loads(raw) if raw.strip() else None
    except ValueError:
        answer = None
    return SendResult(status=status, duplicate=status == 200, bytes_sent=len(payload),
                      response=answer if isinstance(answer, dict) else None)
