"""The filter model of event reads: what a query (query/compile.py) or the filters of
GET /v1/events ask of a page, handed to the store as is. Imports only trailkeep.kit."""

from __future__ import annotations

from dataclasses import dataclass

from trailkeep.kit.fulltext import TextSearch
from trailkeep.kit.query_ast import Term


@dataclass(slots=True, frozen=True)
class EventFilter:
    """Filters of GET /v1/events; every field is optional but ``tenant_id``."""

    tenant_id: str
    occurred_from: int | None = None  # inclusive, microseconds
    occurred_to: int | None = None  # exclusive, microseconds
    actor_id: str | None = None
    action: str | None = None
    action_prefix: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    min_severity: int | None = None
    outcome: str | None = None
    # Query terms none of the fields above expresses, checked row by row
    # (store/reads/conditions.py), and full-text conditions (store/reads/fulltext.py).
    conditions: tuple[Term, ...] = ()
    text: tuple[TextSearch, ...] = ()
    # A full-text condition with no indexed token: nothing can match.
    impossible: bool = False
