"""Reading the ``q`` parameter of a request: parse errors become 400 bad_query."""

from __future__ import annotations

from trailkeep.errors import BadQuery
from trailkeep.kit.query_ast import Query, QueryError
from trailkeep.query.parser import parse_query


def parse_request_query(text: str | None, now_us: int) -> Query:
    """The parsed ``q`` (an empty query when absent); BadQuery naming the position."""
    if text is None:
        return Query()
    try:
        return parse_query(text, now_us=now_us)
    except QueryError as exc:
        raise BadQuery(
            exc.message,
            {"position": exc.position},
        ) from None
