"""From a parsed query to the store's EventFilter.

The store walks an index for the filters EventFilter names as fields (one exact or
prefix action, one actor, one target, a minimum severity, one outcome, a time range);
every other term stays a term (``conditions``), checked row by row, and words and
phrases become full-text conditions (kit/fulltext.py). The first term of each kind
that fits a field takes it; the rest stay conditions, which gives the same answer.
"""

from __future__ import annotations

from typing import Any

from trailkeep.kit.fulltext import TextSearch, text_search
from trailkeep.kit.query_ast import (
    OccurredRange,
    Phrase,
    Query,
    SeverityMatch,
    Term,
    TextMatch,
    Word,
)
from trailkeep.query.filter import EventFilter

_LEVELS = 6


def _single(term: TextMatch) -> tuple[str, bool] | None:
    if term.negated or len(term.values) != 1:
        return None
    value = term.values[0]
    return value.text, value.prefix


def _target_fields(terms: list[TextMatch]) -> dict[str, Any] | None:
    """target_type (and target_id) when every positive target term is one exact value
    on at most one type and one id; they must then hold for one target, which is
    what the target index answers."""
    types = [t for t in terms if t.field == "target.type"]
    ids = [t for t in terms if t.field == "target.id"]
    if len(types) != 1 or len(ids) > 1:
        return None
    singles = [_single(t) for t in terms]
    if any(s is None or s[1] for s in singles):
        return None
    fields = {"target_type": types[0].values[0].text}
    if ids:
        fields["target_id"] = ids[0].values[0].text
    return fields


def event_filter(tenant_id: str, query: Query) -> EventFilter:
    fields: dict[str, Any] = {}
    conditions: list[Term] = []
    text: list[TextSearch] = []
    impossible = False
    positive_targets: list[TextMatch] = []
    start: int | None = None
    end: int | None = None
    for term in query.terms:
        if isinstance(term, Word | Phrase):
            prefix = isinstance(term, Word) and term.prefix
            search = text_search(term.text, prefix, term.negated)
            if search is not None:
                text.append(search)
            elif not term.negated:
                impossible = True  # a word that is never indexed cannot match
        elif isinstance(term, OccurredRange) and not term.negated:
            if term.start is not None:
                start = term.start if start is None else max(start, term.start)
            if term.end is not None:
                end = term.end if end is None else min(end, term.end)
        elif isinstance(term, SeverityMatch):
            low = term.levels[0]
            if "min_severity" not in fields and term.levels == tuple(range(low, _LEVELS)):
                fields["min_severity"] = low
            else:
                conditions.append(term)
        elif isinstance(term, TextMatch) and term.field in ("target.type", "target.id"):
            if term.negated:
                conditions.append(term)
            else:
                positive_targets.append(term)
        elif isinstance(term, TextMatch) and _fits(term, fields):
            single = _single(term)
            assert single is not None
            value, prefix = single
            if term.field == "action":
                fields["action_prefix" if prefix else "action"] = value
            elif term.field == "actor.id":
                fields["actor_id"] = value
            else:
                fields["outcome"] = value
        else:
            conditions.append(term)
    target = _target_fields(positive_targets)
    if target is not None:
        fields.update(target)
    else:
        conditions.extend(positive_targets)
    if start is not None and end is not None and start >= end:
        impossible = True
    return EventFilter(
        tenant_id=tenant_id,
        occurred_from=start,
        occurred_to=end,
        conditions=tuple(conditions),
        text=tuple(text),
        impossible=impossible,
        **fields,
    )


def _fits(term: TextMatch, fields: dict[str, Any]) -> bool:
    single = _single(term)
    if single is None:
        return False
    _value, prefix = single
    if term.field == "action":
        return "action" not in fields and "action_prefix" not in fields
    if term.field == "actor.id":
        return not prefix and "actor_id" not in fields
    if term.field == "outcome":
        return "outcome" not in fields
    return False
