"""The slice of a DB-API connection that the SQL shared by both backends needs.

``sqlite3.Connection`` has it as is; PostgreSQL connections get it from the qmark
adapter (store/postgres/qmark.py). Shared SQL is written with ``?`` placeholders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class SqlCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...
