"""The indexer: the follower (log/follower.py) that keeps the data derived from the log,
the full-text rows and the stats rollups, off the acknowledging commit.

Everything is computed from the stored event (its columns and its RFC 8785 body), so the
indexer, the migrations' backfills and the benchmarks' preloads derive exactly the same
rows from the same events. Per batch of one tenant's events, ``prepare`` (a worker
thread, no database) parses each body once, tokenizes it, and adds up the rollup
counts; ``write`` stores them inside the transaction that moves the indexer's position.
A batch of thousands of events then writes each rollup row once per group, where the
commit path wrote it once per group commit.

What the backend does with them is injected: SQLite inserts FTS5 rows
(fulltext/index_rows.py) and upserts rollups with VALUES lists; PostgreSQL keeps its
tsvector in the event row (written at commit) and upserts rollups through ``unnest``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from trailkeep.store.connection import SqlConnection
from trailkeep.store.fulltext.index_rows import TextRow, text_row
from trailkeep.store.log.positions import BODY, LogRow
from trailkeep.store.stats.rollup_writes import Deltas, rollup_deltas

INDEXER = "index"  # the indexer's name in log_positions
WriteText = Callable[[SqlConnection, list[TextRow]], None]
WriteCounts = Callable[[SqlConnection, Deltas], None]


@dataclass(slots=True)
class Prepared:
    text: list[TextRow]
    deltas: Deltas


def target_rows(row: LogRow, doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The event's rows as ``event_targets`` holds them (tenant, seq, type, id, occurred)."""
    return [
        (row[0], row[1], t["type"], t["id"], row[3])
        for t in doc.get("targets") or ()
        if isinstance(t, dict)
    ]


class DerivedIndexer:
    """The FollowerHandler of the full-text rows and stats rollups."""

    def __init__(self, write_text: WriteText | None, write_counts: WriteCounts) -> None:
        self._write_text = write_text
        self._write_counts = write_counts

    def prepare(self, rows: Sequence[LogRow]) -> Prepared:
        text: list[TextRow] = []
        targets: list[tuple[Any, ...]] = []
        for row in rows:
            doc = orjson.loads(row[BODY])
            if self._write_text is not None:
                text.append(text_row(row[0], row[1], doc))
            targets.extend(target_rows(row, doc))
        return Prepared(text, rollup_deltas(rows, targets))

    def write(self, conn: SqlConnection, prepared: Sequence[Prepared]) -> None:
        deltas: Deltas = {}
        text: list[TextRow] = []
        for part in prepared:
            text.extend(part.text)
            for spec, counter in part.deltas.items():
                deltas.setdefault(spec, Counter()).update(counter)
        if self._write_text is not None and text:
            self._write_text(conn, text)
        self._write_counts(conn, deltas)
