"""Sending a report to the collector, with the standard library only (the agent stays light).

POST <server>/api/v1/reports, gzip body, bearer token. 202: stored, 200: the collector had this
report_id already (a replay). Anything else raises a typed error carrying the HTTP status and
the collector's own message. The token is only ever put in the Authorization header: it is not
in any error, log line or repr.

HTTPS verifies the collector's certificate and host name against the system CA store, or, with a
`cafile` (agent.ca_file), against that file's CAs only: pinning the fleet's own CA.

The POST is one HTTP/1.1 request on its own connection (`Connection: close`), written on a
socket: importing http.client and urllib.request (and the email package they pull in) costs
more than a whole no-change run has to spend. When a proxy is configured in the environment
(`http_proxy`, `https_proxy`, ...), urllib.request sends it instead, as it honours those (and
`no_proxy`). Redirects are never followed on either path: a redirected POST would lose its body
or carry the bearer token to another host.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import urllib.parse
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from agent import FLEETGRAPH_VERSION

if TYPE_CHECKING:
    import ssl

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


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context (TLS >= 1.2): the system CAs, or only the CAs in `cafile`."""
    import ssl  # here: a run over plain HTTP does not pay for it

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
    ssl = sys.modules.get("ssl")  # not imported: no TLS was attempted
    if ssl is not None and isinstance(reason, ssl.SSLCertVerificationError):
        trusted = f"the CA in {cafile}" if cafile else "the system CA store"
        return (f"TLS certificate verify failed: {reason.verify_message or reason.reason}; the collector's "
                f"certificate is not trusted by {trusted} (pass the collector's CA with --ca-file / "
                "agent.ca_file)")
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def reports_url(server_url: str) -> str:
    # The URL's host and path go into the request line and Host header verbatim: no whitespace or
    # control characters (a CR/LF there would inject headers).
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in server_url.strip()):
        raise ValueError(f"server URL must not contain spaces or control characters, got {server_url!r}")
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
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {token}",
    }
    post = _post_through_urllib if proxy_configured() else _post
    status, raw = post(url, payload, headers, timeout, cafile)
    if not 200 <= status < 300:
        raise ServerRejected(url, status, _error_message(raw), _error_code(raw))
    if status not in (200, 202):
        raise ServerRejected(url, status, _error_message(raw))
    try:
        answer = json.loads(raw) if raw.strip() else None
    except ValueError:
        answer = None
    return SendResult(status=status, duplicate=status == 200, bytes_sent=len(payload),
                      response=answer if isinstance(answer, dict) else None)


def proxy_configured() -> bool:
    """A `<scheme>_proxy` variable is set (urllib.request's own rule; no_proxy alone is none)."""
    return any(value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
               for name, value in os.environ.items())


class _Answer:
    """Reads one HTTP/1.1 response from a socket: status, headers, and the start of the body."""

    MAX_LINE = 65536
    MAX_HEADERS = 100

    def __init__(self, sock: socket.socket):
        self.reader = sock.makefile("rb")

    def _line(self) -> bytes:
        line = self.reader.readline(self.MAX_LINE + 1)
        if len(line) > self.MAX_LINE:
            raise _BadAnswer("a header line longer than 64 KiB")
        return line

    def read(self, limit: int) -> tuple[int, bytes]:
        """(status, at most `limit` bytes of the body); 1xx interim answers are skipped."""
        while True:
            line = self._line()
            if not line:
                raise _BadAnswer("the connection closed before any answer")
            version, _, rest = line.decode("latin-1").strip().partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/") or not code.isdigit():
                raise _BadAnswer(f"not an HTTP answer: {line[:40]!r}")
            status = int(code)
            headers = self._headers()
            if status >= 200:
                break
        if status in (204, 304):
            return status, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, self._chunked(limit)
        length = headers.get("content-length", "").strip()
        if length.isdigit():
            return status, self.reader.read(min(int(length), limit))
        return status, self.reader.read(limit)  # delimited by the end of the connection

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(self.MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        raise _BadAnswer(f"more than {self.MAX_HEADERS} header lines")

    def _chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        while total < limit:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadAnswer(f"a bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                break
            chunk = self.reader.read(min(size, limit - total))
            parts.append(chunk)
            total += len(chunk)
            if len(chunk) < size:
                break  # the limit, or the end of the connection
            self._line()  # the CRLF after the chunk
        return b"".join(parts)


class _BadAnswer(Exception):
    """The collector's answer is not HTTP/1.x as we read it."""


def _post(url: str, payload: bytes, headers: dict[str, str], timeout: float,
          cafile: str | None) -> tuple[int, bytes]:
    """POST on a socket of our own; (status, the start of the body) or ServerUnreachable."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    context = tls_context(cafile) if https else None  # a bad CA file fails before any connection
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if https else 80)
    except ValueError as exc:
        raise ServerUnreachable(url, f"bad port: {exc}") from None
    head = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Accept-Encoding: identity",
            f"Content-Length: {len(payload)}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
    try:
        # An ASCII host name goes as bytes: a str would be IDNA-encoded (an import) for nothing.
        sock = socket.create_connection((host.encode("ascii") if host.isascii() else host, port), timeout)
    except OSError as exc:
        raise ServerUnreachable(url, unreachable_reason(exc, cafile)) from None
    try:
        try:
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
        except OSError as exc:  # the handshake: ssl.SSLError and its certificate verify failure
            raise ServerUnreachable(url, unreachable_reason(exc, cafile)) from None
        try:
            sock.sendall(request)
            return _Answer(sock).read(_MAX_ERROR_BODY)
        except _BadAnswer as exc:
            raise ServerUnreachable(url, f"bad answer: {exc}") from None
        except (TimeoutError, socket.timeout):
            raise ServerUnreachable(url, f"no answer within {timeout:g}s") from None
        except OSError as exc:  # e.g. reset while sending or reading
            raise ServerUnreachable(url, exc.strerror or type(exc).__name__) from None
    finally:
        sock.close()


def _post_through_urllib(url: str, payload: bytes, headers: dict[str, str], timeout: float,
                         cafile: str | None) -> tuple[int, bytes]:
    """POST with urllib.request, which goes through the configured proxy."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
    handlers: list[urllib.request.BaseHandler] = [_no_redirect_handler()()]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(cafile)))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(_MAX_ERROR_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, (exc.read(_MAX_ERROR_BODY) if exc.fp else b"")
    except urllib.error.URLError as exc:
        raise ServerUnreachable(url, unreachable_reason(exc.reason, cafile)) from None
    except (TimeoutError, socket.timeout):
        raise ServerUnreachable(url, f"no answer within {timeout:g}s") from None
    except (ConnectionError, OSError) as exc:  # e.g. reset while reading the answer
        raise ServerUnreachable(url, exc.strerror or type(exc).__name__) from None


@cache
def _no_redirect_handler() -> type:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401, ANN001
            return None

    return NoRedirect


def __getattr__(name: str) -> object:
    # agent.enroll builds its own urllib opener with `_NoRedirect`; urllib.request is imported
    # only when it asks.
    if name == "_NoRedirect":
        return _no_redirect_handler()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
