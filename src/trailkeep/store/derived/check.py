"""Is the derived data exactly what the log says? A recomputation from the events.

For one tenant, the indexer's applied range (seq below its position) is recomputed from
the stored events and compared with what is stored: every rollup row, and (SQLite) every
full-text row. Used by the crash tests after a kill -9 and by ``bench/ingest.py``; it
reads every event of the tenant, so it is a tool for tests and audits, not for a request.
"""

from __future__ import annotations

from collections import Counter

from trailkeep.store.connection import SqlConnection
from trailkeep.store.derived.indexer import INDEXER, DerivedIndexer, Prepared
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT
from trailkeep.store.log.positions import position, read_log
from trailkeep.store.stats.rollup_specs import ROLLUPS

_CHUNK = 5000


def derived_problems(conn: SqlConnection, postgres: bool, tenant_id: str) -> list[str]:
    """What differs between the stored derived data of ``tenant_id`` and a recomputation
    from its events (empty: they agree). Rows past the indexer's position must not exist."""
    end = position(conn, INDEXER, tenant_id)
    recompute = DerivedIndexer(write_text=None if postgres else _no_write, write_counts=_no_counts)
    parts: list[Prepared] = []
    for start in range(0, end, _CHUNK):
        rows = read_log(conn, postgres, tenant_id, start, min(end, start + _CHUNK))
        if rows:
            parts.append(recompute.prepare(rows))
    problems: list[str] = []
    for spec in ROLLUPS:
        want: Counter[tuple[object, ...]] = Counter()
        for part in parts:
            want.update(part.deltas.get(spec, Counter()))
        columns = ", ".join(("tenant_id", "bucket", *spec.dims, "n"))
        have = {
            tuple(r[:-1]): int(r[-1])
            for r in conn.execute(
                f"SELECT {columns} FROM {spec.table} WHERE tenant_id = ?", (tenant_id,)
            ).fetchall()
        }
        wanted = {k: n for k, n in want.items() if n}
        if have != wanted:
            extra = len(have.keys() - wanted.keys())
            missing = len(wanted.keys() - have.keys())
            wrong = sum(1 for k in have.keys() & wanted.keys() if have[k] != wanted[k])
            problems.append(
                f"{spec.table}: {missing} rows missing, {extra} extra, {wrong} wrong counts"
            )
    if not postgres:
        problems += _text_problems(conn, tenant_id, parts)
    return problems


def _text_problems(conn: SqlConnection, tenant_id: str, parts: list[Prepared]) -> list[str]:
    row = conn.execute("SELECT num FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
    if row is None or row[0] is None:
        return [f"tenant {tenant_id} has no full-text number"]
    base = int(row[0]) << TENANT_SHIFT
    have = dict(
        conn.execute(
            "SELECT rowid - ?, terms FROM events_fts WHERE rowid >= ? AND rowid < ?",
            (base, base, base + (1 << TENANT_SHIFT)),
        ).fetchall()
    )
    want = {seq: text for part in parts for _tenant, seq, text in part.text}
    if have == want:
        return []
    missing = len(want.keys() - have.keys())
    extra = len(have.keys() - want.keys())
    wrong = sum(1 for k in have.keys() & want.keys() if have[k] != want[k])
    return [f"events_fts: {missing} rows missing, {extra} extra, {wrong} wrong texts"]


def _no_write(_conn: SqlConnection, _rows: object) -> None:
    raise AssertionError("a check never writes")


def _no_counts(_conn: SqlConnection, _deltas: object) -> None:
    raise AssertionError("a check never writes")
