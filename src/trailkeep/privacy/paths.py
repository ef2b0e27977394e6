"""Field paths in an event document: ``actor.email``, ``targets.name``, ``metadata.a.b``.

A path is dotted keys; a list met on the way is crossed element by element, so
``targets.name`` names the name of every target. Each place found has a concrete path
with list indexes (``targets.1.name``): the one bound to a sealed field's ciphertext.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


def locate(doc: dict[str, Any], segments: Sequence[str]) -> list[tuple[dict[str, Any], str, str]]:
    """(parent object, key, concrete path) of every value at ``segments`` in ``doc``."""
    node: Any = doc
    last = len(segments) - 1
    for depth, key in enumerate(segments):  # objects only: the common case, no recursion
        if isinstance(node, list):
            return list(_walk(node, segments, depth, ".".join(segments[:depth]) + "."))
        if not isinstance(node, dict) or key not in node:
            return []
        if depth == last:
            return [(node, key, ".".join(segments))]
        node = node[key]
    return []


def _walk(
    node: Any, segments: Sequence[str], depth: int, prefix: str
) -> Iterator[tuple[dict[str, Any], str, str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, segments, depth, f"{prefix}{index}.")
        return
    if not isinstance(node, dict):
        return
    key = segments[depth]
    if key not in node:
        return
    if depth == len(segments) - 1:
        yield node, key, prefix + key
    else:
        yield from _walk(node[key], segments, depth + 1, f"{prefix}{key}.")
