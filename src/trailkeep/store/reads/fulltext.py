"""Full-text search pages, newest first, fast for common and rare words alike.

Pages are ordered by (occurred_at, seq); a full-text index orders its matches by its
own key. Sorting every match of a common word (a quarter of a tenant) to show the
newest 50 is the slow path this module avoids. On SQLite, in two steps:

1. **Probe.** Walk the newest events that pass the other filters (the page planner's
   index walk, keys only) and check the text conditions on just those rows, in steps
   sized by the rate of matches seen, up to PROBE_ROWS rows. A word in more than ~1 in
   40 events fills a page here, whatever its total count; a rarer one gives up after
   the first step.
2. **Index.** Otherwise the word is rare among recent events: ask the full-text index
   for the tenant's matches. Fewer than FEW_MATCHES (counted up to there) are looked
   up and sorted; more are a set that a newest-first walk of the tenant's events
   checks each row against (a word in 1 event of 1,000 fills a page after ~50,000
   rows, where looking up 2,000 scattered matches would cost more).

Conditions only negated ("-word") have nothing to look up in an index: the probe walks
on, PROBE_ROWS at a time, until the page is full (most events match a negation).

SQLite: FTS5 table ``events_fts`` (rowid = tenant number << 40 | seq, column ``terms``
= kit/fulltext.document_text). The probe checks rows with ``instr`` on ``terms``, the
index step with MATCH over the tenant's rowid range.

PostgreSQL (the ``search`` tsvector column of events and its GIN index, which holds
every tenant's rows) checks rows server-side as it walks, in windows, and asks the GIN
index only for what the walk does not find cheaply: store/reads/fulltext_walk.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from trailkeep.kit.fulltext import TextSearch
from trailkeep.query.filter import EventFilter
from trailkeep.store.connection import SqlConnection
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT
from trailkeep.store.models import EventRow, PageKey
from trailkeep.store.reads.conditions import Where
from trailkeep.store.reads.fulltext_walk import tsquery, walk_search
from trailkeep.store.reads.pages import (
    ReadDialect,
    bodies_at,
    list_page,
    order_bounds,
    padded,
    residual_of,
    rows_needed,
)

PROBE_ROWS = 2000  # rows a probe reads at most (conditions the index can answer)
PROBE_FIRST = 200  # its first step
# SQLite: below this many matches of the tenant, the index step looks each one up.
FEW_MATCHES = 1000
_TENANT_BASE = f"(SELECT num FROM tenants WHERE id = ?) << {TENANT_SHIFT}"


def fts5_query(text: Sequence[TextSearch]) -> str:
    """One FTS5 MATCH expression: the positive conditions, then NOT each negated one."""
    positive = " AND ".join(t.fts5() for t in text if not t.negated)
    negated = "".join(f" NOT {t.fts5()}" for t in text if t.negated)
    return f"({positive}){negated}"


def _sqlite_row_check(text: Sequence[TextSearch]) -> Where:
    where = Where()
    for t in text:
        where.add(f"instr(f.terms, ?) {'=' if t.negated else '>'} 0", t.sqlite_needle())
    return where


def _matching(conn: SqlConnection, flt: EventFilter, keys: list[tuple[int, int]]) -> set[int]:
    """The seqs among ``keys`` whose text matches every condition of ``flt.text``."""
    check = _sqlite_row_check(flt.text)
    sql = (
        f"SELECT f.rowid - b.base FROM (SELECT {_TENANT_BASE} AS base) AS b,"
        " json_each(?) AS k CROSS JOIN events_fts AS f ON f.rowid = b.base + k.value"
        f" WHERE {check.text()}"
    )
    args = [flt.tenant_id, "[" + ",".join(str(k[1]) for k in keys) + "]", *check.args]
    return {row[0] for row in conn.execute(sql, args).fetchall()}


def _probe(
    conn: SqlConnection,
    dialect: ReadDialect,
    flt: EventFilter,
    after: PageKey | None,
    limit: int,
    bounded: bool,
) -> tuple[list[tuple[int, int]], bool]:
    """Matches among the newest rows passing the other filters: (keys, complete).

    ``complete``: these are all the page's rows (page full, or no rows left). Bounded
    (a positive condition, which the index can answer): at most PROBE_ROWS rows, read
    in steps, the first of PROBE_FIRST; it gives up as soon as the rate of matches seen
    says the page would not fill within PROBE_ROWS. A common word then costs the few
    hundred rows its page needs, a rarer one a first step only.
    """
    plain = replace(flt, text=())
    found: list[tuple[int, int]] = []
    cursor = after
    read = 0
    step = min(PROBE_FIRST, PROBE_ROWS) if bounded else PROBE_ROWS
    while True:
        rows = list_page(conn, dialect, plain, cursor, step, with_bodies=False)
        if not rows:
            return found, True
        keys = [(r.occurred_at, r.seq) for r in rows]
        hits = _matching(conn, flt, keys)
        found += [k for k in keys if k[1] in hits]
        if len(found) >= limit:
            return found[:limit], True
        if len(rows) < step:
            return found, True
        read += len(rows)
        cursor = PageKey(*keys[-1])
        if bounded:
            if not found:
                return found, False
            needed = rows_needed(limit - len(found), read, len(found))
            if read + needed > PROBE_ROWS:
                return found, False
            step = min(padded(needed), PROBE_ROWS - read)


def _tenant_matches_sql(limit: bool) -> str:
    """SQLite: the seqs of the tenant's FTS5 matches (args: tenant, MATCH expression)."""
    return (
        f"SELECT f.rowid - b.base AS seq FROM (SELECT {_TENANT_BASE} AS base) AS b"
        " CROSS JOIN events_fts AS f WHERE f.terms MATCH ?"
        f" AND f.rowid >= b.base AND f.rowid < b.base + {1 << TENANT_SHIFT}"
        + (" LIMIT ?" if limit else "")
    )


