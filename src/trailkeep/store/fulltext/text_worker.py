"""SQLite's full-text rows of a range of one tenant's log, made outside the server's
interpreter: the indexer runs this in a process of its own (text_pool.py), so that
tokenizing, the one step of indexing that must be Python (kit/fulltext.py, the same
tokens on both backends), uses the machine's other core instead of taking interpreter
time from the requests. Imports only the standard library, orjson and trailkeep.kit.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import orjson

from trailkeep.kit.fulltext import document_text, document_tokens

TextRow = tuple[str, int, str]  # tenant_id, seq, the event's tokens (document_text)
Problem = tuple[int, str]  # seq, what went wrong
_connections: dict[str, sqlite3.Connection] = {}


def exit_with_parent(parent_pid: int) -> None:
    """The worker's initializer: end this process when the server that started it is gone.
    A server killed with SIGKILL cannot stop its workers, and an orphan would wait on
    its job queue for ever."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def text_of(doc: dict[str, Any]) -> str:
    """The events_fts text of one stored event (its parsed body)."""
    return document_text(document_tokens(doc))


def _reader(path: str) -> sqlite3.Connection:
    conn = _connections.get(path)
    if conn is None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        _connections[path] = conn
    return conn


def texts_for(
    path: str, tenant_id: str, from_seq: int, to_seq: int
) -> tuple[list[TextRow], list[Problem]]:
    """The texts of the tenant's stored events with from_seq <= seq < to_seq, and the
    events that could not be tokenized (poison: skipped by the indexer, with the error)."""
    rows = _reader(path).execute(
        "SELECT seq, body FROM events WHERE tenant_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
        (tenant_id, from_seq, to_seq),
    )
    texts: list[TextRow] = []
    problems: list[Problem] = []
    for seq, body in rows:
        try:
            texts.append((tenant_id, seq, text_of(orjson.loads(body))))
        except Exception as exc:  # one bad event must not stop the others
            problems.append((seq, f"{type(exc).__name__}: {exc}"[:500]))
    return texts, problems
