"""Which reader answers a page of events: the page planner (pages.py) or, for a query
with full-text conditions, the full-text search (fulltext.py), which builds on the
planner's pages. Both backends read pages through ``list_events``."""

from __future__ import annotations

from trailkeep.query.filter import EventFilter
from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import EventRow, PageKey
from trailkeep.store.reads.fulltext import search_events
from trailkeep.store.reads.pages import ReadDialect, list_page


def list_events(
    conn: SqlConnection,
    dialect: ReadDialect,
    flt: EventFilter,
    after: PageKey | None,
    limit: int,
) -> list[EventRow]:
    """The page after ``after``, newest first."""
    if flt.impossible:
        return []
    if flt.text:
        return search_events(conn, dialect, flt, after, limit)
    return list_page(conn, dialect, flt, after, limit)
