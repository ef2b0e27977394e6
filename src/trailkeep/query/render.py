"""Render a parsed query back to query text: ``parse_query(render(q)) == q``.

Used to show users the query as it was understood (relative times resolved, severity
comparisons spelled out) and by the round-trip property tests. Times are written as
dates when they fall on midnight UTC and as full RFC 3339 microsecond times otherwise;
both parse back to the exact same bound because a bound is always an interval's start.
"""

from __future__ import annotations

from trailkeep.kit.event_vocabulary import SEVERITIES
from trailkeep.kit.query_ast import (
    IpMatch,
    IpNetwork,
    OccurredRange,
    Phrase,
    Query,
    SeverityMatch,
    Term,
    TextMatch,
    Word,
)
from trailkeep.kit.timeutil import format_us

from .times import DAY_US

# A value containing any of these (or whitespace) must be quoted to parse back whole.
_NEEDS_QUOTES = frozenset(',"()*')


def render(query: Query) -> str:
    return " ".join(render_term(term) for term in query.terms)


def render_term(term: Term) -> str:
    if isinstance(term, SeverityMatch):
        return "severity:" + ",".join(SEVERITIES[level] for level in term.levels)
    sign = "-" if term.negated else ""
    if isinstance(term, TextMatch):
        values = ",".join(_value(v.text) + ("*" if v.prefix else "") for v in term.values)
        return f"{sign}{term.field}:{values}"
    if isinstance(term, IpMatch):
        return f"{sign}ip:" + ",".join(_network(n) for n in term.networks)
    if isinstance(term, OccurredRange):
        return sign + _range(term)
    if isinstance(term, Phrase):
        return sign + _quote(term.text)
    assert isinstance(term, Word)
    return sign + term.text + ("*" if term.prefix else "")


def _value(text: str) -> str:
    if text and not any(c in _NEEDS_QUOTES or c.isspace() for c in text):
        return text
    return _quote(text)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _network(network: IpNetwork) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _time(us: int) -> str:
    return format_us(us)[:10] if us % DAY_US == 0 else format_us(us)


def _range(term: OccurredRange) -> str:
    if term.start is None:
        assert term.end is not None, "an OccurredRange needs a bound"
        return f"occurred<{_time(term.end)}"
    if term.end is None:
        return f"occurred>={_time(term.start)}"
    return f"occurred:{_time(term.start)}..{_time(term.end)}"
