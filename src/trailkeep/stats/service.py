"""The stats window, the store's counts, and the answer's shape.

The window is the query's occurred range widened to whole buckets of the interval
(UTC hours or days), so every bucket counts all its events and the rollups, kept per
hour and day, can answer exactly. Without a start it is the 30 days (of whole buckets)
up to now; without an end it runs to the end of the current bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal

from trailkeep.errors import BadRequest
from trailkeep.kit.event_vocabulary import SEVERITIES
from trailkeep.kit.query_ast import Query
from trailkeep.kit.timeutil import format_us
from trailkeep.query.compile import event_filter
from trailkeep.store.models import StatsGroup, StatsRequest, StatsResult
from trailkeep.store.protocol import Store
from trailkeep.store.stats.rollup_specs import DAY_US, HOUR_US

Interval = Literal["hour", "day"]
WIDTHS: dict[str, int] = {"hour": HOUR_US, "day": DAY_US}
DEFAULT_SPAN_US = 30 * DAY_US
MAX_BUCKETS = 2_000


def window(start: int | None, end: int | None, width: int, now: int) -> tuple[int, int]:
    """[start, end) widened to whole buckets of ``width``."""
    if end is None:
        end = now
    if start is None:
        start = end - DEFAULT_SPAN_US
    low = start - start % width
    high = end if end % width == 0 else end - end % width + width
    buckets = (high - low) // width
    if buckets > MAX_BUCKETS:
        raise BadRequest(
            f"the window spans {buckets:,} buckets, more than {MAX_BUCKETS:,}: use a"
            " shorter occurred range or interval=day",
            {"buckets": buckets, "max_buckets": MAX_BUCKETS},
        )
    return low, high


class StatsService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def stats(
        self,
        tenant_id: str,
        query: Query,
        group_by: StatsGroup,
        interval: Interval,
        top: int,
        now: int,
    ) -> dict[str, Any]:
        flt = event_filter(tenant_id, query)
        width = WIDTHS[interval]
        start, end = window(flt.occurred_from, flt.occurred_to, width, now)
        request = StatsRequest(
            replace(flt, occurred_from=start, occurred_to=end), group_by, width, start, end, top
        )
        # Read before the counts: the answer holds at least every event below it.
        indexed = await self._store.indexed_through(tenant_id)
        result = await self._store.stats(request)
        return _answer(request, interval, result) | {"indexed_to_seq": indexed}


def _name(group_by: str, key: Any) -> Any:
    return SEVERITIES[key] if group_by == "severity" else key


def bucket_labels(start: int, end: int, width: int) -> list[str]:
    """format_us of every bucket start in [start, end). Hour and day buckets start on
    whole hours: the date is formatted once per day (an hourly month is 720 labels, and
    format_us costs ~6 µs each)."""
    if start % HOUR_US or width % HOUR_US:
        return [format_us(at) for at in range(start, end, width)]
    dates: dict[int, str] = {}
    labels = []
    for at in range(start, end, width):
        day, offset = divmod(at, DAY_US)
        date = dates.get(day) or dates.setdefault(day, format_us(day * DAY_US)[:11])
        labels.append(f"{date}{offset // HOUR_US:02d}:00:00.000000Z")
    return labels


def _answer(request: StatsRequest, interval: Interval, result: StatsResult) -> dict[str, Any]:
    labels = bucket_labels(request.start, request.end, request.width_us)
    # Per bucket, the counts of the top groups (the series, transposed).
    cells: Iterable[Sequence[int]] = (
        zip(*result.series, strict=True) if result.series else [()] * len(labels)
    )
    buckets = [
        {"start": label, "count": count, "counts": counts}
        for label, count, counts in zip(labels, result.totals, cells, strict=True)
    ]
    return {
        "group_by": request.group_by,
        "interval": interval,
        "from": format_us(request.start),
        "to": format_us(request.end),
        "source": result.source,
        "total": result.total,
        "top": [{"key": _name(request.group_by, k), "count": c} for k, c in result.top],
        "buckets": buckets,
    }
