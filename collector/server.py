"""Run the collector: open the store, serve the app, shut down cleanly on SIGINT/SIGTERM.

Once the socket is bound it prints exactly one line to stdout,

    fleetgraph collector listening on http://HOST:PORT     (https:// when tls_cert and tls_key are set)

with the real port (so `--listen 127.0.0.1:0` works and scripts can wait for the line). HTTPS
uses TLS 1.2 or newer with the standard library's server defaults.

Graceful shutdown on SIGTERM or SIGINT: stop accepting (the listening socket closes at once),
let in-flight requests finish (up to SHUTDOWN_TIMEOUT seconds; a report upload in progress gets
its 202), stop the reconcile worker (it finishes the report in hand; reports still pending stay in
the durable log and are reconciled at the next start), close the store, flush the logs, exit 0.

A connection must send its request headers within collector.header_timeout seconds (aiohttp's
keep-alive timer, armed when the connection opens), and its body within request_timeout
(collector.timeouts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import stat
import sys

from aiohttp import web

from cmdb.config import CollectorConfig, ConfigError, parse_listen
from reconcile.policy import ReconcilePolicy

log = logging.getLogger("fleetgraph.collector")

SHUTDOWN_TIMEOUT = 30.0  # seconds in-flight requests get to finish


def open_configured_store(url: str):
    """Open the store of `url` (a SQLite store creates its file and folder if missing)."""
    from cmdb.backends import open_store

    return open_store(url)


def configure_logging(level: str, fmt: str = "text") -> None:
    """collector.log_level and log_format: see collector.logs (request ids, redaction, JSON)."""
    from collector.logs import configure_logging as configure

    try:
        configure(level, fmt)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def tls_server_context(config: CollectorConfig) -> ssl.SSLContext | None:
    """The HTTPS context of collector.tls_cert/tls_key (TLS >= 1.2), None when neither is set."""
    if not config.tls_cert and not config.tls_key:
        return None
    if not (config.tls_cert and config.tls_key):
        raise ConfigError("collector.tls_cert and collector.tls_key go together: set both (HTTPS) or "
                          "neither (plain HTTP)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except FileNotFoundError as exc:
        raise ConfigError(f"collector.tls_cert/tls_key: {exc.filename or 'file'} does not exist") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"collector.tls_cert {config.tls_cert} / tls_key {config.tls_key}: not a PEM "
                          f"certificate and its matching private key ({exc.reason or exc})") from None
    except OSError as exc:
        raise ConfigError(f"collector.tls_cert/tls_key: cannot read {exc.filename}: {exc.strerror}") from None
    if os.stat(config.tls_key).st_mode & stat.S_IRWXO:
        log.warning("collector.tls_key %s is readable by other users: run chmod 600 %s",
                    config.tls_key, config.tls_key)
    return context


async def _serve(store, config: CollectorConfig, host: str, port: int,
                 tls: ssl.SSLContext | None = None, policy: ReconcilePolicy | None = None,
                 sock: socket.socket | None = None) -> int:
    from collector.app import RUNNER_KWARGS, create_app
    from collector.lifecycle import IN_FLIGHT_KEY

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # keepalive_timeout bounds the wait for a new connection's headers too (see the docstring);
    # access_log=None: collector.logs writes one access line per request, with its request id.
    app = create_app(store, config, policy)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           keepalive_timeout=config.header_timeout, access_log=None, **RUNNER_KWARGS)
    await runner.setup()
    try:
        site = (web.SockSite(runner, sock, ssl_context=tls) if sock is not None
                else web.TCPSite(runner, host, port, ssl_context=tls))
        try:
            await site.start()
        except OSError as exc:
            print(f"fleetgraph: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        bound = runner.addresses[0]
        line = f"fleetgraph collector listening on {_url(host, bound[1], 'https' if tls else 'http')}"
        log.info("%s (store %s, reconcile %s)", line, config.store, "on" if config.reconcile else "off")
        if sock is None:  # pre-forked workers: the parent says where it listens
            print(line, flush=True)
        await stop.wait()
        log.info("shutting down: no new connections; finishing in-flight requests (up to %gs)", SHUTDOWN_TIMEOUT)
        await site.stop()  # stop listening; open connections keep receiving (collector.lifecycle)
        in_flight = app[IN_FLIGHT_KEY]
        if not await in_flight.wait_idle(SHUTDOWN_TIMEOUT):
            log.warning("%d request(s) still in flight after %gs: cutting them off", in_flight.count,
                        SHUTDOWN_TIMEOUT)
    finally:
        await runner.cleanup()  # idle connections, then the app's cleanup_ctx (worker, store pool)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("collector stopped")
    return 0


def serve(config: CollectorConfig, policy: ReconcilePolicy | None = None) -> int:
    """Run the collector until SIGINT/SIGTERM; the exit code (0 on a clean shutdown)."""
    configure_logging(config.log_level, config.log_format)
    import prometheus_client

    prometheus_client.disable_created_metrics()  # the *_created series only double /metrics
    host, port = parse_listen(config.listen)
    tls = tls_server_context(config)
    if config.workers < 1 or config.workers > 64:
        print(f"fleetgraph: configuration error: collector.workers: {config.workers} is outside 1..64",
              file=sys.stderr)
        return 2
    try:
        store = open_configured_store(config.store)
    except Exception as exc:  # a wrong URL, an unreadable file, a newer schema: say which
        print(f"fleetgraph: cannot open the store {config.store}: {exc}", file=sys.stderr)
        return 1
    if config.workers > 1:
        store.close()  # each worker opens its own: SQLite connections do not survive a fork
        return _serve_prefork(config, host, port, tls, policy)
    try:
        return asyncio.run(_serve(store, config, host, port, tls, policy))
    except ValueError as exc:  # an option create_app refuses (rate limits, timeouts, proxies, metrics_auth)
        print(f"fleetgraph: configuration error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
        logging.shutdown()  # flush every handler before the process exits


def _serve_prefork(config: CollectorConfig, host: str, port: int, tls: ssl.SSLContext | None,
                   policy: ReconcilePolicy | None) -> int:
    """`collector.workers` processes accept on one listening socket (the kernel spreads the
    connections), so ingest uses every core: one Python process is bound by its GIL. Worker 0
    runs the reconcile worker and the webhooks; the others only serve HTTP. The store's write
    lock is SQLite's, across processes. SIGTERM/SIGINT to the parent stops every worker
    gracefully; the parent exits 0 once they all have. Rate limits and /metrics are per worker."""
    import dataclasses

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"fleetgraph: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    sock.listen(1024)
    sock.setblocking(False)
    children: list[int] = []
    for index in range(config.workers):
        worker_config = config if index == 0 else dataclasses.replace(config, reconcile=False, webhooks=())
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                store = open_configured_store(config.store)
                try:
                    code = asyncio.run(_serve(store, worker_config, host, port, tls, policy, sock))
                finally:
                    store.close()
                    logging.shutdown()
            except BaseException:  # noqa: BLE001 - a worker never returns into the parent's code
                log.exception("collector worker %d failed", index)
            finally:
                os._exit(code)
        children.append(pid)
    bound = sock.getsockname()
    print(f"fleetgraph collector listening on {_url(host, bound[1], 'https' if tls else 'http')}", flush=True)
    log.info("collector: %d worker processes %s", len(children), children)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        if os.waitstatus_to_exitcode(code) != 0:
            status = 1
    sock.close()
    return status
