"""Reading a tenant's events in seq order over a seq range, optionally filtered: what an
export streams (exports/runner.py), a bounded chunk at a time.

The range is walked by the log's own key (SQLite: the primary key ``(tenant_id, seq)``;
PostgreSQL: ``event_ids``, which locates each event's partition), so a chunk costs the
rows it returns plus those the filter rejects, whatever the tenant's size. Filters are
the page planner's own row conditions (pages.residual_of), time bounds and, for free
text, the full-text predicate (fulltext.text_predicate): exactly what a query means in
``GET /v1/events``.
"""

from __future__ import annotations

from trailkeep.query.filter import EventFilter
from trailkeep.store.connection import SqlConnection
from trailkeep.store.reads.conditions import Where
from trailkeep.store.reads.fulltext import text_predicate
from trailkeep.store.reads.pages import ReadDialect, bodies_at, order_bounds, residual_of


def _filter_where(dialect: ReadDialect, flt: EventFilter) -> Where:
    where = residual_of(dialect, flt, set())
    where.extend(order_bounds(flt, None, "e"))
    if flt.text:
        where.extend(text_predicate(dialect, flt))
    return where


def events_in_seq_range(
    conn: SqlConnection,
    dialect: ReadDialect,
    flt: EventFilter,
    from_seq: int,
    to_seq: int,
    limit: int,
) -> tuple[list[tuple[int, bytes]], int]:
    """Up to ``limit`` events of ``flt`` with ``from_seq <= seq < to_seq``, in seq order,
    and the seq to continue from (``to_seq`` once the range is done).

    At most ``limit`` seqs are examined per call, matching or not, so a selective filter
    costs bounded work per call too.
    """
    if flt.impossible or from_seq >= to_seq:
        return [], to_seq
    upper = min(to_seq, from_seq + limit)
    where = _filter_where(dialect, flt)
    if dialect.partitioned:
        keys = conn.execute(
            "SELECT occurred_at, seq FROM event_ids WHERE tenant_id = ? AND seq >= ?"
            " AND seq < ? ORDER BY seq",
            (flt.tenant_id, from_seq, upper),
        ).fetchall()
        if not keys:
            return [], upper
        found = bodies_at(conn, dialect, flt.tenant_id, [(k[0], k[1]) for k in keys], where)
        return [(seq, _as_bytes(found[seq])) for _, seq in keys if seq in found], upper
    where.add("e.tenant_id = ?", flt.tenant_id)
    where.add("e.seq >= ? AND e.seq < ?", from_seq, upper)
    # NOT INDEXED: walk the table's own key (WITHOUT ROWID: the primary key), never an
    # index a filter column would tempt the planner into.
    source = "events e NOT INDEXED" if dialect.index_hints else "events e"
    rows = conn.execute(
        f"SELECT e.seq, e.body FROM {source} WHERE {where.text()} ORDER BY e.seq",
        where.args,
    ).fetchall()
    return [(int(seq), _as_bytes(body)) for seq, body in rows], upper


def _as_bytes(body: object) -> bytes:
    """A stored body as bytes; SQLite hands back TEXT if someone rewrote the column as
    text (a tampered row must reach the integrity scrub, not crash the read)."""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    assert isinstance(body, bytes | bytearray | memoryview)
    return bytes(body)
