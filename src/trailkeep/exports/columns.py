"""The flat columns of CSV and Parquet exports: one definition for writing and checking.

Each event becomes one row. Top-level and nested scalar fields get a column of their
own (``actor.email`` → ``actor_email``); the free-form parts (``targets``,
``changes``, ``metadata``, ``context.location``) are JSON text in CSV and typed
(targets: a list of structs) or JSON text in Parquet. The last column, ``stored``,
holds the event's stored form, the exact RFC 8785 bytes its Merkle leaf hashes: the
other columns are the event as the requesting role may see it (personal fields
decrypted or masked, privacy/masking.py), ``stored`` is what ``trailkeep verify``
proves. docs/exports.md lists the columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

Row = dict[str, Any]
"""An event document (the stored form, or the view of it for one role)."""


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _at(*path: str) -> Callable[[Row], Any]:
    def get(doc: Row) -> Any:
        node: Any = doc
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    return get


def _text_at(*path: str) -> Callable[[Row], str | None]:
    """A scalar field as text; a non-scalar there (a sealed envelope in the stored
    form, or an odd value) as its JSON."""
    get = _at(*path)

    def text(doc: Row) -> str | None:
        value = get(doc)
        if value is None or isinstance(value, str):
            return value
        return _json(value)

    return text


def _json_at(*path: str) -> Callable[[Row], str | None]:
    get = _at(*path)
    return lambda doc: _json(get(doc))


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    path: str  # the event field it shows (docs, and the verifier's messages)
    kind: str  # "int", "time", "text", "json", "targets"
    get: Callable[[Row], Any]


def _text(name: str, *path: str) -> Column:
    return Column(name, ".".join(path), "text", _text_at(*path))


COLUMNS: tuple[Column, ...] = (
    Column("seq", "seq", "int", _at("seq")),
    _text("id", "id"),
    Column("occurred_at", "occurred_at", "time", _at("occurred_at")),
    Column("received_at", "received_at", "time", _at("received_at")),
    _text("action", "action"),
    _text("severity", "severity"),
    _text("outcome", "outcome"),
    _text("actor_id", "actor", "id"),
    _text("actor_type", "actor", "type"),
    _text("actor_name", "actor", "name"),
    _text("actor_email", "actor", "email"),
    Column("targets", "targets", "targets", _at("targets")),
    _text("message", "message"),
    _text("ip_address", "context", "ip_address"),
    _text("user_agent", "context", "user_agent"),
    _text("request_id", "context", "request_id"),
    _text("session_id", "context", "session_id"),
    _text("location", "context", "location"),
    Column("changes", "changes", "json", _json_at("changes")),
    Column("metadata", "metadata", "json", _json_at("metadata")),
    _text("subject_id", "subject_id"),
)
"""The view columns, in file order; ``stored`` follows them."""

STORED = "stored"
NAMES: tuple[str, ...] = (*(c.name for c in COLUMNS), STORED)


def view_values(doc: Row) -> list[Any]:
    """The view columns of one event, as Python values (targets: a list of dicts)."""
    return [column.get(doc) for column in COLUMNS]


def cell_text(kind: str, value: Any) -> str:
    """One view value as CSV shows it (None: empty; JSON for what is not text)."""
    if value is None:
        return ""
    if kind == "int":
        return str(value)
    if isinstance(value, str) and kind != "targets":
        return value
    return _json(value) or ""


def text_cells(values: list[Any]) -> list[str]:
    """The view columns as text, the way CSV shows them."""
    return [cell_text(c.kind, v) for c, v in zip(COLUMNS, values, strict=True)]
