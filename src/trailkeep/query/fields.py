"""What each field's values mean: the semantic half of the parser.

``parser`` finds the shape of a field term (name, operator, raw values with their
positions); this module checks the name and turns the values into model terms,
raising QueryError at the offending value. Kept apart so the parser stays a parser.
"""

from __future__ import annotations

import difflib
import re
from ipaddress import ip_network
from typing import NamedTuple

from trailkeep.kit.event_vocabulary import (
    ACTION_PATTERN,
    ACTOR_TYPES,
    SEVERITIES,
    SEVERITY_RANK,
    canonical_severity,
    unknown_severity,
)
from trailkeep.kit.query_ast import (
    FIELDS,
    METADATA_PREFIX,
    IpMatch,
    IpNetwork,
    OccurredRange,
    QueryError,
    SeverityMatch,
    Term,
    TextMatch,
    TextValue,
)

from .times import check_bound, resolve_time

ORDERED = ("severity", "occurred")  # the fields that take > >= < <= =
MAX_METADATA_KEY = 64
_ACTION = re.compile(ACTION_PATTERN)
_ACTION_PREFIX = re.compile(r"[A-Za-z0-9_.-]+")
# A safe charset because the key ends up in JSON paths ($.metadata.a.b in SQLite,
# body->'metadata'->'a' in PostgreSQL) whose quoting rules differ; dots nest.
_METADATA_KEY = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_ENUMS = {"outcome": ("success", "failure"), "actor.type": ACTOR_TYPES}
_LEVELS = tuple(range(len(SEVERITIES)))
# Names people reach for that are not fields, with where to go instead.
_HINTS = {
    "message": "search the message with bare words or a quoted phrase",
    "tenant": "the tenant comes from the credential, not the query",
    "tenant_id": "the tenant comes from the credential, not the query",
    "actor": "did you mean 'actor.id', 'actor.type' or 'actor.name'?",
    "target": "did you mean 'target.type' or 'target.id'?",
    "occurred_at": "did you mean 'occurred'?",
    "time": "did you mean 'occurred'?",
    "date": "did you mean 'occurred'?",
    "ip_address": "did you mean 'ip'?",
    "context.ip_address": "did you mean 'ip'?",
    "context.request_id": "did you mean 'request_id'?",
    "metadata": "name a key: metadata.KEY:value",
}


class RawValue(NamedTuple):
    text: str  # unquoted and unescaped, without the prefix '*'
    position: int  # of the value's first character (its quote, if quoted)
    quoted: bool
    prefix: bool


def resolve_field(name: str, position: int) -> str:
    """``name`` if it is a field, else a QueryError suggesting the closest one."""
    if name in FIELDS:
        return name
    if name.startswith(METADATA_PREFIX):
        key = name[len(METADATA_PREFIX) :]
        if _METADATA_KEY.fullmatch(key) and len(key) <= MAX_METADATA_KEY:
            return name
        raise QueryError(
            f"bad metadata key {key!r}: up to {MAX_METADATA_KEY} characters of"
            " A-Z a-z 0-9 _ -, dots between nested keys",
            position,
        )
    hint = _HINTS.get(name)
    if hint is None:
        close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"fields are {', '.join(FIELDS)}, metadata.KEY; quote text to search it"
        )
    raise QueryError(f"unknown field {name!r}: {hint}", position)


def build_term(
    field: str, op: str, values: list[RawValue], negated: bool, start: int, now_us: int
) -> Term:
    """The term for ``field op values``; the operator is already known valid for it."""
    if field == "severity":
        return _severity(op, values, negated, start)
    if field == "occurred":
        return _occurred(op, values, negated, now_us)
    if field == "ip":
        return IpMatch(tuple(_network(v) for v in values), negated)
    return TextMatch(field, tuple(_text_value(field, v) for v in values), negated)


def _no_prefix(field: str, value: RawValue, instead: str) -> None:
    if value.prefix:
        raise QueryError(f"{field} does not take a '*' prefix: {instead}", value.position)


