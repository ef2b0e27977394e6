"""Time helpers. Stored times are integer microseconds since the Unix epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def format_us(us: int) -> str:
    """RFC 3339 UTC with exactly six fractional digits, e.g. 2026-01-02T03:04:05.000000Z."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
