"""`fleetgraph collector serve`, `fleetgraph token create|list|revoke` and
`fleetgraph enroll-token create|list|revoke`.

Flags whose argparse dest is `collector__<key>` override the [collector] config options (see
cmdb.cli). Heavy imports (aiohttp, the store backends) happen inside the handlers, so that the
dispatcher stays cheap on endpoints that only run the agent.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.roles import ROLE_HELP, ROLES, describe_binding


def register(subparsers: Any) -> None:
    collector = subparsers.add_parser(
        "collector", help="run the collector service (ingest, query API, reconcile)",
        description="The collector: receives reports, stores them durably, reconciles them into CIs "
                    "and serves the query API.")
    csub = collector.add_subparsers(dest="collector_command", metavar="COMMAND", required=True)
    serve = csub.add_parser("serve", help="serve the collector until SIGINT/SIGTERM",
                            description="Serve the collector. Prints 'fleetgraph collector listening on "
                                        "http://HOST:PORT' once bound.")
    serve.add_argument("--listen", dest="collector__listen", metavar="HOST:PORT",
                       help="address to listen on (port 0: any free port)")
    _store_flag(serve)
    serve.add_argument("--no-reconcile", dest="collector__reconcile", action="store_const", const=False,
                       default=None, help="ingest only: do not run the reconcile worker in this process")
    serve.add_argument("--max-body-bytes", dest="collector__max_body_bytes", type=int, metavar="N",
                       help="largest request body on the wire (collector.max_body_bytes)")
    serve.add_argument("--max-report-bytes", dest="collector__max_report_bytes", type=int, metavar="N",
                       help="largest report after decompression (collector.max_report_bytes)")
    serve.add_argument("--workers", dest="collector__workers", type=int, metavar="N",
                       help="HTTP processes sharing the listening socket (collector.workers)")
    serve.add_argument("--reconcile-batch", dest="collector__reconcile_batch", type=int, metavar="N",
                       help="reports the reconcile worker takes per round (collector.reconcile_batch)")
    serve.add_argument("--log-level", dest="collector__log_level", choices=("debug", "info", "warning", "error"),
                       help="collector.log_level")
    serve.add_argument("--tls-cert", dest="collector__tls_cert", metavar="PEM",
                       help="serve HTTPS with this certificate chain (collector.tls_cert; needs --tls-key)")
    serve.add_argument("--tls-key", dest="collector__tls_key", metavar="PEM",
                       help="private key of --tls-cert (collector.tls_key)")
    _operability_flags(serve)
    serve.add_argument("--retire-after-missed-runs", dest="reconcile__retire_after_missed_runs", type=int,
                       metavar="N", help="complete runs that must miss a CI or relation before it is "
                                         "retired (reconcile.retire_after_missed_runs)")
    serve.add_argument("--source-priority", dest="reconcile__source_priority", metavar="KIND,KIND,...",
                       help="attribute precedence, best source kind first (reconcile.source_priority)")
    serve.add_argument("--attribute-priority", dest="reconcile__attribute_priority", action="append",
                       metavar="ATTR=KIND>KIND", help="an attribute's own precedence, repeated "
                                                      "(replaces reconcile.attribute_priority)")
    serve.add_argument("--drift-tracked", dest="reconcile__drift_tracked", action="append",
                       metavar="Class.attr|Host:Member", help="a tracked attribute or set, repeated "
                                                              "(replaces reconcile.drift_tracked)")
    serve.add_argument("--drift-response", dest="reconcile__drift_response", action="append",
                       metavar="SELECTOR=RESPONSE", help="what unexplained drift does, e.g. "
                       "Computer.serial=incident:high, *=record (repeat; replaces reconcile.drift_response)")
    serve.set_defaults(func=_serve)

    token = subparsers.add_parser("token", help="manage API tokens (create, list, revoke)",
                                  description="API bearer tokens. Only a hash is stored: the plain "
                                              "token is printed once, at creation.")
    tsub = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = tsub.add_parser("create", help="create a token and print it (once) on stdout")
    create.add_argument("--name", required=True, help="what the token is for (unique; used to revoke it)")
    create.add_argument("--role", required=True, choices=ROLES,
                        help="; ".join(f"{role}: {what}" for role, what in ROLE_HELP.items()))
    create.add_argument("--expires", metavar="ISO8601",
                        help="expiry time, e.g. 2025-12-31T00:00:00Z (default: never)")
    _store_flag(create)
    create.set_defaults(func=_token_create)

    _add_list_and_revoke(tsub, "list tokens (names, roles, expiry; never the tokens)", _token_list,
                         "revoke every token with this name", _token_revoke)
    _register_enroll_token(subparsers)


def _operability_flags(serve: argparse.ArgumentParser) -> None:
    """Logs, timeouts, rate limits, proxies and /metrics access (docs/security.md, docs/operations.md)."""
    serve.add_argument("--log-format", dest="collector__log_format", choices=("text", "json"),
                       help="text, or json: one object per line with request ids (collector.log_format)")
    serve.add_argument("--request-timeout", dest="collector__request_timeout", type=float, metavar="SECONDS",
                       help="time a request body may take to arrive (collector.request_timeout)")
    serve.add_argument("--header-timeout", dest="collector__header_timeout", type=float, metavar="SECONDS",
                       help="time a connection may take to send its headers, and idle keep-alive "
                            "(collector.header_timeout)")
    for scope, what in (("token", "requests/s per token"), ("source", "reports/s per report source"),
                        ("anonymous", "requests/s per address without a valid token")):
        serve.add_argument(f"--rate-limit-{scope}", dest=f"collector__rate_limit_{scope}", type=float,
                           metavar="PER_SECOND", help=f"{what}, 0: off (collector.rate_limit_{scope})")
        serve.add_argument(f"--rate-limit-{scope}-burst", dest=f"collector__rate_limit_{scope}_burst", type=int,
                           metavar="N", help=f"burst of --rate-limit-{scope} (collector.rate_limit_{scope}_burst)")
    serve.add_argument("--trusted-proxy", dest="collector__trusted_proxies", action="append", metavar="CIDR",
                       help="a reverse proxy whose X-Forwarded-For is believed, repeated "
                            "(replaces collector.trusted_proxies)")
    serve.add_argument("--metrics-auth", dest="collector__metrics_auth", choices=("loopback", "token"),
                       help="who may read /metrics without a token (collector.metrics_auth)")
    serve.add_argument("--webhook", dest="collector__webhooks", action="append", metavar="URL",
                       help="POST record events here, signed (repeat; replaces collector.webhooks)")
    serve.add_argument("--webhook-secret-file", dest="collector__webhook_secret_file", metavar="FILE",
                       help="the webhooks' HMAC secret (collector.webhook_secret_file)")
    serve.add_argument("--webhook-timeout", dest="collector__webhook_timeout", type=float, metavar="SECONDS")
    serve.add_argument("--webhook-max-attempts", dest="collector__webhook_max_attempts", type=int, metavar="N")
    serve.add_argument("--records-interval", dest="collector__records_interval", type=float, metavar="SECONDS",
                       help="how often changes whose window closed are verified (collector.records_interval)")


def _store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", dest="collector__store", metavar="URL",
                        help="store URL: sqlite:PATH or sqlite:///ABS/PATH")


def _serve(args: argparse.Namespace, config: Any) -> int:
    from collector.server import serve
    from reconcile.policy import ReconcilePolicy

    try:
        policy = ReconcilePolicy.from_config(config.reconcile)
    except ValueError as exc:
        print(f"fleetgraph: {exc}", file=sys.stderr)
        return 2
    return serve(config.collector, policy)


def _open(config: Any):
    """The configured store, or None after saying on stderr why it cannot be opened."""
    from collector.server import open_configured_store

    try:
        return open_configured_store(config.collector.store)
    except Exception as exc:  # a wrong URL, an unreadable file, a newer schema: say which
        print(f"fleetgraph: cannot open the store {config.collector.store}: {exc}", file=sys.stderr)
        return None


def _parse_expiry(text: str) -> datetime:
    try:
        expires_at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--expires must be ISO 8601, e.g. 2025-12-31T00:00:00Z, got {text!r}") from None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= datetime.now(UTC):
        raise ValueError(f"--expires {text} is in the past")
    return expires_at


def _token_create(args: argparse.Namespace, config: Any) -> int:
    from collector.auth import create_token

    try:
        expires_at = _parse_expiry(args.expires) if args.expires else None
    except ValueError as exc:
        print(f"fleetgraph: {exc}", file=sys.stderr)
        return 2
    store = _open(config)
    if store is None:
        return 1
    try:
        token = create_token(store, args.name, args.role, expires_at)
    except ValueError as exc:  # includes a name already in use, as the store words it
        print(f"fleetgraph: cannot create token {args.name!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    # stdout carries the token and nothing else, so `TOKEN=$(fleetgraph token create ...)` works.
    print(token)
    print(f"created {args.role} token {args.name!r}; it is shown only this once", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace, config: Any) -> int:
    store = _open(config)
    if store is None:
        return 1
    try:
        tokens = store.list_tokens()
    finally:
        store.close()
    now = datetime.now(UTC)
    rows = [("NAME", "ROLE", "CREATED", "EXPIRES", "STATE", "SOURCE")]
    for t in tokens:
        expires = t.expires_at
        state = "revoked" if t.revoked_at else ("expired" if expires and expires <= now else "valid")
        source = describe_binding(t.role, t.source_id)
        rows.append((t.name, t.role, _when(t.created_at), _when(expires) or "never", state, source))
    _print_table(rows)
    return 0


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _token_revoke(args: argparse.Namespace, config: Any) -> int:
    store = _open(config)
    if store is None:
        return 1
    try:
        revoked = store.revoke_token(args.name)
    finally:
        store.close()
    if not revoked:
        print(f"fleetgraph: no valid token named {args.name!r} (see 'fleetgraph token list')",
              file=sys.stderr)
        return 1
    print(f"revoked {revoked} token(s) named {args.name!r}", file=sys.stderr)
    return 0


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "" if value is None else str(value)


# -- enrollment tokens: what an agent trades for its own credential (`fleetgraph agent enroll`) --
DEFAULT_ENROLL_TTL = "24h"
_TTL = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _register_enroll_token(subparsers: Any) -> None:
    enroll = subparsers.add_parser(
        "enroll-token", help="manage agent enrollment tokens (create, list, revoke)",
        description="One-time enrollment tokens: an agent runs 'fleetgraph agent enroll' with one and "
                    "receives its own credential, bound to its agent id. Only a hash is stored.")
    esub = enroll.add_subparsers(dest="enroll_token_command", metavar="COMMAND", required=True)
    create = esub.add_parser("create", help="create an enrollment token and print it (once) on stdout")
    create.add_argument("--name", required=True, help="what the token is for (unique; used to revoke it)")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--expires", metavar="ISO8601", help="expiry time, e.g. 2025-12-31T00:00:00Z")
    when.add_argument("--ttl", metavar="DURATION",
                      help=f"lifetime: a number and s, m, h, d or w, e.g. 24h, 7d (default {DEFAULT_ENROLL_TTL})")
    create.add_argument("--uses", type=int, default=1, metavar="K",
                        help="how many agents may enroll with it (default 1)")
    _store_flag(create)
    create.set_defaults(func=_enroll_token_create)

    _add_list_and_revoke(esub, "list enrollment tokens (uses, expiry; never the tokens)", _enroll_token_list,
                         "revoke the live enrollment token with this name", _enroll_token_revoke)


def _add_list_and_revoke(sub: Any, list_help: str, list_fn: Any, revoke_help: str, revoke_fn: Any) -> None:
    """`list` and `revoke --name N`, the same for API tokens and enrollment tokens."""
    listing = sub.add_parser("list", help=list_help)
    _store_flag(listing)
    listing.set_defaults(func=list_fn)
    revoke = sub.add_parser("revoke", help=revoke_help)
    revoke.add_argument("--name", required=True)
    _store_flag(revoke)
    revoke.set_defaults(func=revoke_fn)


def _parse_ttl(text: str) -> datetime:
    match = _TTL.match(text.strip())
    if match is None:
        raise ValueError(f"--ttl must be a number and a unit (s, m, h, d, w), e.g. 24h or 7d, got {text!r}")
    return datetime.now(UTC) + timedelta(**{_TTL_UNITS[match[2]]: int(match[1])})


def _enroll_token_create(args: argparse.Namespace, config: Any) -> int:
    from collector.enroll import create_enrollment_token

    try:
        expires_at = _parse_expiry(args.expires) if args.expires else _parse_ttl(args.ttl or DEFAULT_ENROLL_TTL)
        if args.uses < 1:
            raise ValueError(f"--uses must be at least 1, got {args.uses}")
    except (ValueError, OverflowError) as exc:
        print(f"fleetgraph: {exc}", file=sys.stderr)
        return 2
    store = _open(config)
    if store is None:
        return 1
    try:
        token = create_enrollment_token(store, args.name, args.uses, expires_at)
    except ValueError as exc:
        print(f"fleetgraph: cannot create enrollment token {args.name!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(token)  # stdout: the token alone, for TOKEN=$(fleetgraph enroll-token create ...)
    print(f"created enrollment token {args.name!r} for {args.uses} enrollment(s), valid until "
          f"{_when(expires_at)}; it is shown only this once. On the agent: "
          "FLEETGRAPH_AGENT_ENROLL_TOKEN=<token> fleetgraph agent enroll --server URL", file=sys.stderr)
    return 0


def _enroll_token_list(args: argparse.Namespace, config: Any) -> int:
    store = _open(config)
    if store is None:
        return 1
    try:
        tokens = store.list_enrollment_tokens()
    finally:
        store.close()
    now = datetime.now(UTC)
    rows = [("NAME", "USES", "CREATED", "EXPIRES", "STATE")]
    for t in tokens:
        expired = t.expires_at is not None and t.expires_at <= now
        state = ("revoked" if t.revoked_at else "expired" if expired
                 else "used up" if t.uses >= t.max_uses else "valid")
        rows.append((t.name, f"{t.uses}/{t.max_uses}", _when(t.created_at), _when(t.expires_at) or "never", state))
    _print_table(rows)
    return 0


def _enroll_token_revoke(args: argparse.Namespace, config: Any) -> int:
    store = _open(config)
    if store is None:
        return 1
    try:
        revoked = store.revoke_enrollment_token(args.name)
    finally:
        store.close()
    if not revoked:
        print(f"fleetgraph: no live enrollment token named {args.name!r} (see 'fleetgraph enroll-token list')",
              file=sys.stderr)
        return 1
    print(f"revoked enrollment token {args.name!r}; agents already enrolled with it keep their credentials "
          "(revoke one with 'fleetgraph token revoke --name agent-<agent id>')", file=sys.stderr)
    return 0
