"""The query parser by example: every construct, every error with its message and position."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from ipaddress import ip_network

import pytest

from trailkeep.kit.query_ast import (
    IpMatch,
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

NOW = 1_780_000_000_000_000  # 2026-05-28T20:26:40Z
HOUR = 3_600_000_000
DAY = 24 * HOUR


def us(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def terms(text: str, limits: QueryLimits = QueryLimits()) -> tuple[Term, ...]:
    return parse_query(text, now_us=NOW, limits=limits).terms


def one(text: str) -> Term:
    (term,) = terms(text)
    return term


def text_match(field: str, *values: str, negated: bool = False) -> TextMatch:
    parsed = tuple(TextValue(v[:-1], True) if v.endswith("*") else TextValue(v) for v in values)
    return TextMatch(field, parsed, negated)


# --- every construct -------------------------------------------------------------

VALID: list[tuple[str, Term]] = [
    ("action:user.login", text_match("action", "user.login")),
    ("action:user.*", text_match("action", "user.*")),
    ("action:user.login,admin.*", text_match("action", "user.login", "admin.*")),
    ("-action:login", text_match("action", "login", negated=True)),
    ("actor.id:u_42", text_match("actor.id", "u_42")),
    ("actor.type:SERVICE", text_match("actor.type", "service")),
    ("actor.type:api_key,anonymous", text_match("actor.type", "api_key", "anonymous")),
    ('actor.name:"Ada Lovelace"', text_match("actor.name", "Ada Lovelace")),
    ('actor.name:"Ada L"*,Bob', text_match("actor.name", "Ada L*", "Bob")),
    ('actor.name:"say \\"hi\\" \\\\o/"', text_match("actor.name", 'say "hi" \\o/')),
    ("actor.name:O'Brien", text_match("actor.name", "O'Brien")),
    ("target.type:document", text_match("target.type", "document")),
    ("target.id:a:b=c<d>", text_match("target.id", "a:b=c<d>")),
    ('target.id:"a,b"', text_match("target.id", "a,b")),
    ("outcome:FAILURE", text_match("outcome", "failure")),
    ("request_id:req-1", text_match("request_id", "req-1")),
    ("metadata.plan:enterprise", text_match("metadata.plan", "enterprise")),
    ("metadata.plan.tier-2:gold*", text_match("metadata.plan.tier-2", "gold*")),
    ("severity:WARNING", SeverityMatch((3,))),
    ("severity=warning", SeverityMatch((3,))),
    ("severity:ERROR,debug", SeverityMatch((0, 4))),
    ("severity:HIGH", SeverityMatch((4,))),
    ("severity>=WARNING", SeverityMatch((3, 4, 5))),
    ("severity>WARNING", SeverityMatch((4, 5))),
    ("severity<NOTICE", SeverityMatch((0, 1))),
    ("severity<=NOTICE", SeverityMatch((0, 1, 2))),
    ("-severity:DEBUG", SeverityMatch((1, 2, 3, 4, 5))),
    ("-severity>=ERROR", SeverityMatch((0, 1, 2, 3))),
    ("ip:203.0.113.9", IpMatch((ip_network("203.0.113.9/32"),))),
    ("ip:10.0.0.0/8,::1", IpMatch((ip_network("10.0.0.0/8"), ip_network("::1/128")))),
    ("-ip:2001:db8::/32", IpMatch((ip_network("2001:db8::/32"),), negated=True)),
    ("occurred>=2026-01-01", OccurredRange(us("2026-01-01"), None)),
    ("occurred>2026-01-01", OccurredRange(us("2026-01-02"), None)),
    ("occurred<2026-01-01", OccurredRange(None, us("2026-01-01"))),
    ("occurred<=2026-01-01", OccurredRange(None, us("2026-01-02"))),
    ("occurred:2026-01-01", OccurredRange(us("2026-01-01"), us("2026-01-02"))),
    ("occurred=2026-01-01", OccurredRange(us("2026-01-01"), us("2026-01-02"))),
    ("-occurred:2026-01-01", OccurredRange(us("2026-01-01"), us("2026-01-02"), negated=True)),
    ("occurred:2026-01-01..2026-02-01", OccurredRange(us("2026-01-01"), us("2026-02-01"))),
    ("occurred>-24h", OccurredRange(NOW - 24 * HOUR + 1, None)),
    ("occurred>=-7d", OccurredRange(NOW - 7 * DAY, None)),
    ("occurred>=-30m", OccurredRange(NOW - 30 * 60_000_000, None)),
    ("occurred<-15s", OccurredRange(None, NOW - 15_000_000)),
    ("occurred>=-2w", OccurredRange(NOW - 14 * DAY, None)),
    ("occurred:-7d..-1d", OccurredRange(NOW - 7 * DAY, NOW - DAY)),
    ("occurred:2026-01-01T10:00Z",
     OccurredRange(us("2026-01-01T10:00"), us("2026-01-01T10:00") + 1)),
    ("occurred>=2026-01-01t10:00:30z", OccurredRange(us("2026-01-01T10:00:30"), None)),
    ("occurred>=2026-01-01T10:00:00.5Z", OccurredRange(us("2026-01-01T10:00:00.5"), None)),
    ("occurred>=2026-01-01T12:00:00+02:00", OccurredRange(us("2026-01-01T10:00"), None)),
    ("occurred<2026-01-01T00:00:00.000001-00:30",
     OccurredRange(None, us("2026-01-01T00:30:00.000001"))),
    ('occurred:"2026-01-01..2026-01-03"', OccurredRange(us("2026-01-01"), us("2026-01-03"))),
    ('"disk full"', Phrase("disk full")),
    ('-"disk full"', Phrase("disk full", negated=True)),
    ('"a \\"quoted\\" \\\\ word"', Phrase('a "quoted" \\ word')),
    ('"OR"', Phrase("OR")),
    ("disk", Word("disk")),
    ("disk*", Word("disk", prefix=True)),
    ("-disk", Word("disk", negated=True)),
    ("café", Word("café")),
    ("ada@example.com", Word("ada@example.com")),
    ("e.g.", Word("e.g.")),
    ("C++", Word("C++")),
    ("or", Word("or")),
    ("OR*", Word("OR", prefix=True)),
    ("a-b", Word("a-b")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid(text: str, expected: Term) -> None:
    assert terms(text) == (expected,)
    # and it renders to text that means the same
    assert terms(render(Query((expected,)))) == (expected,)


def test_the_issue_example() -> None:
    text = (
        "action:user.* actor.id:u1 severity>=WARNING outcome:failure target.type:document"
        ' occurred:2026-01-01..2026-02-01 -action:login "exact phrase" free words'
    )
    assert terms(text) == (
        text_match("action", "user.*"),
        text_match("actor.id", "u1"),
        SeverityMatch((3, 4, 5)),
        text_match("outcome", "failure"),
        text_match("target.type", "document"),
        OccurredRange(us("2026-01-01"), us("2026-02-01")),
        text_match("action", "login", negated=True),
        Phrase("exact phrase"),
        Word("free"),
        Word("words"),
    )


@pytest.mark.parametrize("text", ["", "   ", "\t\n\r "])
def test_empty_query_matches_everything(text: str) -> None:
    assert parse_query(text, now_us=NOW) == Query()


def test_tabs_and_newlines_separate_terms() -> None:
    assert terms("a\tb\nc\r\nd\u00a0e") == tuple(Word(w) for w in "abcde")


def test_half_open_range_days_tile() -> None:
    january = one("occurred:2026-01-01..2026-02-01")
    february = one("occurred:2026-02-01..2026-03-01")
    assert isinstance(january, OccurredRange) and isinstance(february, OccurredRange)
    assert january.end == february.start


def test_metadata_path_and_render() -> None:
    term = one("metadata.plan.tier:gold")
    assert isinstance(term, TextMatch) and term.metadata_path == ("plan", "tier")
    assert (
        isinstance(one("action:x"), TextMatch) and text_match("action", "x").metadata_path is None
    )
    assert render(parse_query('-actor.name:a*,"b c" severity>=ERROR', now_us=NOW)) == (
        '-actor.name:a*,"b c" severity:ERROR,CRITICAL'
    )
    assert render(parse_query("occurred:2026-01-01T10:00Z", now_us=NOW)) == (
        "occurred:2026-01-01T10:00:00.000000Z..2026-01-01T10:00:00.000001Z"
    )


def test_query_error_is_a_value_error_with_a_pointer() -> None:
    with pytest.raises(ValueError, match="unknown field") as info:
        parse_query("disk actr.id:u1", now_us=NOW)
    error = info.value
    assert isinstance(error, QueryError)
    assert error.position == 5
    assert error.pointer("disk actr.id:u1") == (
        "disk actr.id:u1\n     ^ unknown field 'actr.id': did you mean 'actor.id'?"
    )


# --- every error ---------------------------------------------------------------------

ERRORS: list[tuple[str, str, int]] = [
    # characters
    ("disk\x00full", "NUL character is not allowed", 4),
    ("ab\x1b[31m", r"control character U\+001B is not allowed", 2),
    ("ab\x7f", r"control character U\+007F", 2),
    ("ab\x85", r"control character U\+0085", 2),
    ("ab\ud800", "unpaired surrogate is not allowed", 2),
    # quotes
    ('foo "disk full', "unbalanced quote: no closing '\"'", 4),
    ('"abc\\"', "unbalanced quote", 0),
    ('"abc\\', "unbalanced quote", 0),
    ('actor.name:"Ada', "unbalanced quote", 11),
    ('"a\\nb"', r"unknown escape '\\n' in quotes", 2),
    ('"disk"full', "unexpected 'f' after a closing quote", 6),
    ('actor.name:"a"b', "unexpected 'b' after a closing quote", 14),
    ('foo"bar"', "unexpected '\"' inside a word or value", 3),
    ('action:a"b"', "unexpected '\"' inside a word or value", 8),
    ('""', "empty phrase", 0),
    ('-"  "', "empty phrase", 1),
    ('"--"', "phrase '--' has no letters or digits", 0),
    # fields
    ("actr.id:u1", "unknown field 'actr.id': did you mean 'actor.id'\\?", 0),
    ("x Action:login", "unknown field 'Action': did you mean 'action'\\?", 2),
    ("http://example.com", "unknown field 'http': fields are action, .*metadata.KEY", 0),
    ("message:hello", "search the message with bare words", 0),
    ("tenant_id:globex", "the tenant comes from the credential", 0),
    ("metadata:x", "name a key: metadata.KEY:value", 0),
    ("metadata.a$b:x", "bad metadata key 'a\\$b'", 0),
    ("metadata.a..b:x", "bad metadata key 'a..b'", 0),
    ("metadata." + "k" * 65 + ":x", "bad metadata key", 0),
    (":value", "missing field name before ':'", 0),
    ("-<=3", "missing field name before '<'", 1),
    ("action>=a", "'action' only takes ':' \\('>=' works on severity and occurred\\)", 6),
    ("ip=1.2.3.4", "'ip' only takes ':'", 2),
    # values
    ("action:", "empty value for 'action'", 7),
    ("action: x", "empty value for 'action'", 7),
    ("action:a,,b", "empty value for 'action'", 9),
    ("action:a,", "empty value for 'action'", 9),
    ('actor.name:""', "empty value for 'actor.name'", 11),
    ("action:*", "'action:\\*' matches everything", 7),
    ("action:a*b", "'\\*' is only allowed at the end of a value", 8),
    ("action:a(b)", "parentheses are not supported", 8),
    ("action:'; DROP TABLE events; --", "action \"';\" can never match", 7),
    ("action:user.*.x*", "'\\*' is only allowed at the end", 12),
    ("outcome:failed", "outcome must be one of success, failure, not 'failed'", 8),
    ("outcome:fail*", "outcome does not take a '\\*' prefix", 8),
    ("actor.type:robot", "actor.type must be one of user, service, system, api_key, anonymous", 11),
    # severity
    ("severity>=NOPE", "unknown severity 'NOPE'; one of DEBUG, INFO", 10),
    ("severity:3", "unknown severity '3'", 9),
    ("severity>=WARN*", "severity does not take a '\\*' prefix", 10),
    ("severity>=WARNING,ERROR", "severity>= takes one value, not a list", 17),
    ("severity>CRITICAL", "matches no severity", 0),
    ("x -severity>=DEBUG", "matches no severity", 2),
    # ip
    ("ip:10.0.0.1/8", "ip '10.0.0.1/8' has host bits set: did you mean 10.0.0.0/8\\?", 3),
    ("ip:999.1.1.1", "bad ip '999.1.1.1': expected an address or a CIDR", 3),
    ("ip:1.2.3.4,nope", "bad ip 'nope'", 11),
    ("ip:10.*", "ip does not take a '\\*' prefix: use CIDR", 3),
    ("ip:fe80::1%eth0", "zone ids", 3),
    # time
    ("occurred>=yesterday", "bad time 'yesterday': expected YYYY-MM-DD", 10),
    ("occurred>=2026-1-1", "bad time '2026-1-1'", 10),
    ("occurred>=2026-02-30", "bad date '2026-02-30': day is out of range for month", 10),
    ("occurred>=2026-13-01", "bad date '2026-13-01': month must be in 1..12", 10),
    ("occurred>=0000-01-01", "bad date '0000-01-01'", 10),
    ("occurred>=2026-01-01T24:00Z", "bad date '2026-01-01T24:00Z': hour must be in 0..23", 10),
    ("occurred>=2026-01-01T10:00", "time '2026-01-01T10:00' needs a UTC offset", 10),
    ("occurred>=2026-01-01T10:00+24:00", "UTC offset \\+24:00 is out of range", 10),
    ("occurred>=2026-01-01T10:00:00.1234567Z", "bad time", 10),
    ("occurred>=\u0662\u0660\u0662\u0666-01-01", "bad time", 10),
    ("occurred>=-3mo", "bad time '-3mo'", 10),
    ("occurred>=-9999999999d", "bad time", 10),
    ("occurred>=-999999999w", "outside the years 1 to 9999", 10),
    ("occurred<=9999-12-31", "outside the years 1 to 9999", 10),
    ("occurred>=0001-01-01T00:00+01:00", "outside the years 1 to 9999", 10),
    ("occurred:-24h", "occurred:-24h is a single instant: use occurred>=-24h", 9),
    ("occurred:2026-02-01..2026-01-01", "empty range: 2026-02-01 is not before 2026-01-01", 9),
    ("occurred:2026-01-01..2026-01-01", "empty range", 9),
    ("occurred:2026-01-01..", "a range needs both ends", 9),
    ("occurred:..2026-01-01", "a range needs both ends", 9),
    ("occurred:2026-01-01..2026-02-01..2026-03-01", "a range has one '..'", 31),
    ("occurred:2026-01-01..2026-02-31", "bad date '2026-02-31'", 21),
    ("occurred>=2026-01-01..2026-02-01", "a range takes ':'", 10),
    ("occurred:2026-01-01,2026-02-01", "occurred takes one time or one range, not a list", 20),
    ("occurred>=2026*", "occurred does not take a '\\*' prefix", 10),
    # words and structure
    ("*", "a bare '\\*' matches everything", 0),
    ("disk -*", "a bare '\\*' matches everything", 6),
    ("a*b", "'\\*' is only allowed at the end of a word", 1),
    ("d*", "prefix 'd' is too short: a word prefix needs at least 2 characters", 0),
    ("x -", "'-' must be followed by a term", 2),
    ("- x", "'-' must be followed by a term", 0),
    ("x --y", "not another '-'", 2),
    ("' OR 1=1", "word \"'\" has no letters or digits", 0),
    ("a OR b", "OR is not supported: use field:a,b", 2),
    ("a AND b", "AND is implied", 2),
    ("NOT b", "put '-' before a term", 0),
    ("(a b)", "parentheses are not supported", 0),
    ("a)", "parentheses are not supported", 1),
    ("-(a)", "parentheses are not supported", 1),
    ("1=1", "unknown field '1'", 0),
    (".*[a-z]+$", "'\\*' is only allowed at the end of a word", 1),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message", "position"), ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_error(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError, match=message) as info:
        parse_query(text, now_us=NOW)
    assert info.value.position == position


# --- limits ----------------------------------------------------------------------------


def error_of(text: str, limits: QueryLimits = QueryLimits()) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_query(text, now_us=NOW, limits=limits)
    return info.value


def test_length_limit() -> None:
    exactly = " ".join(["w" * 249] * 8) + " "
    assert len(exactly) == 2000
    assert terms(exactly) == (Word("w" * 249),) * 8
    error = error_of("x" * 2001)
    assert (error.message, error.position) == ("query is longer than 2000 characters", 2000)


def test_terms_limit() -> None:
    assert len(terms(" ".join(["w"] * 32))) == 32
    error = error_of(" ".join(["w"] * 33))
    assert (error.message, error.position) == ("more than 32 terms", 64)
    assert error_of("a b c", QueryLimits(max_terms=2)).position == 4


def test_values_limit() -> None:
    fifty = ",".join(f"a{i}" for i in range(50))
    assert len(text_match_of("action:" + fifty).values) == 50
    error = error_of("action:" + fifty + ",a50")
    assert error.message == "more than 50 values in one term"
    assert error.position == len("action:" + fifty + ",")


def text_match_of(text: str) -> TextMatch:
    term = one(text)
    assert isinstance(term, TextMatch)
    return term


def test_value_length_limit() -> None:
    assert text_match_of("actor.id:" + "u" * 256).values == (TextValue("u" * 256),)
    for text, what, position in [
        ("actor.id:" + "u" * 257, "value", 9),
        ("x " + "w" * 257, "word", 2),
        ('x "' + "w" * 257 + '"', "phrase", 2),
    ]:
        error = error_of(text)
        assert (error.message, error.position) == (
            f"{what} is longer than 256 characters",
            position,
        )


def test_custom_prefix_limit() -> None:
    assert terms("d*", QueryLimits(min_word_prefix=1)) == (Word("d", prefix=True),)
    assert "at least 4" in error_of("abc*", QueryLimits(min_word_prefix=4)).message
    assert text_match_of("action:u*").values == (TextValue("u", True),)


def test_hostile_input_is_refused_fast() -> None:
    """100 KB queries are refused before any parsing; with the limits lifted, parsing a
    100 KB query stays linear (no quadratic scanning, no recursion)."""
    big = ('actor.name:a,"b c" severity>=WARNING ' * 3000)[:100_000]
    began = time.perf_counter()
    for text in ("x" * 100_000, '"' * 100_000, "a:" * 50_000, "\x00" * 100_000):
        assert error_of(text).position == 2000
    unlimited = QueryLimits(max_length=10**6, max_terms=10**6)
    assert len(terms(big.rsplit(" ", 1)[0], unlimited)) > 5000
    assert error_of("x," * 50_000, unlimited).message == "word is longer than 256 characters"
    assert error_of("action:" + "a," * 50_000, unlimited).message == (
        "more than 50 values in one term"
    )
    assert time.perf_counter() - began < 2.0
