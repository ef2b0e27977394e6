"""Time values of the query language, resolved to microsecond intervals.

Each form denotes an interval [lo, hi) at its own precision, which is what makes the
comparison operators read naturally: a date is the whole UTC day, so
``occurred<=2026-01-31`` includes the 31st and ``occurred>2026-01-31`` starts on
February 1st; a date-time or a relative time is one microsecond (one instant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from trailkeep.kit.query_ast import QueryError
from trailkeep.kit.timeutil import to_us

DAY_US = 86_400_000_000
# Every bound the parser hands on must be a time datetime can represent, so a backend,
# format_us and render() never overflow. An exclusive end past 9999-12-31 is refused.
TIME_MIN = to_us(datetime(1, 1, 1, tzinfo=UTC))
TIME_MAX = to_us(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))

# re.ASCII: without it \d would accept Arabic-Indic and other Unicode digits.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"([Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
# Months and years have no fixed length; seconds to weeks cover "recent" queries.
# Nine digits at most keeps int() cheap; the year bounds refuse the absurd ones.
_RELATIVE = re.compile(r"-(\d{1,9})([smhdw])", re.ASCII)
_UNIT_US = {
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": DAY_US,
    "w": 7 * DAY_US,
}

FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or ±HH:MM, or -N(s|m|h|d|w)"


@dataclass(frozen=True, slots=True)
class Instant:
    lo: int  # inclusive
    hi: int  # exclusive
    relative: bool


def resolve_time(text: str, position: int, now_us: int) -> Instant:
    """The interval ``text`` denotes; QueryError (at ``position``) if it is not a time."""
    if m := _RELATIVE.fullmatch(text):
        lo = now_us - int(m[1]) * _UNIT_US[m[2]]
        return Instant(lo, lo + 1, relative=True)
    if m := _DATE.fullmatch(text):
        try:
            day = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        except ValueError as exc:  # month 13, February 30, year 0
            raise _bad_date(text, position, exc) from None
        lo = to_us(day)
        return Instant(lo, lo + DAY_US, relative=False)
    if m := _DATETIME.fullmatch(text):
        if m[8] is None:
            # A time without an offset would silently depend on the server's zone.
            raise QueryError(f"time {text!r} needs a UTC offset: add Z or ±HH:MM", position)
        tz = _offset(text, position, m[8])
        fraction = int((m[7] or "0").ljust(6, "0"))
        try:
            moment = datetime(
                int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0),
                fraction, tzinfo=tz,
            )  # fmt: skip
        except ValueError as exc:  # hour 24, second 60, ...
            raise _bad_date(text, position, exc) from None
        lo = to_us(moment)
        return Instant(lo, lo + 1, relative=False)
    raise QueryError(f"bad time {text!r}: expected {FORMS}", position)


def check_bound(value: int, text: str, position: int) -> int:
    if not TIME_MIN <= value <= TIME_MAX:
        raise QueryError(f"time {text!r} is outside the years 1 to 9999", position)
    return value


def _offset(text: str, position: int, spec: str) -> timezone:
    if spec in ("Z", "z"):
        return UTC
    hours, minutes = int(spec[1:3]), int(spec[4:6])
    if hours > 23 or minutes > 59:
        raise QueryError(f"bad time {text!r}: UTC offset {spec} is out of range", position)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if spec[0] == "-" else delta)


def _bad_date(text: str, position: int, exc: ValueError) -> QueryError:
    return QueryError(f"bad date {text!r}: {exc}", position)
