"""Counting a range of one tenant's log into ``subject_stats``, in SQL (the indexer's
write, store/derived/indexer.count_range; the recount of store/derived/check.py is
the Python twin).

An event counts for a subject when its stored body has a top-level ``subject`` object
whose ``id`` is a string. One ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO
UPDATE`` per range adds the counts and widens the seq and time bounds. Most events have
no subject: a byte search for ``"subject":{`` (bodies are RFC 8785 JSON, without
spaces) passes over them before any JSON is parsed; the JSON path then keeps only the
top-level member (the bytes also match a nested one).

The range is selected as the rollups select it (stats/range_counts.py): on SQLite by the
clustered key (tenant_id, seq); on PostgreSQL through ``event_ids`` (tenant_id, seq) ->
occurred_at, which finds each row's partition by the events key (tenant_id,
occurred_at, seq), planned for the range's own bounds (stage_range set custom plans
for the transaction).
"""

from __future__ import annotations

import functools

from trailkeep.store.connection import SqlConnection

_COLUMNS = "tenant_id, subject_id, events, first_seq, last_seq, first_at, last_at"


@functools.cache
def count_subjects_sql(postgres: bool) -> str:
    """The statement, with parameters (tenant_id, from_seq, to_seq)."""
    if postgres:
        # The qmark adapter hands psycopg this text: it must hold no "?" or "%".
        # OFFSET 0 fences: the planner guesses the byte search and the JSON test far
        # more selective than they are; pushed down into the range query, they made it
        # drive the join from the tenant's events (every partition) instead of from
        # event_ids' range (measured: all 200,000 events of a tenant read for a range of
        # 2,000). Fenced, the range is the very join stage_range plans, and each body's
        # JSON is parsed once.
        ranged = (
            "SELECT r.tenant_id, r.seq, r.occurred_at,"
            " convert_from(r.body, 'UTF8')::jsonb #> '{subject,id}' AS sid"
            " FROM (SELECT e.tenant_id, e.seq, e.occurred_at, e.body"
            " FROM event_ids i JOIN events e ON e.tenant_id = i.tenant_id"
            " AND e.occurred_at = i.occurred_at AND e.seq = i.seq"
            " WHERE i.tenant_id = ? AND i.seq >= ? AND i.seq < ? OFFSET 0) AS r"
            " WHERE position('\"subject\":{'::bytea in r.body) > 0 OFFSET 0"
        )
        subject, is_text = "s.sid #>> '{}'", "jsonb_typeof(s.sid) = 'string'"
        low, high = "LEAST", "GREATEST"
    else:
        # Both arguments of instr() BLOBs: a byte search, without converting the body.
        ranged = (
            "SELECT e.tenant_id, e.seq, e.occurred_at, CAST(e.body AS TEXT) AS doc"
            " FROM events e WHERE e.tenant_id = ? AND e.seq >= ? AND e.seq < ?"
            " AND instr(e.body, CAST('\"subject\":{' AS BLOB)) > 0"
        )
        subject = "json_extract(s.doc, '$.subject.id')"
        is_text = "json_type(s.doc, '$.subject.id') = 'text'"
        # SQLite's min() and max() of several arguments are its LEAST and GREATEST.
        low, high = "min", "max"
    # Rows in key order: two transactions upserting the same rows lock them in the same
    # order (a tenant's range is applied by one process at a time anyway, under the lock
    # of its follower position).
    return (
        f"INSERT INTO subject_stats ({_COLUMNS})"
        f" SELECT s.tenant_id, {subject}, COUNT(*), MIN(s.seq), MAX(s.seq),"
        " MIN(s.occurred_at), MAX(s.occurred_at)"
        f" FROM ({ranged}) AS s WHERE {is_text}"
        " GROUP BY 1, 2 ORDER BY 1, 2"
        " ON CONFLICT (tenant_id, subject_id) DO UPDATE SET"
        " events = subject_stats.events + excluded.events,"
        f" first_seq = {low}(subject_stats.first_seq, excluded.first_seq),"
        f" last_seq = {high}(subject_stats.last_seq, excluded.last_seq),"
        f" first_at = {low}(subject_stats.first_at, excluded.first_at),"
        f" last_at = {high}(subject_stats.last_at, excluded.last_at)"
    )


def count_subjects(
    conn: SqlConnection, postgres: bool, tenant_id: str, from_seq: int, to_seq: int
) -> None:
    """Add the tenant's events [from_seq, to_seq) to subject_stats (caller's transaction)."""
    conn.execute(count_subjects_sql(postgres), (tenant_id, from_seq, to_seq))
