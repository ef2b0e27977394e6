"""The stats answer's bucket labels are exactly format_us of each bucket start."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trailkeep.kit.timeutil import format_us
from trailkeep.stats.service import bucket_labels
from trailkeep.store.stats.rollup_specs import DAY_US, HOUR_US

# 1900 .. 2200, in whole hours (the window of a stats request) and not.
_HOURS = st.integers(-70 * 365 * 24, 230 * 365 * 24)


@given(_HOURS, st.sampled_from([HOUR_US, DAY_US]), st.integers(0, 800))
def test_labels_of_hour_and_day_buckets(hour: int, width: int, count: int) -> None:
    start = hour * HOUR_US
    if width == DAY_US:
        start -= start % DAY_US
    end = start + count * width
    assert bucket_labels(start, end, width) == [format_us(at) for at in range(start, end, width)]


@given(st.integers(-(2**50), 2**52), st.integers(1, 3 * DAY_US), st.integers(0, 50))
def test_labels_of_any_buckets(start: int, width: int, count: int) -> None:
    end = start + count * width
    assert bucket_labels(start, end, width) == [format_us(at) for at in range(start, end, width)]
