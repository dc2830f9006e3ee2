"""Token buckets: burst, refill, wait times, off switch, bounded memory."""

from __future__ import annotations

import pytest

from collector.ratelimit import TokenBuckets


def buckets(rate: float, burst: int, max_keys: int = 100):
    now = [0.0]
    return TokenBuckets(rate, burst, max_keys=max_keys, clock=lambda: now[0]), now


def test_a_burst_then_a_wait_that_says_how_long():
    limiter, now = buckets(rate=2.0, burst=3)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(0.5)  # one unit comes back every 1/rate seconds
    now[0] = 0.5
    assert limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(0.5)


def test_a_refused_attempt_does_not_cost_a_unit():
    limiter, now = buckets(rate=1.0, burst=1)
    assert limiter.take("a") is None
    for _ in range(5):
        assert limiter.take("a") == pytest.approx(1.0 - now[0])
    now[0] = 1.0
    assert limiter.take("a") is None  # five refusals did not push the next unit further away


def test_keys_are_independent_and_refill_caps_at_the_burst():
    limiter, now = buckets(rate=1.0, burst=2)
    assert limiter.take("a") is None and limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None
    now[0] = 1000.0
    assert [limiter.take("a") for _ in range(3)][2] is not None  # refilled to 2, not to 1000


def test_rate_zero_turns_the_limit_off():
    limiter, _ = buckets(rate=0.0, burst=1)
    assert all(limiter.take("a") is None for _ in range(1000))
    assert len(limiter) == 0 and not limiter.enabled


def test_memory_is_bounded_and_the_idlest_key_goes_first():
    limiter, now = buckets(rate=1.0, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.take(key)
    limiter.take("a")  # a is used again: b is now the idlest
    limiter.take("d")
    assert len(limiter) == 3
    assert limiter.take("b") is None  # forgotten, so full again
    assert limiter.take("a") is not None  # remembered, still empty


@pytest.mark.parametrize("rate,burst", [(-1.0, 1), (1.0, 0)])
def test_nonsense_limits_are_refused(rate, burst):
    with pytest.raises(ValueError):
        TokenBuckets(rate, burst)
