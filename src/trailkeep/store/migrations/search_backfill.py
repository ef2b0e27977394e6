"""Index events stored before full-text search and stats existed (migration 0003).

Runs inside the migration's transaction: fills the stats rollups with one
INSERT ... SELECT each, then indexes every stored body's text in batches (SQLite: rows
of events_fts; PostgreSQL: the ``search`` column), showing progress on stderr.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, MetaData, text
from sqlalchemy.schema import CreateTable

from trailkeep.kit.fulltext import document_text, document_tsvector
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT, body_tokens
from trailkeep.store.migrations.tree_backfill import say_progress
from trailkeep.store.stats.recount import rebuild_rollups_sql
from trailkeep.store.stats.rollup_specs import RollupSpec

_BATCH = 5_000
_REPORT_EVERY_SECONDS = 5.0


def backfill_rollups(conn: Connection, specs: Sequence[RollupSpec]) -> None:
    for spec in specs:
        conn.execute(text(rebuild_rollups_sql(spec)))


def add_rollups(conn: Connection, metadata: MetaData, specs: Sequence[RollupSpec]) -> None:
    """Create the rollup tables of ``specs`` (without indexes: each revision adds its own)
    and fill them from the stored events."""
    for spec in specs:
        conn.execute(CreateTable(metadata.tables[spec.table]))
    backfill_rollups(conn, specs)


def number_tenants(conn: Connection) -> None:
    """SQLite: give every tenant its number (the high bits of its FTS rowids)."""
    ids = [r[0] for r in conn.execute(text("SELECT id FROM tenants ORDER BY created_at, id"))]
    for num, tenant_id in enumerate(ids, start=1):
        conn.execute(text("UPDATE tenants SET num = :n WHERE id = :t"), {"n": num, "t": tenant_id})


def backfill_text(conn: Connection, postgres: bool) -> int:
    """Index the text of every stored event; returns how many were indexed."""
    total = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
    if total:
        say_progress(f"indexing the text of {total:,} stored events")
    done = 0
    started = last = time.monotonic()
    nums: dict[str, int | None] = (
        {} if postgres else dict(conn.execute(text("SELECT id, num FROM tenants")).all())
    )
    for tenant_id in [r[0] for r in conn.execute(text("SELECT DISTINCT tenant_id FROM events"))]:
        after = -1
        while True:
            rows = conn.execute(
                text(
                    "SELECT seq, occurred_at, body FROM events WHERE tenant_id = :t AND seq > :s"
                    " ORDER BY seq LIMIT :n"
                ),
                {"t": tenant_id, "s": after, "n": _BATCH},
            ).all()
            if not rows:
                break
            after = rows[-1][0]
            if postgres:
                conn.execute(
                    text(
                        "UPDATE events SET search = CAST(:v AS tsvector) WHERE tenant_id = :t"
                        " AND occurred_at = :o AND seq = :s"
                    ),
                    [
                        {"v": document_tsvector(body_tokens(body)), "t": tenant_id, "o": o, "s": s}
                        for s, o, body in rows
                    ],
                )
            else:
                num = nums.get(tenant_id)
                if num is None:
                    continue  # events of a tenant deleted before: nothing can read them
                base = num << TENANT_SHIFT
                conn.execute(
                    text("INSERT INTO events_fts (rowid, terms) VALUES (:r, :v)"),
                    [
                        {"r": base + s, "v": document_text(body_tokens(body))}
                        for s, _o, body in rows
                    ],
                )
            done += len(rows)
            if time.monotonic() - last > _REPORT_EVERY_SECONDS:
                last = time.monotonic()
                say_progress(f"  {done:,} of {total:,} events indexed ({last - started:.0f} s)")
    return done
