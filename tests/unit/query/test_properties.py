"""Hypothesis properties of the query parser.

(a) No text, however hostile, makes parse_query raise anything but QueryError, and the
    error's position lies inside the text; whatever parses, renders to text that
    parses to the same query.
(b) Any valid query model renders to text that parses back to the very same model.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trailkeep.kit.event_vocabulary import ACTOR_TYPES
from trailkeep.kit.query_ast import (
    IpMatch,
    IpNetwork,
    OccurredRange,
    Phrase,
    Query,
    QueryError,
    SeverityMatch,
    Term,
    TextMatch,
    TextValue,
    Word,
)
from trailkeep.query.parser import QueryLimits, parse_query
from trailkeep.query.render import render
from trailkeep.query.times import DAY_US, TIME_MAX, TIME_MIN

NOW = 1_780_000_000_000_000
UNLIMITED = QueryLimits(max_length=200_000, max_terms=100_000, max_values=100_000)

# --- (a) any text --------------------------------------------------------------------

# Pieces of real syntax, so random text often gets deep into the parser, plus SQL and
# regex fragments and characters that must be refused.
FIELD_NAMES = [
    *("action", "actor.id", "actor.type", "actor.name", "target.type", "target.id"),
    *("outcome", "severity", "ip", "request_id", "metadata.k", "metadata.a.b", "occurred"),
    *("metadata", "metadata.", "actr.id", "message", ""),
]
VALUES = [
    *("user.*", "user.login", "a", "WARNING", "high", "nope", "failure", "service", "*"),
    *("2026-01-01", "2026-02-30", "2026-01-01T10:00Z", "2026-01-01T10:00:00.123456+02:00"),
    *("-24h", "-7d", "-0s", "9999-12-31", "0001-01-01", "-999999999w", "2026-01-01..2026-02-01"),
    *("2026-02-01..2026-01-01", "-7d..-1d", "10.0.0.0/8", "::1", "1.2.3.4/33", "10.0.0.1/8"),
    *("' OR 1=1 --", "'; DROP TABLE events;", "%", "_", ".*", "[a-z]+$", "(?i)", "\\d"),
]
FRAGMENTS = [
    *FIELD_NAMES,
    *VALUES,
    *(":", ">=", "<=", ">", "<", "=", ",", "*", "..", "-", " ", "\t", '"', "\\", '\\"'),
    *("(", ")", "OR", "AND", "NOT", "\x00", "\x1b", "\u00a0", "\u2028", "\ud800", "é", "\u0663"),
]
_short = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x17F, exclude_categories=("Cc",)), max_size=4
)
_value = (st.sampled_from(VALUES) | _short).flatmap(
    lambda v: st.sampled_from((v, v + "*", '"' + v + '"', '"' + v + '"*'))
)
_field_term = st.builds(
    lambda neg, name, op, values: neg + name + op + ",".join(values),
    st.sampled_from(("", "-")),
    st.sampled_from(FIELD_NAMES),
    st.sampled_from((":", ":", ":", ">=", "<=", ">", "<", "=")),
    st.lists(_value, min_size=1, max_size=3),
)
_term = _field_term | _value | _value.map(lambda v: "-" + v)
near_valid = st.lists(_term, max_size=4).map(" ".join)
# ... and the same with one fragment spliced in somewhere.
mutated = st.builds(
    lambda text, at, piece: text[: at % (len(text) + 1)] + piece + text[at % (len(text) + 1) :],
    near_valid,
    st.integers(0, 1000),
    st.sampled_from(FRAGMENTS),
)
query_like = st.lists(st.sampled_from(FRAGMENTS) | _short, max_size=40).map("".join)
any_text = st.text(max_size=300)
with_surrogates = st.text(st.characters(exclude_categories=()), max_size=200)
huge = st.tuples(
    st.text(min_size=1, max_size=30) | near_valid.map(lambda t: t + " ").filter(str.strip)
).map(lambda t: (t[0] * (100_000 // len(t[0]) + 1))[:100_000])


def check(text: str, limits: QueryLimits = QueryLimits()) -> None:
    try:
        query = parse_query(text, now_us=NOW, limits=limits)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
        assert error.message
        return
    again = parse_query(render(query), now_us=NOW, limits=UNLIMITED)
    assert again == query


@settings(max_examples=600, deadline=None)
@given(text=near_valid | mutated | query_like | any_text | with_surrogates)
@example(text="occurred:-0s..-0s")
@example(text='actor.name:"\\\\"* x')
@example(text="severity<DEBUG")
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    check(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=huge)
def test_100kb_text_parses_or_raises_query_error(text: str) -> None:
    check(text)  # refused by length
    check(text, UNLIMITED)  # parsed all the way


# --- (b) any model -------------------------------------------------------------------

_printable = st.characters(exclude_categories=("Cc", "Cs"), include_characters="\t\n\r")
_ACTION = r"[A-Za-z0-9_-]{1,6}(\.[A-Za-z0-9_-]{1,6}){0,3}"
_FREE_TEXT_FIELDS = ("actor.id", "actor.name", "target.type", "target.id", "request_id")


def _text_values(field: str) -> st.SearchStrategy[TextValue]:
    if field == "outcome":
        return st.sampled_from(("success", "failure")).map(TextValue)
    if field == "actor.type":
        return st.sampled_from(ACTOR_TYPES).map(TextValue)
    if field == "action":
        exact = st.from_regex(_ACTION, fullmatch=True).map(TextValue)
        prefix = st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True)
        return exact | prefix.map(lambda t: TextValue(t, True))
    return st.builds(TextValue, st.text(_printable, min_size=1, max_size=20), st.booleans())


@st.composite
def text_matches(draw: st.DrawFn) -> TextMatch:
    key = st.from_regex(r"[A-Za-z0-9_-]{1,8}(\.[A-Za-z0-9_-]{1,8}){0,2}", fullmatch=True)
    field = draw(
        st.sampled_from(("action", "outcome", "actor.type", *_FREE_TEXT_FIELDS))
        | key.map(lambda k: "metadata." + k)
    )
    values = draw(st.lists(_text_values(field), min_size=1, max_size=4))
    return TextMatch(field, tuple(values), draw(st.booleans()))


def _networks() -> st.SearchStrategy[IpNetwork]:
    v4 = st.builds(
        lambda a, p: IPv4Network((a, p), strict=False),
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    )
    v6 = st.builds(
        lambda a, p: IPv6Network((a, p), strict=False),
        st.integers(0, 2**128 - 1),
        st.integers(0, 128),
    )
    return v4 | v6


# Midnights exercise the date spelling of render(); the edges exercise the bounds.
_instants = (
    st.integers(TIME_MIN, TIME_MAX)
    | st.integers(TIME_MIN, TIME_MAX).map(lambda t: t - (t - TIME_MIN) % DAY_US)
    | st.sampled_from((TIME_MIN, TIME_MAX, 0, NOW))
)


@st.composite
def occurred_ranges(draw: st.DrawFn) -> OccurredRange:
    a, b = draw(_instants), draw(_instants)
    start, end = min(a, b), max(a, b)
    if start == end:
        end = None
    shape = draw(st.sampled_from(("both", "start", "end")))
    if shape == "start" or end is None:
        return OccurredRange(start, None, draw(st.booleans()))
    if shape == "end":
        return OccurredRange(None, end, draw(st.booleans()))
    return OccurredRange(start, end, draw(st.booleans()))


def _word_ok(text: str) -> bool:
    return (
        not text.startswith("-")
        and not any(c.isspace() or c in ':<>="()*' for c in text)
        and any(c.isalnum() for c in text)
    )


words = st.builds(
    Word,
    st.text(_printable, min_size=2, max_size=15).filter(_word_ok),
    st.booleans(),
    st.booleans(),
).filter(lambda w: w.prefix or w.text not in ("AND", "OR", "NOT"))  # reserved keywords
phrases = st.builds(
    Phrase,
    st.text(_printable, min_size=1, max_size=30).filter(lambda t: any(c.isalnum() for c in t)),
    st.booleans(),
)
severities = st.sets(st.integers(0, 5), min_size=1).map(lambda s: SeverityMatch(tuple(sorted(s))))
ip_matches = st.builds(
    IpMatch, st.lists(_networks(), min_size=1, max_size=4).map(tuple), st.booleans()
)
terms: st.SearchStrategy[Term] = st.one_of(
    text_matches(), severities, ip_matches, occurred_ranges(), phrases, words
)
queries = st.lists(terms, max_size=8).map(lambda ts: Query(tuple(ts)))


@settings(max_examples=300, deadline=None)
@given(query=queries)
def test_render_then_parse_gives_the_same_query(query: Query) -> None:
    text = render(query)
    assert parse_query(text, now_us=NOW, limits=UNLIMITED) == query
