"""Query terms checked row by row: the SQL of each term of a query (both backends).

The page planner (pages.py) answers the indexed filters of an EventFilter by
walking an index; every other term of a query (``actor.name``, ``ip``, ``metadata.*``,
any-of lists, negations, ...) becomes one predicate here, on the events row ``e``.

Fields without a column are read from the stored body (JSON): SQLite's JSON functions,
PostgreSQL's jsonb. Matching rules, the same on both:
- text fields compare exactly, byte for byte; a prefix is a byte-order prefix;
- ``metadata.KEY`` matches string values only (numbers, booleans, objects never);
- target conditions: all positive ``target.*`` terms of a query must hold for one and
  the same target; a negated one means no target matches it;
- an event without the field (no actor name, no ip) matches no positive term and
  every negated one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

from trailkeep.kit.query_ast import (
    IpMatch,
    IpNetwork,
    OccurredRange,
    SeverityMatch,
    Term,
    TextMatch,
    TextValue,
)

# Query fields stored as columns of events.
COLUMNS = {
    "action": "e.action",
    "actor.id": "e.actor_id",
    "actor.type": "e.actor_type",
    "outcome": "e.outcome",
}
# Query fields read from the body: their JSON path (keys).
BODY_PATHS = {
    "actor.name": ("actor", "name"),
    "actor.email": ("actor", "email"),
    "request_id": ("context", "request_id"),
    # Sealed fields are matched by their blind index (privacy/search.py).
    "actor.name.bi": ("actor", "name", "bi"),
    "actor.email.bi": ("actor", "email", "bi"),
    "context.ip_address.bi": ("context", "ip_address", "bi"),
}
TARGET_KEYS = {"target.type": "type", "target.id": "id"}
SQLITE_IP_FUNCTION = "trailkeep_ip_in"


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass
class Where:
    """A conjunction of SQL predicates with their qmark arguments."""

    sql: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, sql: str, *args: Any) -> None:
        self.sql.append(sql)
        self.args.extend(args)

    def extend(self, other: Where) -> None:
        self.sql += other.sql
        self.args += other.args

    def text(self) -> str:
        return " AND ".join(self.sql) if self.sql else "TRUE"


Starts = Callable[[str, str], tuple[str, list[Any]]]


def _any_of(expr: str, values: Sequence[TextValue], starts: Starts) -> Where:
    """``expr`` equals one of the exact values or starts with one of the prefixes."""
    parts: list[str] = []
    args: list[Any] = []
    exact = [v.text for v in values if not v.prefix]
    if len(exact) == 1:
        parts.append(f"{expr} = ?")
        args.append(exact[0])
    elif exact:
        parts.append(f"{expr} IN ({','.join('?' * len(exact))})")
        args += exact
    for value in values:
        if value.prefix:
            sql, more = starts(expr, value.text)
            parts.append(sql)
            args += more
    return Where(["(" + " OR ".join(parts) + ")"], args)


def _range_prefix(expr: str, prefix: str) -> tuple[str, list[Any]]:
    """A byte-order range: walks an index on a column (SQLite and "C" collation)."""
    return f"({expr} >= ? AND {expr} < ?)", [prefix, prefix_upper_bound(prefix)]


def _json_needle(value: TextValue) -> bytes | None:
    """Bytes that a stored body holds wherever a string field equals (or, for a prefix,
    starts with) ``value``; None when its JSON form may differ from its text.

    Bodies are RFC 8785 (JCS) JSON, which writes a string as its own UTF-8 between
    quotes, escaping only quotes, backslashes and control characters.
    """
    if any(c in value.text for c in '"\\') or any(ord(c) < 0x20 for c in value.text):
        return None
    return b'"' + value.text.encode() + (b"" if value.prefix else b'"')


def _body_prefilter(term: TextMatch) -> Where:
    """PostgreSQL: a byte search of the body that every match passes (~2 µs a row),
    checked before the body is parsed as jsonb (~19 µs a row, measured on 680-byte
    bodies); SQLite's instr costs about what its JSON parse does, so it has none.
    Nothing for a negated term (it matches rows without the bytes too)."""
    needles = [_json_needle(v) for v in term.values]
    if term.negated or any(n is None for n in needles):
        return Where()
    found = " OR ".join(["position(? in e.body) > 0"] * len(needles))
    return Where([f"({found})"], list(needles))


def _negate(where: Where, negated: bool, null_safe: str | None = None) -> Where:
    if not negated:
        return where
    text = where.text()
    # NOT over a NULL field is NULL (no match); a negated term must match it.
    guard = f"{null_safe} IS NULL OR " if null_safe else ""
    return Where([f"({guard}NOT ({text}))"], list(where.args))


class ConditionSql:
    """Compiles query terms to predicates on ``e``, for one backend."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    # -- JSON access ---------------------------------------------------------------
    def _doc(self) -> str:
        return "convert_from(e.body, 'UTF8')::jsonb" if self.postgres else "CAST(e.body AS TEXT)"

    def _string_at(self, doc: str, path: Sequence[str]) -> str:
        """The string at ``path`` in ``doc`` (NULL when absent or not a string)."""
        if self.postgres:
            keys = ",".join(path)  # keys are [A-Za-z0-9_-] (query/fields.py)
            return (
                f"(CASE WHEN jsonb_typeof({doc} #> '{{{keys}}}') = 'string'"
                f" THEN {doc} #>> '{{{keys}}}' END)"
            )
        quoted = "$" + "".join(f'."{key}"' for key in path)
        return (
            f"(CASE WHEN json_type({doc}, '{quoted}') = 'text'"
            f" THEN json_extract({doc}, '{quoted}') END)"
        )

    def _starts(self, expr: str, prefix: str) -> tuple[str, list[Any]]:
        # Text computed from jsonb has the database's collation, not "C": PostgreSQL's
        # starts_with is byte-exact whatever the collation. SQLite compares bytes.
        if self.postgres:
            return f"starts_with({expr}, ?)", [prefix]
        return _range_prefix(expr, prefix)

    # -- terms ---------------------------------------------------------------------
    def text_match(self, term: TextMatch) -> Where:
        column = COLUMNS.get(term.field)
        if column is not None:
            where = _any_of(column, term.values, _range_prefix)
            return _negate(where, term.negated, column if term.field == "actor.id" else None)
        path = BODY_PATHS.get(term.field) or ("metadata", *(term.metadata_path or ()))
        if self.postgres:
            where = _body_prefilter(term)
            if not any(v.prefix for v in term.values):
                where.extend(self._jsonb_equals(path, term))
                return where
        else:
            where = Where()
        expr = self._string_at(self._doc(), path)
        where.extend(_negate(_any_of(expr, term.values, self._starts), term.negated, expr))
        return where

    def _jsonb_equals(self, path: Sequence[str], term: TextMatch) -> Where:
        """PostgreSQL, exact values: the jsonb at ``path`` equals one of them as a jsonb
        string (so numbers never match). One parse of the body per row, where the
        string-or-NULL form (_string_at) parses it twice. NULL (no such path) is no
        match, and a match of the negated term: IS NOT TRUE."""
        keys = ",".join(path)  # keys are [A-Za-z0-9_-] (query/fields.py)
        marks = ",".join(["to_jsonb(CAST(? AS text))"] * len(term.values))
        sql = f"(({self._doc()} #> '{{{keys}}}') IN ({marks}))"
        return Where([f"{sql} IS NOT TRUE" if term.negated else sql], [v.text for v in term.values])

    def targets(self, positive: Sequence[TextMatch], negated: Sequence[TextMatch]) -> Where:
        """Positive target terms on one target; each negated one on no target."""
        where = Where()
        if positive and self.postgres:
            for term in positive:
                where.extend(_body_prefilter(term))
        if positive:
            where.extend(self._target_exists(positive, negate=False))
        for term in negated:
            where.extend(self._target_exists([term], negate=True))
        return where

    def _target_exists(self, terms: Sequence[TextMatch], negate: bool) -> Where:
        inner = Where()
        for term in terms:
            key = TARGET_KEYS[term.field]
            expr = f"(t.v ->> '{key}')" if self.postgres else f"json_extract(t.value, '$.{key}')"
            inner.extend(_any_of(expr, term.values, self._starts))
        if self.postgres:
            source = f"jsonb_array_elements({self._doc()} -> 'targets') AS t(v)"
        else:
            source = f"json_each({self._doc()}, '$.targets') AS t"
        sql = f"{'NOT ' if negate else ''}EXISTS (SELECT 1 FROM {source} WHERE {inner.text()})"
        return Where([sql], inner.args)

    def severity(self, term: SeverityMatch) -> Where:
        return Where([f"e.severity IN ({','.join('?' * len(term.levels))})"], list(term.levels))

    def occurred(self, term: OccurredRange) -> Where:
        where = Where()
        if term.start is not None:
            where.add("e.occurred_at >= ?", term.start)
        if term.end is not None:
            where.add("e.occurred_at < ?", term.end)
        return _negate(where, term.negated)

    def ip(self, term: IpMatch) -> Where:
        expr = self._string_at(self._doc(), ("context", "ip_address"))
        nets = [str(n) for n in term.networks]
        if self.postgres:
            # Stored addresses went through Python's ipaddress; only a zone id ("%")
            # is something PostgreSQL's inet does not take.
            where = Where(
                [
                    f"(strpos({expr}, chr(37)) = 0"
                    f" AND CAST({expr} AS inet) <<= ANY(CAST(? AS inet[])))"
                ],
                [nets],
            )
        else:
            marks = ",".join("?" * len(nets))
            where = Where([f"{SQLITE_IP_FUNCTION}({expr}, {marks}) = 1"], nets)
        return _negate(where, term.negated, expr)

    def compile(self, terms: Sequence[Term]) -> Where:
        """The conjunction of ``terms`` (no Word or Phrase: those are full text)."""
        where = Where()
        positive_targets: list[TextMatch] = []
        negated_targets: list[TextMatch] = []
        for term in terms:
            if isinstance(term, TextMatch):
                if term.field in TARGET_KEYS:
                    (negated_targets if term.negated else positive_targets).append(term)
                else:
                    where.extend(self.text_match(term))
            elif isinstance(term, SeverityMatch):
                where.extend(self.severity(term))
            elif isinstance(term, OccurredRange):
                where.extend(self.occurred(term))
            elif isinstance(term, IpMatch):
                where.extend(self.ip(term))
            else:
                raise TypeError(f"not a row condition: {term!r}")
        where.extend(self.targets(positive_targets, negated_targets))
        return where


def sqlite_ip_in(address: str | None, *networks: str) -> int:
    """SQLite function: 1 when ``address`` lies in one of ``networks``, else 0."""
    if address is None:
        return 0
    try:
        ip = ip_address(address)
    except ValueError:
        return 0
    return int(any(ip in _network(n) for n in networks))


@functools.lru_cache(maxsize=256)
def _network(text: str) -> IpNetwork:
    return ip_network(text)
