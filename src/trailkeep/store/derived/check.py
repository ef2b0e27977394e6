"""Is the derived data exactly what the log says? A recomputation from the events.

For one tenant, the indexer's applied range (seq below its position) is recomputed from
the stored events in Python, independently of the indexer's SQL (the counts of
stats/recount.rollup_deltas, the texts of fulltext/text_worker.text_of, the events per
subject of subject_of), and compared with what is stored: every rollup row, every
subject_stats row, and on SQLite every full-text row.
Events the indexer recorded as skipped are left out of the expected texts. Used by the
crash tests after a kill -9 and by ``bench/ingest.py``; it reads every event of the
tenant, so it is a tool for tests and audits, not for a request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from trailkeep.store.connection import SqlConnection
from trailkeep.store.derived.indexer import INDEXER
from trailkeep.store.fulltext.index_rows import TENANT_SHIFT
from trailkeep.store.fulltext.text_worker import text_of
from trailkeep.store.log.positions import BODY, LogRow, position, read_log, skipped
from trailkeep.store.stats.recount import Deltas, rollup_deltas
from trailkeep.store.stats.rollup_specs import ROLLUPS

_CHUNK = 5000


def target_rows(row: LogRow, doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The event's rows as ``event_targets`` holds them (tenant, seq, type, id, occurred)."""
    return [
        (row[0], row[1], t["type"], t.get("id"), row[3])
        for t in doc.get("targets") or ()
        if isinstance(t, dict) and isinstance(t.get("type"), str)
    ]


def subject_of(doc: dict[str, Any]) -> str | None:
    """The subject an event counts for in subject_stats: its top-level ``subject``
    object's string ``id`` (privacy/subject_counts.py selects the same in SQL)."""
    subject = doc.get("subject")
    sid = subject.get("id") if isinstance(subject, dict) else None
    return sid if isinstance(sid, str) else None


def _count_subject(counts: dict[str, tuple[int, ...]], sid: str, row: LogRow) -> None:
    seq, at = row[1], row[3]
    was = counts.get(sid)
    if was is None:
        counts[sid] = (1, seq, seq, at, at)
    else:
        n, first_seq, last_seq, first_at, last_at = was
        counts[sid] = (
            n + 1,
            min(first_seq, seq),
            max(last_seq, seq),
            min(first_at, at),
            max(last_at, at),
        )


def derived_problems(conn: SqlConnection, postgres: bool, tenant_id: str) -> list[str]:
    """What differs between the stored derived data of ``tenant_id`` and a recomputation
    from its events (empty: they agree). Rows past the indexer's position must not exist."""
    end = position(conn, INDEXER, tenant_id)
    skips = {seq for seq, _error in skipped(conn, INDEXER, tenant_id)}
    want_counts: dict[Any, Counter[Any]] = {spec: Counter() for spec in ROLLUPS}
    want_text: dict[int, str] = {}
    want_subjects: dict[str, tuple[int, ...]] = {}
    for start in range(0, end, _CHUNK):
        rows = read_log(conn, postgres, tenant_id, start, min(end, start + _CHUNK))
        targets: list[tuple[Any, ...]] = []
        for row in rows:
            doc = orjson.loads(row[BODY])
            targets += target_rows(row, doc)
            sid = subject_of(doc)
            if sid is not None:
                _count_subject(want_subjects, sid, row)
            if not postgres and row[1] not in skips:
                want_text[row[1]] = text_of(doc)
        deltas: Deltas = rollup_deltas(rows, targets)
        for spec, counter in deltas.items():
            want_counts[spec].update(counter)
    problems: list[str] = []
    for spec in ROLLUPS:
        columns = ", ".join(("tenant_id", "bucket", *spec.dims, "n"))
        have = {
            tuple(r[:-1]): int(r[-1])
            for r in conn.execute(
                f"SELECT {columns} FROM {spec.table} WHERE tenant_id = ?", (tenant_id,)
            ).fetchall()
        }
        problems += _differences(
            spec.table, have, {k: n for k, n in want_counts[spec].items() if n}
        )
    have_subjects = {
        r[0]: tuple(int(v) for v in r[1:])
        for r in conn.execute(
            "SELECT subject_id, events, first_seq, last_seq, first_at, last_at"
            " FROM subject_stats WHERE tenant_id = ?",
            (tenant_id,),
        ).fetchall()
    }
    problems += _differences("subject_stats", have_subjects, want_subjects)
    if not postgres:
        problems += _text_problems(conn, tenant_id, want_text)
    return problems


def _differences(what: str, have: dict[Any, Any], want: dict[Any, Any]) -> list[str]:
    if have == want:
        return []
    missing = len(want.keys() - have.keys())
    extra = len(have.keys() - want.keys())
    wrong = sum(1 for k in have.keys() & want.keys() if have[k] != want[k])
    return [f"{what}: {missing} rows missing, {extra} extra, {wrong} wrong"]


def _text_problems(conn: SqlConnection, tenant_id: str, want: dict[int, str]) -> list[str]:
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
    return _differences("events_fts", have, want)
