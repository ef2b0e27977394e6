"""The stats rollups: which counts ingest keeps, per tenant and time bucket.

Each rollup counts events per (tenant, bucket, dims). The main ones carry the
low-cardinality dimensions that stats filter and group by (action, severity, outcome)
at two widths, so a 30-day window reads ~30 day rows per combination instead of
millions of events. Actors can number in the thousands per day, so they get their own
daily rollup without other dimensions (an hourly one would be nearly as large as the
events). Target types count each event once per distinct type of its targets.
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


MAIN_DIMS = ("action", "severity", "outcome")
ROLLUPS = (
    RollupSpec("stats_hourly", HOUR_US, MAIN_DIMS),
    RollupSpec("stats_daily", DAY_US, MAIN_DIMS),
    RollupSpec("stats_actor_daily", DAY_US, ("actor_id",)),
    RollupSpec("stats_target_hourly", HOUR_US, ("target_type",)),
    RollupSpec("stats_target_daily", DAY_US, ("target_type",)),
)
