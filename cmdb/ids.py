"""Stable CI ids: 32 lower-case hex digits, time-ordered (a UUIDv7 layout), so ids sort by creation."""

from __future__ import annotations

import os
import time


def new_ci_id() -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return f"{value:032x}"