def _few_matches(conn: SqlConnection, flt: EventFilter) -> bool:
    """SQLite: does the text match fewer than FEW_MATCHES events of the tenant? Counts
    at most that many, so a common word costs no more than a rare one."""
    sql = f"SELECT COUNT(*) FROM ({_tenant_matches_sql(limit=True)}) AS m"
    args = [flt.tenant_id, fts5_query(flt.text), FEW_MATCHES]
    return int(conn.execute(sql, args).fetchone()[0]) < FEW_MATCHES


def _from_index(
    conn: SqlConnection, dialect: ReadDialect, flt: EventFilter, after: PageKey | None, limit: int
) -> list[tuple[int, int]]:
    """The page from the full-text index: every match of the tenant, filtered, sorted."""
    where = residual_of(dialect, flt, set())
    where.extend(order_bounds(flt, after, "e"))
    args: list[Any]
    if _few_matches(conn, flt):
        # Few matches: look each one up and sort them (cost: the matches).
        sql = (
            f"SELECT e.occurred_at, e.seq FROM ({_tenant_matches_sql(limit=False)}) AS m"
            " CROSS JOIN events AS e ON e.tenant_id = ? AND e.seq = m.seq"
            f" WHERE {where.text()} ORDER BY e.occurred_at DESC, e.seq DESC LIMIT ?"
        )
        args = [flt.tenant_id, fts5_query(flt.text), flt.tenant_id, *where.args, limit]
    else:
        # Many: walk the tenant's events newest first until the page is full, checking
        # each against the set of matches (cost: ~limit / frequency rows; at least
        # FEW_MATCHES matches make that at most ~limit * tenant size / FEW_MATCHES).
        sql = (
            "SELECT e.occurred_at, e.seq FROM events e WHERE e.tenant_id = ? AND e.seq IN"
            f" ({_tenant_matches_sql(limit=False)})"
            f" AND {where.text()} ORDER BY e.occurred_at DESC, e.seq DESC LIMIT ?"
        )
        args = [flt.tenant_id, flt.tenant_id, fts5_query(flt.text), *where.args, limit]
    return [(row[0], row[1]) for row in conn.execute(sql, args).fetchall()]


def search_events(
    conn: SqlConnection, dialect: ReadDialect, flt: EventFilter, after: PageKey | None, limit: int
) -> list[EventRow]:
    if dialect.partitioned:
        keys = walk_search(conn, dialect, flt, after, limit)
    else:
        has_positive = any(not t.negated for t in flt.text)
        keys, complete = _probe(conn, dialect, flt, after, limit, bounded=has_positive)
        if not complete:
            keys = _from_index(conn, dialect, flt, after, limit)
    if not keys:
        return []
    bodies = bodies_at(conn, dialect, flt.tenant_id, keys)
    return [EventRow(at, seq, bytes(bodies[seq])) for at, seq in keys if seq in bodies]


def text_predicate(dialect: ReadDialect, flt: EventFilter) -> Where:
    """``flt.text`` as one predicate on events ``e`` (for stats counted from events)."""
    if dialect.partitioned:
        return Where(["e.search @@ CAST(? AS tsquery)"], [tsquery(flt.text)])
    if any(not t.negated for t in flt.text):
        return Where(
            [
                "e.seq IN (SELECT f.rowid - b.base FROM"
                f" (SELECT {_TENANT_BASE} AS base) AS b CROSS JOIN events_fts AS f"
                f" WHERE f.terms MATCH ? AND f.rowid >= b.base"
                f" AND f.rowid < b.base + {1 << TENANT_SHIFT})"
            ],
            [flt.tenant_id, fts5_query(flt.text)],
        )
    check = _sqlite_row_check(flt.text)
    return Where(
        [
            f"EXISTS (SELECT 1 FROM events_fts AS f WHERE f.rowid = ({_TENANT_BASE}) + e.seq"
            f" AND {check.text()})"
        ],
        [flt.tenant_id, *check.args],
    )
