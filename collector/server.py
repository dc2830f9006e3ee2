"""Run the collector: open the store, serve the app, shut down cleanly on SIGINT/SIGTERM.

Once the socket is bound it prints exactly one line to stdout,

    fleetgraph collector listening on http://HOST:PORT

with the real port (so `--listen 127.0.0.1:0` works and scripts can wait for the line). Shutdown:
stop accepting, let in-flight requests finish, stop the reconcile worker (it finishes the report in
hand), close the store, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from cmdb.config import CollectorConfig, ConfigError, parse_listen

log = logging.getLogger("fleetgraph.collector")

SHUTDOWN_TIMEOUT = 30.0  # seconds in-flight requests get to finish


def open_configured_store(url: str):
    """Open the store of `url` (a SQLite store creates its file and folder if missing)."""
    from cmdb.backends import open_store

    return open_store(url)


def configure_logging(level: str) -> None:
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise ConfigError(f"collector.log_level: expected debug, info, warning or error, got {level!r}")
    logging.basicConfig(level=numeric, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The access log repeats every request at info; keep it for debug.
    logging.getLogger("aiohttp.access").setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(store, config: CollectorConfig, host: str, port: int) -> int:
    from collector.app import RUNNER_KWARGS, create_app

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    runner = web.AppRunner(create_app(store, config), shutdown_timeout=SHUTDOWN_TIMEOUT,
                           **RUNNER_KWARGS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            print(f"fleetgraph: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        bound = runner.addresses[0]
        line = f"fleetgraph collector listening on {_url(host, bound[1])}"
        log.info("%s (store %s, reconcile %s)", line, config.store, "on" if config.reconcile else "off")
        print(line, flush=True)
        await stop.wait()
        log.info("shutting down: finishing in-flight requests")
    finally:
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("collector stopped")
    return 0


def serve(config: CollectorConfig) -> int:
    """Run the collector until SIGINT/SIGTERM; the exit code (0 on a clean shutdown)."""
    configure_logging(config.log_level)
    host, port = parse_listen(config.listen)
    try:
        store = open_configured_store(config.store)
    except Exception as exc:  # a wrong URL, an unreadable file, a newer schema: say which
        print(f"fleetgraph: cannot open the store {config.store}: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve(store, config, host, port))
    finally:
        store.close()
