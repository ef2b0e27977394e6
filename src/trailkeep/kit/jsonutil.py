"""JSON encoding used for stored events and API bodies."""

from __future__ import annotations

from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def dumps_sorted(value: Any) -> bytes:
    """Compact JSON with object keys sorted; the stored form of an event."""
    return orjson.dumps(value, option=_SORTED)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
