"""The stats rollups: which counts ingest keeps, per tenant and time bucket.

Each rollup counts events per (tenant, bucket, dims). Rollups with the same dims form a
family whose widths each divide the next, so a window can be tiled with few wide
buckets and narrow ones only at its edges (reads.tile).

The families, cheapest to read first (stats use the first that holds what they need):

- totals (severity, outcome): a handful of rows per bucket, for counts over time;
- action: ~one row per action and bucket, for the top actions;
- target type: counts each event once per distinct type of its targets;
- main (action, severity, outcome): for filters that combine them;
- actor: thousands of actors a day, so daily only (an hourly rollup would be nearly as
  large as the events), plus 2, 4, 8 and 16-day buckets: the top actors of 30 days
  then add up ~5 buckets per actor instead of 30.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
NO_ACTOR = ""  # actor_id of events without one (a key column cannot be NULL)


@dataclass(frozen=True, slots=True)
class RollupSpec:
    table: str
    width_us: int
    dims: tuple[str, ...]


TOTALS_DIMS = ("severity", "outcome")
ACTION_DIMS = ("action",)
TARGET_DIMS = ("target_type",)
MAIN_DIMS = ("action", "severity", "outcome")
ACTOR_DIMS = ("actor_id",)

ROLLUPS = (
    # Made by migration 0003.
    RollupSpec("stats_hourly", HOUR_US, MAIN_DIMS),
    RollupSpec("stats_daily", DAY_US, MAIN_DIMS),
    RollupSpec("stats_actor_daily", DAY_US, ACTOR_DIMS),
    RollupSpec("stats_target_hourly", HOUR_US, TARGET_DIMS),
    RollupSpec("stats_target_daily", DAY_US, TARGET_DIMS),
    # Made by migration 0004.
    RollupSpec("stats_totals_hourly", HOUR_US, TOTALS_DIMS),
    RollupSpec("stats_totals_daily", DAY_US, TOTALS_DIMS),
    RollupSpec("stats_action_hourly", HOUR_US, ACTION_DIMS),
    RollupSpec("stats_action_daily", DAY_US, ACTION_DIMS),
    RollupSpec("stats_actor_2d", 2 * DAY_US, ACTOR_DIMS),
    RollupSpec("stats_actor_4d", 4 * DAY_US, ACTOR_DIMS),
    RollupSpec("stats_actor_8d", 8 * DAY_US, ACTOR_DIMS),
    RollupSpec("stats_actor_16d", 16 * DAY_US, ACTOR_DIMS),
)

# Families in the order reads prefer them; each narrowest first.
FAMILIES: tuple[tuple[RollupSpec, ...], ...] = tuple(
    tuple(sorted((s for s in ROLLUPS if s.dims == dims), key=lambda s: s.width_us))
    for dims in (TOTALS_DIMS, ACTION_DIMS, TARGET_DIMS, MAIN_DIMS, ACTOR_DIMS)
)

# Indexes by group of the rollups that count the top groups per bucket when there are
# many buckets or many groups: ten actors (or actions by the hour) then read their own
# rows, not every group's rows of the window. (name, table, columns)
ROLLUP_INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ix_stats_actor_daily_actor", "stats_actor_daily", ("tenant_id", "actor_id", "bucket")),
    # With the count: 720 hours of ten actions are read from the index alone.
    (
        "ix_stats_action_hourly_action",
        "stats_action_hourly",
        ("tenant_id", "action", "bucket", "n"),
    ),
)
GROUP_INDEX = {table: name for name, table, _columns in ROLLUP_INDEXES}
# The actor rollups by count within a bucket: the top actors of a window start from
# each bucket's largest counts (top_groups.py).
ROLLUP_INDEXES += tuple(
    (f"ix_{s.table}_n", s.table, ("tenant_id", "bucket", "n"))
    for s in ROLLUPS
    if s.dims == ACTOR_DIMS
)


def rollups_named(*tables: str) -> tuple[RollupSpec, ...]:
    """The specs of ``tables`` (migrations name the tables they make)."""
    found = tuple(s for s in ROLLUPS if s.table in tables)
    if len(found) != len(tables):
        raise KeyError(f"unknown rollups: {set(tables) - {s.table for s in found}}")
    return found
