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

from dataclasses import dataclass
from typing import Any

import orjson

Row = dict[str, Any]
"""An event document (the stored form, or the view of it for one role)."""


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    path: str  # the event field it shows (docs, and the verifier's messages)
    kind: str  # "int", "time", "text", "json", "targets"


def _text(name: str, *path: str) -> Column:
    return Column(name, ".".join(path), "text")


COLUMNS: tuple[Column, ...] = (
    Column("seq", "seq", "int"),
    _text("id", "id"),
    Column("occurred_at", "occurred_at", "time"),
    Column("received_at", "received_at", "time"),
    _text("action", "action"),
    _text("severity", "severity"),
    _text("outcome", "outcome"),
    _text("actor_id", "actor", "id"),
    _text("actor_type", "actor", "type"),
    _text("actor_name", "actor", "name"),
    _text("actor_email", "actor", "email"),
    Column("targets", "targets", "targets"),
    _text("message", "message"),
    _text("ip_address", "context", "ip_address"),
    _text("user_agent", "context", "user_agent"),
    _text("request_id", "context", "request_id"),
    _text("session_id", "context", "session_id"),
    _text("location", "context", "location"),
    Column("changes", "changes", "json"),
    Column("metadata", "metadata", "json"),
    _text("subject_id", "subject_id"),
)
"""The view columns, in file order; ``stored`` follows them."""

STORED = "stored"
NAMES: tuple[str, ...] = (*(c.name for c in COLUMNS), STORED)


_EMPTY: dict[str, Any] = {}


def _t(value: Any) -> Any:
    """A scalar field as text; a non-scalar there (a sealed envelope in the stored form,
    or an odd value) as its JSON."""
    return value if value is None or type(value) is str else _json(value)


def view_values(doc: Row) -> list[Any]:
    """The view columns of one event, in COLUMNS order, as Python values (targets: a
    list of dicts). Written out field by field: this runs for every exported row."""
    get = doc.get
    actor = get("actor")
    if not isinstance(actor, dict):
        actor = _EMPTY
    context = get("context")
    if not isinstance(context, dict):
        context = _EMPTY
    changes, metadata = get("changes"), get("metadata")
    return [
        get("seq"),
        _t(get("id")),
        get("occurred_at"),
        get("received_at"),
        _t(get("action")),
        _t(get("severity")),
        _t(get("outcome")),
        _t(actor.get("id")),
        _t(actor.get("type")),
        _t(actor.get("name")),
        _t(actor.get("email")),
        get("targets"),
        _t(get("message")),
        _t(context.get("ip_address")),
        _t(context.get("user_agent")),
        _t(context.get("request_id")),
        _t(context.get("session_id")),
        _t(context.get("location")),
        None if changes is None else _json(changes),
        None if metadata is None else _json(metadata),
        _t(get("subject_id")),
    ]


def cell_text(kind: str, value: Any) -> str:
    """One view value as CSV shows it (None: empty; JSON for what is not text)."""
    if value is None:
        return ""
    if kind == "int":
        return str(value)
    if isinstance(value, str) and kind != "targets":
        return value
    return _json(value) or ""


KINDS: tuple[str, ...] = tuple(c.kind for c in COLUMNS)


def text_cells(values: list[Any]) -> list[str]:
    """The view columns as text, the way CSV shows them."""
    return [cell_text(kind, v) for kind, v in zip(KINDS, values, strict=True)]
