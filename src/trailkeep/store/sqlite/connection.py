"""Opening SQLite connections with the pragmas Trailkeep relies on.

The schema itself comes from the migrations (store/migrations/runner.py), which also give a new
database its page size.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

MMAP_BYTES = 8 * 1024**3


def open_connection(
    path: Path,
    *,
    synchronous: str = "FULL",
    cache_mb: int = 64,
    readonly: bool = False,
    mmap: bool = True,
) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a group commit is one
    # explicit transaction and nothing is committed behind our back.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute(f"PRAGMA cache_size = {-cache_mb * 1024}")
    conn.execute("PRAGMA temp_store = MEMORY")
    # Reads through mmap skip a read() call and a copy per page; SQLite caps the size
    # at its compile-time maximum (2 GiB on common builds).
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES if mmap else 0}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn
