"""A reference evaluator of parsed queries over event JSON, in plain Python.

The tests compare what each backend's SQL returns with this, so SQLite and PostgreSQL
are shown to give the same answers as each other and as the documented rules
(docs/query-language.md): exact byte comparisons, string-only metadata, positive
target terms on one target, full text over kit/fulltext.py's tokens.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Any

from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.kit.fulltext import document_tokens, text_search
from trailkeep.kit.query_ast import (
    IpMatch,
    OccurredRange,
    Phrase,
    Query,
    SeverityMatch,
    Term,
    TextMatch,
    TextValue,
    Word,
)


def occurred_us(event: dict[str, Any]) -> int:
    moment = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _field(event: dict[str, Any], field: str) -> Any:
    actor = event.get("actor") or {}
    context = event.get("context") or {}
    simple = {
        "action": event.get("action"),
        "actor.id": actor.get("id"),
        "actor.type": actor.get("type"),
        "actor.name": actor.get("name"),
        "outcome": event.get("outcome"),
        "request_id": context.get("request_id"),
    }
    if field in simple:
        return simple[field]
    value: Any = event.get("metadata") or {}
    for key in field[len("metadata.") :].split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _any(value: Any, values: tuple[TextValue, ...]) -> bool:
    if not isinstance(value, str):
        return False
    return any(value.startswith(v.text) if v.prefix else value == v.text for v in values)


def _target_ok(target: dict[str, Any], term: TextMatch) -> bool:
    return _any(target.get(term.field.split(".")[1]), term.values)


def _text_ok(event: dict[str, Any], term: Word | Phrase) -> bool:
    search = text_search(term.text, isinstance(term, Word) and term.prefix, False)
    if search is None:
        return False
    tokens = document_tokens(event)
    n = len(search.tokens)
    for i in range(len(tokens) - n + 1):
        head = list(search.tokens[:-1]) == tokens[i : i + n - 1]
        last = tokens[i + n - 1]
        if head and (
            last.startswith(search.tokens[-1]) if search.prefix else last == search.tokens[-1]
        ):
            return True
    return False


def _term_ok(event: dict[str, Any], term: Term) -> bool:
    if isinstance(term, Word | Phrase):
        return _text_ok(event, term) != term.negated
    if isinstance(term, SeverityMatch):
        return SEVERITY_RANK[event["severity"]] in term.levels
    if isinstance(term, OccurredRange):
        at = occurred_us(event)
        inside = (term.start is None or at >= term.start) and (term.end is None or at < term.end)
        return inside != term.negated
    if isinstance(term, IpMatch):
        raw = (event.get("context") or {}).get("ip_address")
        hit = raw is not None and any(ip_address(raw) in net for net in term.networks)
        return hit != term.negated
    assert isinstance(term, TextMatch)
    if term.field.startswith("target."):
        hit = any(_target_ok(t, term) for t in event.get("targets") or [])
        return hit != term.negated
    return _any(_field(event, term.field), term.values) != term.negated


def matches(event: dict[str, Any], query: Query) -> bool:
    positive_targets = [
        t
        for t in query.terms
        if isinstance(t, TextMatch) and t.field.startswith("target.") and not t.negated
    ]
    if positive_targets and not any(
        all(_target_ok(target, term) for term in positive_targets)
        for target in event.get("targets") or []
    ):
        return False
    return all(
        _term_ok(event, term)
        for term in query.terms
        if not (
            isinstance(term, TextMatch) and term.field.startswith("target.") and not term.negated
        )
    )
