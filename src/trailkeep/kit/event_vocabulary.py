"""The event schema's fixed vocabulary: severity names, ranks and aliases, actor types,
the pattern of ids and actions.

Shared by ingest (events/schema.py re-exports it) and the query language (query/),
which must not import the events package.
"""

from __future__ import annotations

SEVERITIES = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
SEVERITY_ALIASES = {"LOW": "INFO", "MEDIUM": "WARNING", "HIGH": "ERROR"}


def canonical_severity(text: str) -> str | None:
    """The severity name for ``text`` (any case, aliases allowed), or None if unknown."""
    name = text.strip().upper()
    name = SEVERITY_ALIASES.get(name, name)
    return name if name in SEVERITY_RANK else None


def unknown_severity(text: str) -> str:
    return (
        f"unknown severity {text!r}; one of {', '.join(SEVERITY_RANK)}"
        f" (or {', '.join(SEVERITY_ALIASES)})"
    )


ACTOR_TYPES = ("user", "service", "system", "api_key", "anonymous")

ID_PATTERN = r"^[A-Za-z0-9._:~@+=-]+$"
ACTION_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
