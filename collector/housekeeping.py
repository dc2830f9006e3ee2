"""Record housekeeping in the collector process: verify the changes whose planned window has
closed (reconcile.records.verify_due_changes) every `collector.records_interval` seconds, and
deliver record events to the configured webhooks (collector.webhooks). Both run as tasks started
and stopped with the app (cleanup_ctx): stopping waits for the round in flight."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from cmdb.config import CollectorConfig, ConfigError
from collector.api import CONFIG_KEY, EXECUTOR_KEY, STORE_KEY
from collector.webhooks import WebhookDispatcher, check_webhook_url

log = logging.getLogger("fleetgraph.collector.records")


def read_webhook_secret(config: CollectorConfig) -> bytes:
    """The shared secret, from an owner-only file; ConfigError says what is wrong (never the secret)."""
    for url in config.webhooks:
        try:
            check_webhook_url(url)
        except ValueError as exc:
            raise ConfigError(f"collector.webhooks: {exc}") from None
    if not config.webhooks:
        return b""
    if not config.webhook_secret_file:
        raise ConfigError("collector.webhooks are set but collector.webhook_secret_file is not: webhooks are "
                          "signed, so receivers can tell them from forgeries; create a secret file (chmod 600)")
    path = Path(config.webhook_secret_file)
    try:
        info = path.stat()
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"collector.webhook_secret_file {path}: {exc.strerror}") from None
    if info.st_mode & 0o077:
        raise ConfigError(f"collector.webhook_secret_file {path} is readable by others (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}): chmod 600 {path}")
    if len(secret) < 16:
        raise ConfigError(f"collector.webhook_secret_file {path}: the secret is shorter than 16 bytes")
    return secret


async def records_housekeeping(app: web.Application) -> AsyncIterator[None]:
    config, store, executor = app[CONFIG_KEY], app[STORE_KEY], app[EXECUTOR_KEY]
    loop = asyncio.get_running_loop()

    async def run_store(fn, *args):  # noqa: ANN001, ANN202 - any store call
        return await loop.run_in_executor(executor, fn, *args)

    stop = asyncio.Event()
    dispatcher = WebhookDispatcher(store, config.webhooks, read_webhook_secret(config),
                                   timeout=config.webhook_timeout, max_attempts=config.webhook_max_attempts,
                                   run_store=run_store)

    async def verify_loop() -> None:
        from reconcile.records import verify_due_changes

        while not stop.is_set():
            try:  # wait one interval, then verify: startup stays light and stopping is immediate
                await asyncio.wait_for(stop.wait(), config.records_interval)
                return
            except asyncio.TimeoutError:
                pass
            try:
                done = await run_store(verify_due_changes, store, datetime.now(UTC))
                for change in done:
                    log.info("change %s verified: %s", change.number, change.verification)
            except Exception:
                log.exception("verifying changes failed; retrying next round")

    tasks = [asyncio.create_task(verify_loop(), name="verify-changes"),
             asyncio.create_task(dispatcher.run(stop), name="webhooks")]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)



