"""store/stats/reads.tile: a window as whole buckets of a rollup family's widths."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from trailkeep.store.stats.reads import tile
from trailkeep.store.stats.rollup_specs import DAY_US, FAMILIES, HOUR_US, ROLLUPS

ACTOR_WIDTHS = [DAY_US * k for k in (1, 2, 4, 8, 16)]


@given(
    start=st.integers(-400, 40_000),  # days since 1970, some before it
    days=st.integers(1, 400),
)
def test_tiles_cover_the_window_once_with_aligned_buckets(start: int, days: int) -> None:
    lo, hi = start * DAY_US, (start + days) * DAY_US
    pieces = tile(lo, hi, ACTOR_WIDTHS)
    at = lo
    for width, a, b in pieces:
        assert a == at and a < b  # contiguous, in order, nothing empty
        assert a % width == 0 and b % width == 0  # whole buckets of that width
        at = b
    assert at == hi
    # Few reads: at most two pieces per width (one each side of the wider middle).
    assert len(pieces) <= 2 * len(ACTOR_WIDTHS) - 1
    # At most one bucket of each narrower width at each edge, and the 16-day middle.
    buckets = sum((b - a) // w for w, a, b in pieces)
    assert buckets <= 2 * 4 + days // 16 + 1


def test_thirty_days_read_few_buckets_and_hours_sit_at_the_edges() -> None:
    start = 20_000 * DAY_US  # a multiple of 32 days: 2024-10-04
    pieces = tile(start + 3 * DAY_US, start + 33 * DAY_US, ACTOR_WIDTHS)
    assert sum((b - a) // w for w, a, b in pieces) <= 6
    # An hourly window over days: hours only before the first and after the last day.
    lo, hi = start - 5 * HOUR_US, start + 3 * DAY_US + 2 * HOUR_US
    assert tile(lo, hi, [HOUR_US, DAY_US]) == [
        (HOUR_US, lo, start),
        (DAY_US, start, start + 3 * DAY_US),
        (HOUR_US, start + 3 * DAY_US, hi),
    ]


def test_families_are_divisibility_chains_covering_every_rollup() -> None:
    assert sorted(s.table for f in FAMILIES for s in f) == sorted(s.table for s in ROLLUPS)
    for family in FAMILIES:
        assert len({s.dims for s in family}) == 1
        for narrow, wide in itertools.pairwise(family):
            assert wide.width_us % narrow.width_us == 0 and wide.width_us > narrow.width_us
