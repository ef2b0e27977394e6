"""Run SQL written with ``?`` placeholders (shared with SQLite) on a psycopg connection."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    # The shared SQL contains no literal "?" or "%": every "?" is a placeholder.
    return sql.replace("?", "%s")


class QmarkConnection:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self.conn.execute(to_pyformat(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        cur = self.conn.cursor()
        cur.executemany(to_pyformat(sql), parameters)
        return cur
