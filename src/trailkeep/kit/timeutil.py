"""Time helpers. Stored times are integer microseconds since the Unix epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    # Subtracting aware datetimes never overflows, unlike astimezone() near year 1 or 9999.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_us(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 time as format_us writes it."""
    return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def format_us(us: int) -> str:
    """RFC 3339 UTC with exactly six fractional digits, e.g. 2026-01-02T03:04:05.000000Z."""
    d = from_us(us)
    # Not strftime: glibc's %Y does not zero-pad years below 1000.
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}Z"
    )
