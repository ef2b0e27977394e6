"""Full-text pages on PostgreSQL: walk the newest events checking each row's tsvector,
and ask the GIN index only for what a bounded walk could not find.

The GIN index on ``events.search`` holds every tenant's rows, and PostgreSQL must fetch
and sort all of a word's matches from it to show the newest 50: a word in 1% of
events is ~60,000 rows over 5M events (~500 ms, measured). Walking the tenant's events
newest first and checking each row (~1.6 µs a row) fills a page of such a word after
~5,000 rows. So a page is read in windows of the tenant's timeline:

1. The first window holds WALK_FIRST rows (found by a keys-only walk of the page's
   index, which also tells where the window ends and how many rows a µs holds); its
   matches are found by the page planner itself (pages.list_page) with the
   text check as one more filter, so every other filter of the query uses its index.
2. The next window is sized by the rate of matches seen, in time at the first
   window's rows per µs, as long as the page would fill within WALK_ROWS rows in all.
3. Otherwise (a rare word, none seen) the GIN index answers for the rest. Its tenant
   condition is applied after the index: a generic plan otherwise ANDs the word's
   bitmap with the tenant's whole primary-key range (~300 ms for a rare word).

The walk checks rows with ``ts_match_vq`` (the function behind ``@@``), which the
planner cannot answer from the GIN index: the walk stays a walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from trailkeep.kit.fulltext import TextSearch
from trailkeep.query.filter import EventFilter
from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import PageKey
from trailkeep.store.reads.conditions import Where
from trailkeep.store.reads.pages import (
    ReadDialect,
    list_page,
    order_bounds,
    padded,
    plan_page,
    residual_of,
    rows_needed,
)

WALK_FIRST = 1_000  # rows of the first window
WALK_ROWS = 20_000  # rows walked at most before the GIN index answers


def tsquery(text: Sequence[TextSearch]) -> str:
    return " & ".join(("!" if t.negated else "") + f"({t.tsquery()})" for t in text)


def walk_search(
    conn: SqlConnection, dialect: ReadDialect, flt: EventFilter, after: PageKey | None, limit: int
) -> list[tuple[int, int]]:
    """The keys of the page after ``after`` of a query with full-text conditions."""
    plain = replace(flt, text=())
    check = Where(["ts_match_vq(e.search, CAST(? AS tsquery))"], [tsquery(flt.text)])
    # Planned once: an action prefix's plan looks its actions up (~1-4 ms).
    plain_plan = plan_page(conn, dialect, plain)
    text_plan = plain_plan.checking(check)

    def matches(window: EventFilter, cursor: PageKey | None, wanted: int) -> list[tuple[int, int]]:
        rows = list_page(conn, dialect, window, cursor, wanted, False, text_plan)
        return [(r.occurred_at, r.seq) for r in rows]

    if all(t.negated for t in flt.text):
        # Nothing to look up in an index; most rows match a negation.
        return matches(plain, after, limit)
    # The first window: WALK_FIRST rows, found by walking their keys (~1 µs a row).
    edge = list_page(conn, dialect, plain, after, WALK_FIRST, False, plain_plan)
    if len(edge) < WALK_FIRST:  # all the rows left fit in one window
        return matches(plain, after, limit)
    top = after.occurred_at if after is not None else edge[0].occurred_at
    start = edge[-1].occurred_at
    # The next windows are sized in time, at the first window's rows per µs.
    per_us = WALK_FIRST / max(1, top - start)
    oldest = plain.occurred_from  # the walk's end; the tenant's oldest row if None
    found: list[tuple[int, int]] = []
    cursor = after
    walked, rows = 0, WALK_FIRST
    while True:
        # Every row at the window's first instant is in it (ties of occurred_at too).
        window = replace(plain, occurred_from=start if oldest is None else max(start, oldest))
        found += matches(window, cursor, limit - len(found))
        if len(found) >= limit:
            return found[:limit]
        if oldest is None:
            oldest = _oldest(conn, flt)
        if start <= oldest:  # no rows left
            return found
        walked += rows
        cursor = PageKey(start, -1)  # below every seq of the window's first instant
        if not found:
            break
        needed = rows_needed(limit - len(found), walked, len(found))
        if walked + needed > WALK_ROWS:
            break
        rows = padded(needed)
        start -= max(1, int(rows / per_us))
    return found + _from_gin(conn, dialect, flt, cursor, limit - len(found))


def _oldest(conn: SqlConnection, flt: EventFilter) -> int:
    """The time of the tenant's oldest event (the walk's end)."""
    sql = "SELECT occurred_at FROM events WHERE tenant_id = ? ORDER BY occurred_at, seq LIMIT 1"
    row = conn.execute(sql, [flt.tenant_id]).fetchone()
    return int(row[0]) if row is not None else 0


def _from_gin(
    conn: SqlConnection, dialect: ReadDialect, flt: EventFilter, after: PageKey | None, limit: int
) -> list[tuple[int, int]]:
    """The page's rows from the GIN index: every match, filtered, sorted."""
    where = residual_of(dialect, flt, set())
    where.extend(order_bounds(flt, after, "e"))
    sql = (
        "WITH m AS MATERIALIZED (SELECT e.tenant_id, e.occurred_at, e.seq FROM events e"
        f" WHERE e.search @@ CAST(? AS tsquery) AND {where.text()})"
        " SELECT occurred_at, seq FROM m WHERE tenant_id = ?"
        " ORDER BY occurred_at DESC, seq DESC LIMIT ?"
    )
    args: list[Any] = [tsquery(flt.text), *where.args, flt.tenant_id, limit]
    return [(row[0], row[1]) for row in conn.execute(sql, args).fetchall()]
