"""Full-text index rows of stored events (kit/fulltext.py tokens), for both backends.

Computed from the stored body, so the indexer (derived/indexer.py), the benchmarks'
preloads and the migration's backfill index exactly what GET /v1/events/{id} returns.
PostgreSQL's tsvector is a column of the event row, written at commit (with_search);
SQLite's FTS5 rows are written by the indexer after commit (insert_sqlite_text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from trailkeep.kit.fulltext import document_tokens, document_tsvector_binary
from trailkeep.store.connection import SqlConnection
from trailkeep.store.fulltext.text_worker import TextRow

TENANT_SHIFT = 40  # SQLite rowid of an event's row in events_fts: num << 40 | seq
TSVECTOR_OID = 3614
_BODY = 11  # column of the body in stored event rows
_CHUNK = 256


def body_tokens(body: bytes) -> list[str]:
    return document_tokens(orjson.loads(body))


class TsvectorBinaryDumper(Dumper):
    """COPY's binary dumper for tsvector: the value is already in wire format
    (kit/fulltext.document_tsvector_binary). psycopg has none of its own."""

    format = Format.BINARY
    oid = TSVECTOR_OID

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


class TsvectorBinary(bytes):
    """A tsvector in binary wire format (registers TsvectorBinaryDumper's oid)."""


# Registered once for every PostgreSQL connection made from now on (psycopg copies the
# global map into each new connection), not per insert.
psycopg.adapters.register_dumper(TsvectorBinary, TsvectorBinaryDumper)


def with_search(event_rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """PostgreSQL: the rows with their ``search`` tsvector appended."""
    return [(*r, document_tsvector_binary(body_tokens(r[_BODY]))) for r in event_rows]


def tenant_numbers(conn: SqlConnection, tenants: set[str]) -> dict[str, int]:
    marks = ",".join("?" * len(tenants))
    rows = conn.execute(f"SELECT id, num FROM tenants WHERE id IN ({marks})", list(tenants))
    found = {tenant: num for tenant, num in rows.fetchall() if num is not None}
    missing = tenants - found.keys()
    if missing:
        raise RuntimeError(f"events of unknown tenants: {sorted(missing)}")
    return found


def insert_sqlite_text(conn: SqlConnection, rows: Sequence[TextRow]) -> None:
    """SQLite: add the rows to the FTS5 table events_fts (rowid: tenant number, seq)."""
    if not rows:
        return
    nums = tenant_numbers(conn, {r[0] for r in rows})
    values = [((nums[tenant] << TENANT_SHIFT) | seq, text) for tenant, seq, text in rows]
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        marks = ",".join(["(?, ?)"] * len(chunk))
        conn.execute(
            f"INSERT INTO events_fts (rowid, terms) VALUES {marks}",
            [v for row in chunk for v in row],
        )
