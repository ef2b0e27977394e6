"""top_groups.top_by_threshold against adding up every bucket (SQLite in memory: the
same SQL the service runs on a rollup table)."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter

import pytest

from trailkeep.store.reads.conditions import Where
from trailkeep.store.stats import top_groups


def _table(rows: list[tuple[int, str, int]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE r (tenant_id TEXT, bucket INT, actor_id TEXT, n INT,"
        " PRIMARY KEY (tenant_id, bucket, actor_id)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX ix_r_n ON r (tenant_id, bucket, n)")
    conn.executemany("INSERT INTO r VALUES ('t', ?, ?, ?)", rows)
    conn.execute("INSERT INTO r VALUES ('other', 0, 'zz-other', 1000000)")  # never counted
    return conn


def _truth(rows: list[tuple[int, str, int]], top: int) -> list[tuple[str, int]]:
    totals: Counter[str] = Counter()
    for _bucket, actor, n in rows:
        totals[actor] += n
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("skew", [0.0, 1.0, 3.0])
def test_threshold_top_is_exact_or_declines(seed: int, skew: float) -> None:
    rng = random.Random(seed)
    actors = [f"u{i:04d}" for i in range(rng.choice([5, 60, 900]))]
    rows = []
    for bucket in range(rng.randrange(1, 8)):
        for i, actor in enumerate(actors):
            n = int(rng.randrange(1, 30) * (1 + skew * 50 / (1 + i)))
            if rng.random() < 0.8:
                rows.append((bucket, actor, n))
    conn = _table(rows)
    where = Where(["e.tenant_id = ?"], ["t"])
    buckets = sorted({("r", b) for b, _a, _n in rows})
    top = rng.choice([1, 3, 10])
    got = top_groups.top_by_threshold(conn, buckets, where, "e.actor_id", top)
    if got is None:  # undecided: the caller adds everything up
        assert skew == 0.0, "skewed counts must be decided by the threshold"
    else:
        assert got == _truth(rows, top)


def test_ties_at_the_bound_are_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every actor has the same count: no round can prove a top-3 (a group outside the
    # heads could tie and sort first), so the function declines.
    rows = [(b, f"u{i:03d}", 5) for b in range(3) for i in range(200)]
    monkeypatch.setattr(top_groups, "MAX_HEADS", 120)
    where = Where(["e.tenant_id = ?"], ["t"])
    buckets = [("r", b) for b in range(3)]
    assert top_groups.top_by_threshold(_table(rows), buckets, where, "e.actor_id", 3) is None
    few = [(b, f"u{i:03d}", 5) for b in range(3) for i in range(20)]
    got = top_groups.top_by_threshold(_table(few), buckets, where, "e.actor_id", 3)
    assert got == [("u000", 15), ("u001", 15), ("u002", 15)]  # every group seen: exact