def _text_value(field: str, value: RawValue) -> TextValue:
    allowed = _ENUMS.get(field)
    if allowed is not None:
        _no_prefix(field, value, f"use one of {', '.join(allowed)}")
        text = value.text.lower()
        if text not in allowed:
            raise QueryError(
                f"{field} must be one of {', '.join(allowed)}, not {value.text!r}",
                value.position,
            )
        return TextValue(text)
    if field == "action":
        # Actions are dotted words; anything else can never match, so say so now.
        pattern = _ACTION_PREFIX if value.prefix else _ACTION
        if not pattern.fullmatch(value.text):
            raise QueryError(
                f"action {value.text!r} can never match: actions are dotted words of"
                " A-Z a-z 0-9 _ -",
                value.position,
            )
    return TextValue(value.text, value.prefix)


def _network(value: RawValue) -> IpNetwork:
    _no_prefix("ip", value, "use CIDR, e.g. 10.0.0.0/8")
    if "%" in value.text:  # ipaddress accepts zone ids; stored addresses have none
        raise QueryError(f"ip {value.text!r}: zone ids (%) are not supported", value.position)
    try:
        return ip_network(value.text, strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(value.text, strict=False)
    except ValueError:
        raise QueryError(
            f"bad ip {value.text!r}: expected an address or a CIDR block like 10.0.0.0/8",
            value.position,
        ) from None
    raise QueryError(f"ip {value.text!r} has host bits set: did you mean {loose}?", value.position)


def _severity(op: str, values: list[RawValue], negated: bool, start: int) -> SeverityMatch:
    chosen: set[int] = set()
    for value in values:
        _no_prefix("severity", value, "use severity>=NAME")
        name = canonical_severity(value.text)
        if name is None:
            raise QueryError(unknown_severity(value.text), value.position)
        level = SEVERITY_RANK[name]
        chosen.update(lv for lv in _LEVELS if _compare(lv, op, level))
    if negated:
        chosen = set(_LEVELS) - chosen
    if not chosen:
        raise QueryError("this severity condition matches no severity", start)
    return SeverityMatch(tuple(sorted(chosen)))


def _occurred(op: str, values: list[RawValue], negated: bool, now_us: int) -> OccurredRange:
    if len(values) > 1:
        raise QueryError("occurred takes one time or one range, not a list", values[1].position)
    value = values[0]
    _no_prefix("occurred", value, "use a range occurred:FROM..TO")
    at = value.position + value.quoted
    if ".." in value.text:
        return _range(op, value.text, at, negated, now_us)
    when = resolve_time(value.text, at, now_us)
    start: int | None = None
    end: int | None = None
    # Each time is an interval [lo, hi) at its precision (a date is a whole day).
    if op in (":", "="):
        if when.relative:
            raise QueryError(
                f"occurred:{value.text} is a single instant: use occurred>={value.text}"
                " for 'since'",
                at,
            )
        start, end = when.lo, when.hi
    elif op == ">=":
        start = when.lo
    elif op == ">":
        start = when.hi
    elif op == "<":
        end = when.lo
    else:
        end = when.hi
    for bound in (start, end):
        if bound is not None:
            check_bound(bound, value.text, at)
    return OccurredRange(start, end, negated)


def _range(op: str, text: str, at: int, negated: bool, now_us: int) -> OccurredRange:
    if op not in (":", "="):
        raise QueryError(f"a range takes ':' (occurred:FROM..TO), not {op!r}", at)
    first, _, second = text.partition("..")
    second_at = at + len(first) + 2
    if not first or not second:
        raise QueryError(
            "a range needs both ends: use occurred>=FROM or occurred<TO for one side", at
        )
    if ".." in second:
        raise QueryError("a range has one '..'", second_at + second.index(".."))
    # Half-open [FROM, TO): a date as TO means its first instant, so ranges written
    # with consecutive dates tile without overlap or gap (like Python's ranges).
    lo = check_bound(resolve_time(first, at, now_us).lo, first, at)
    hi = check_bound(resolve_time(second, second_at, now_us).lo, second, second_at)
    if lo >= hi:
        raise QueryError(f"empty range: {first} is not before {second}", at)
    return OccurredRange(lo, hi, negated)


def _compare(left: int, op: str, right: int) -> bool:
    if op == ">=":
        return left >= right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    if op == "<":
        return left < right
    return left == right
