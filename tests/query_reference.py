"""A reference evaluator of parsed queries over event JSON, in plain Python.

The tests compare what each backend's SQL returns with this, so SQLite and PostgreSQL
are shown to give the same answers as each other and as the documented rules
(docs/query-language.md): exact byte comparisons, string-only metadata, positive
target terms on one target, full text by the documented tokens.

The full-text half has its own tokenizer, written from the rules (the module docstring
of trailkeep/kit/fulltext.py and docs/query-language.md "Full-text search"), not the
product's, so a bug in the product's tokenizer shows as a difference instead of
hiding on both sides of the comparison. It is a character loop, not a regex, to stay
independent of the product's regex.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Any

from trailkeep.kit.event_vocabulary import SEVERITY_RANK
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


# -- full text ----------------------------------------------------------------------
MAX_TOKEN_CHARS = 64  # longer tokens are not indexed
MAX_TOKENS = 1024  # per event, counting one separator between two fields


def _tokens(text: str) -> list[str]:
    """Maximal runs of characters for which str.isalnum() holds, each lower-cased."""
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if ch.isalnum():
            run.append(ch)
        elif run:
            out.append("".join(run).lower())
            run = []
    if run:
        out.append("".join(run).lower())
    return out


def _metadata_strings(value: Any) -> list[str]:
    """Strings and numbers at any depth, in document order; booleans and null are not
    searchable; a number is searched as Python's str() of the parsed JSON value."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float):
        return [str(value)]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in _metadata_strings(item)]


def _searchable_fields(event: dict[str, Any]) -> list[str]:
    """message, actor name, target names, metadata values: in that order."""
    texts: list[str] = []
    if isinstance(event.get("message"), str):
        texts.append(event["message"])
    actor = event.get("actor")
    if isinstance(actor, dict) and isinstance(actor.get("name"), str):
        texts.append(actor["name"])
    for target in event.get("targets") or []:
        if isinstance(target, dict) and isinstance(target.get("name"), str):
            texts.append(target["name"])
    texts += _metadata_strings(event.get("metadata"))
    return texts


def indexed_fields(event: dict[str, Any]) -> list[list[str]]:
    """The indexed tokens of each field that has any, within the event's budget of
    MAX_TOKENS, where each field after the first costs one more (its separator)."""
    fields: list[list[str]] = []
    used = 0
    for text in _searchable_fields(event):
        tokens = [t for t in _tokens(text) if len(t) <= MAX_TOKEN_CHARS]
        if not tokens:
            continue  # an empty field has no separator either
        if fields:
            used += 1
        taken = tokens[: max(0, MAX_TOKENS - used)]
        used += len(taken)
        if taken:
            fields.append(taken)
        if used >= MAX_TOKENS:
            break
    return fields


def _text_ok(event: dict[str, Any], term: Word | Phrase) -> bool:
    """A word or phrase: its tokens adjacent and in order within one field; a word with
    prefix=True matches when the last token starts with the last query token (unless
    the word ends in a separator, "foo-*": then its last token is complete). A term with
    no token, or with a token too long to be indexed, matches nothing."""
    wanted = _tokens(term.text)
    if not wanted or any(len(t) > MAX_TOKEN_CHARS for t in wanted):
        return False
    prefix = isinstance(term, Word) and term.prefix and term.text[-1:].isalnum()
    head, last, n = wanted[:-1], wanted[-1], len(wanted)
    for tokens in indexed_fields(event):
        for i in range(len(tokens) - n + 1):
            here = tokens[i + n - 1]
            if tokens[i : i + n - 1] == head and (
                here.startswith(last) if prefix else here == last
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
