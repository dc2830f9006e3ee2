"""Request rate limits: token buckets per credential, per report source and per client address.

    token      every authenticated request costs one unit of its credential's bucket
               (collector.rate_limit_token per second, up to rate_limit_token_burst at once)
    source     every report costs one unit of its source's bucket (kind/id), checked once the
               report is decoded: "per agent", whatever token it came with
    anonymous  every request without a valid token (public routes, 401s, unknown paths) costs
               one unit of its client address's bucket (`collector.peers.client_address`)

An empty bucket is a 429 with `Retry-After` (whole seconds until one unit is back) that names the
limit and the option that raises it; nothing is stored. A rate of 0 turns that limit off.
Buckets live in memory, per collector process, in an LRU of at most `max_keys` entries: a bucket
pushed out is one that was idle longest, and so had refilled anyway.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from cmdb.config import CollectorConfig
from collector.api import CONFIG_KEY, APIError

MAX_KEYS = 250_000  # a 100k-machine fleet enrolled one credential per agent, with room to spare


class TokenBuckets:
    """Buckets keyed by a string: `rate` units per second, at most `burst` at once."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic):
        if rate < 0 or burst < 1 or max_keys < 1:
            raise ValueError("a rate limit needs rate >= 0, burst >= 1 and max_keys >= 1")
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._clock = clock
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (units, as of)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float | None:
        """Spend one unit of `key`'s bucket: None when there was one, else the seconds to wait."""
        if not self.enabled:
            return None
        now = self._clock()
        units, since = self._levels.pop(key, (float(self.burst), now))
        units = min(float(self.burst), units + (now - since) * self.rate)
        wait = None
        if units >= 1:
            units -= 1
        else:
            wait = (1 - units) / self.rate
        self._levels[key] = (units, now)  # re-inserted last: the LRU's oldest entry comes first
        if len(self._levels) > self.max_keys:
            self._levels.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._levels)


@dataclass(frozen=True, slots=True)
class RateLimits:
    token: TokenBuckets
    source: TokenBuckets
    anonymous: TokenBuckets

    @classmethod
    def from_config(cls, config: CollectorConfig) -> RateLimits:
        return cls(TokenBuckets(config.rate_limit_token, config.rate_limit_token_burst),
                   TokenBuckets(config.rate_limit_source, config.rate_limit_source_burst),
                   TokenBuckets(config.rate_limit_anonymous, config.rate_limit_anonymous_burst))


RATE_LIMITS_KEY = web.AppKey("rate_limits", RateLimits)

_WHAT = {
    "token": ("requests with token {key!r}", "collector.rate_limit_token"),
    "source": ("reports from source {key}", "collector.rate_limit_source"),
    "anonymous": ("requests without a valid token from {key}", "collector.rate_limit_anonymous"),
}


def setup(app: web.Application) -> None:
    config = app[CONFIG_KEY]
    for name in ("token", "source", "anonymous"):
        rate, burst = getattr(config, f"rate_limit_{name}"), getattr(config, f"rate_limit_{name}_burst")
        if rate < 0 or burst < 1:
            raise ValueError(f"collector.rate_limit_{name} must be >= 0 (0: off) and "
                             f"collector.rate_limit_{name}_burst >= 1, got {rate} and {burst}")
    app[RATE_LIMITS_KEY] = RateLimits.from_config(config)


def spend(request: web.Request, scope: str, key: str) -> None:
    """One unit of `key`'s bucket in `scope` (token, source, anonymous), or APIError 429."""
    limits = request.config_dict.get(RATE_LIMITS_KEY)
    if limits is None:
        return
    buckets: TokenBuckets = getattr(limits, scope)
    wait = buckets.take(key)
    if wait is None:
        return
    what, option = _WHAT[scope]
    seconds = max(1, math.ceil(wait))
    raise APIError(429, f"too many {what.format(key=key)}: at most {buckets.rate:g}/s "
                        f"(bursts of {buckets.burst}); retry in {seconds}s, or ask the collector's "
                        f"operator to raise {option}",
                   headers={"Retry-After": str(seconds)}, scope=scope, retry_after=seconds)
