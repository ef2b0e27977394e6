"""Database URLs: which backend a URL names, and the forms each library wants of it.

Users write ``sqlite:///PATH`` or ``postgresql://user@host:port/db`` (``postgres://``
too). SQLAlchemy (migrations) wants the psycopg driver named in the scheme; psycopg
itself wants the plain libpq URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Backend = Literal["sqlite", "postgresql"]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class DatabaseUrlError(ValueError):
    """The URL names no backend Trailkeep supports, or is malformed."""


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    backend: Backend
    raw: str

    @property
    def sqlite_path(self) -> Path:
        assert self.backend == "sqlite"
        return Path(self.raw.removeprefix("sqlite:///"))

    @property
    def libpq(self) -> str:
        """The URL for psycopg (``postgresql://…``)."""
        assert self.backend == "postgresql"
        return "postgresql://" + self.raw.split("://", 1)[1]

    @property
    def sqlalchemy(self) -> str:
        if self.backend == "sqlite":
            return self.raw
        return "postgresql+psycopg://" + self.raw.split("://", 1)[1]

    @property
    def redacted(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.backend == "sqlite":
            return self.raw
        parts = urlsplit(self.raw)
        if parts.password is None:
            return self.raw
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()


def parse_database_url(url: str) -> DatabaseUrl:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return DatabaseUrl("sqlite", url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in _POSTGRES_SCHEMES:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as exc:
            raise DatabaseUrlError(f"malformed PostgreSQL URL: {exc}") from None
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise DatabaseUrlError(
                "the PostgreSQL URL names no database: expected postgresql://USER@HOST:PORT/DBNAME"
            )
        return DatabaseUrl("postgresql", url)
    shown = url.split("@")[-1] if "@" in url else url
    raise DatabaseUrlError(
        f"unsupported database URL {shown!r}: expected sqlite:///PATH or "
        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
    )
