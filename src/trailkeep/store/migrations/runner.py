"""Schema migrations from code: ``trailkeep migrate`` and the start-up schema check.

Alembic keeps one version history per backend. The service never migrates on its own
at start: it checks that the database is at exactly the revision this version of
Trailkeep expects and otherwise refuses to start with a message saying what to run.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from trailkeep.store.tables import metadata_for
from trailkeep.store.urls import Backend, DatabaseUrl

_MIGRATIONS = Path(__file__).parent  # the Alembic script folder: env.py, versions_*
# SQLite's default page size, set explicitly. 0.1 meant to use 16 KiB pages but set
# journal_mode first, which fixes the page size at the default: all its figures were
# measured with 4 KiB. Measured again with 16 KiB really in effect (bench/ingest.py):
# single events fell from ~3,400 to ~2,500 events/s (every commit writes whole pages
# to the WAL) while batches stayed within noise, so 4 KiB it is.
SQLITE_PAGE_SIZE = 4096


class SchemaError(RuntimeError):
    """The database cannot be used as it is; the message says what to do."""


@dataclass(frozen=True, slots=True)
class MigrationResult:
    before: str | None
    after: str


def alembic_config(backend: Backend) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("version_locations", str(_MIGRATIONS / f"versions_{backend}"))
    config.set_main_option("path_separator", "os")
    config.attributes["metadata"] = metadata_for(backend)
    return config


@functools.cache
def _script(backend: Backend) -> ScriptDirectory:
    """The migration files of a backend; they do not change while the process runs."""
    return ScriptDirectory.from_config(alembic_config(backend))


def head_revision(backend: Backend) -> str:
    head = _script(backend).get_current_head()
    assert head is not None
    return head


def _known_revisions(backend: Backend) -> set[str]:
    return {rev.revision for rev in _script(backend).walk_revisions()}


@contextmanager
def _connect(db: DatabaseUrl, timeout: float = 5.0) -> Iterator[Connection]:
    args = {"connect_timeout": max(1, int(timeout))} if db.backend == "postgresql" else {}
    engine = create_engine(db.sqlalchemy, connect_args=args)
    try:
        with engine.connect() as conn:
            yield conn
    except DBAPIError as exc:
        raise SchemaError(_describe(db, exc)) from None
    finally:
        engine.dispose()


def _describe(db: DatabaseUrl, exc: DBAPIError) -> str:
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return f"database {db.redacted}: {detail}"


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _prepare_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path))
    try:
        # The page size only takes effect while the file is empty, so it comes before
        # anything that writes the header (journal_mode = WAL does).
        conn.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
        # Pages that retention frees go back to the file system in bounded steps
        # (store/sqlite/store.py reclaim_space); like the page size, only while empty.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


def _adopt_unversioned(conn: Connection, backend: Backend) -> bool:
    """True for a SQLite database made before migrations existed (by 0.1's create_all).

    Its tables are exactly revision 0001, so it is stamped, not re-created.
    """
    tables = set(inspect(conn).get_table_names())
    return backend == "sqlite" and "schema_info" in tables and "events" in tables


def upgrade(db: DatabaseUrl) -> MigrationResult:
    """Bring the database to the newest revision this Trailkeep knows."""
    if db.backend == "sqlite":
        try:
            _prepare_sqlite(db.sqlite_path)
        except (OSError, sqlite3.Error) as exc:
            raise SchemaError(f"cannot create the database at {db.sqlite_path}: {exc}") from None
    config = alembic_config(db.backend)
    head = head_revision(db.backend)
    with _connect(db) as conn:
        before = current_revision(conn)
        if before is not None and before not in _known_revisions(db.backend):
            raise SchemaError(_newer_message(db, before, head))
        config.attributes["connection"] = conn
        try:
            if before is None and _adopt_unversioned(conn, db.backend):
                command.stamp(config, "0001")
                conn.exec_driver_sql("DROP TABLE schema_info")
            command.upgrade(config, "head")
            conn.commit()
        except SQLAlchemyError as exc:
            raise SchemaError(f"migration failed on {db.redacted}: {exc}") from None
    return MigrationResult(before, head)


def _newer_message(db: DatabaseUrl, found: str, head: str) -> str:
    return (
        f"the schema of {db.redacted} is at revision {found}, which this version of "
        f"Trailkeep does not know (it knows up to {head}): the database was migrated by a "
        "newer Trailkeep; run that version, or restore a backup"
    )


def check_schema(db: DatabaseUrl, timeout: float = 5.0) -> None:
    """Raise SchemaError unless the database is at exactly the expected revision."""
    head = head_revision(db.backend)
    if db.backend == "sqlite" and not db.sqlite_path.exists():
        raise SchemaError(
            f"no database at {db.sqlite_path}: run `trailkeep migrate` (or `trailkeep init`)"
        )
    with _connect(db, timeout) as conn:
        found = current_revision(conn)
    if found == head:
        return
    if found is None:
        raise SchemaError(
            f"the database {db.redacted} has no Trailkeep schema (or one from before "
            "migrations): run `trailkeep migrate`"
        )
    if found not in _known_revisions(db.backend):
        raise SchemaError(_newer_message(db, found, head))
    raise SchemaError(
        f"the schema of {db.redacted} is at revision {found}, older than {head}: "
        "run `trailkeep migrate`"
    )
