"""How many keys a page that reads on asks for next (store/reads/pages.next_step)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trailkeep.store.reads.pages import MAX_STEP, next_step


@given(st.integers(1, MAX_STEP), st.integers(1, 1000))
def test_no_match_doubles_up_to_the_cap(step: int, missing: int) -> None:
    assert next_step(step, 0, missing) == min(step * 2, MAX_STEP)


@given(st.integers(1, MAX_STEP), st.data())
def test_enough_keys_at_the_rate_seen(step: int, data: st.DataObject) -> None:
    matched = data.draw(st.integers(1, step))
    missing = data.draw(st.integers(1, 1000))
    got = next_step(step, matched, missing)
    assert 1 <= got <= MAX_STEP
    # At the rate seen (matched per step keys), ``got`` keys hold the missing rows,
    # unless the cap stops it.
    assert got * matched >= missing * step or got == MAX_STEP


def test_a_rare_filter_asks_for_what_it_needs_at_once() -> None:
    # 6 of 50 keys matched, 44 missing: ~367 keys at that rate, a quarter more.
    assert next_step(50, 6, 44) == 458
