"""Parse a query string into the filter model (``ast``). Pure: no I/O, no clock.

The grammar (docs/query-language.md has it in EBNF) is flat: a query is a list of
terms separated by whitespace, all ANDed. So the parser is a plain recursive descent
over characters (term → field term | phrase | word; field term → name, operator,
values; value → quoted | bare) with no separate token stream: that keeps every error
position exact and costs one pass, linear in the input. There is no recursion that
grows with the input, so no input can exhaust the stack. What a field's values mean
(severity names, times, IPs, enums) is decided in ``fields``; this module only finds
the shape of the text.

Hostile input is bounded before any work is done (length first, then a single regex
scan for control characters), and every later limit is checked as soon as it is
crossed, so a 100 KB query or a 10,000-value list is refused in microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trailkeep.kit.query_ast import Phrase, Query, QueryError, Term, Word

from .fields import ORDERED, RawValue, build_term, resolve_field


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on one query, so that no query can make a slow or huge SQL statement."""

    max_length: int = 2_000  # characters in the whole query
    max_terms: int = 32  # terms (each becomes at least one predicate)
    max_values: int = 50  # values in one any-of list (field:a,b,...)
    max_value_length: int = 256  # characters in one value, word or phrase
    # A one-character full-text prefix ("a*") would expand to a large part of the FTS
    # index; field prefixes (action:u*) are B-tree range scans and may be one character.
    min_word_prefix: int = 2


# Anything in Unicode category Cc except tab, LF and CR (which count as spaces), and
# surrogates (a str can hold them, UTF-8 cannot, so no stored event could match).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_OPERATORS = (">=", "<=", ":", ">", "<", "=")
_OPERATOR_CHARS = frozenset(":<>=")
_RESERVED = frozenset("()")  # kept free for grouping, so adding OR later breaks no query
_NAME_STOP = _OPERATOR_CHARS | _RESERVED | {'"'}
_VALUE_STOP = _RESERVED | {",", '"'}
_KEYWORDS = {
    "AND": "AND is implied: terms are always combined with AND",
    "OR": "OR is not supported: use field:a,b for any of several values",
    "NOT": "NOT is not supported: put '-' before a term to exclude it",
}


def parse_query(text: str, *, now_us: int, limits: QueryLimits = QueryLimits()) -> Query:
    """Parse ``text``; relative times (``-24h``) count back from ``now_us``.

    Raises QueryError, and nothing else, for any input.
    """
    if len(text) > limits.max_length:
        raise QueryError(f"query is longer than {limits.max_length} characters", limits.max_length)
    if bad := _FORBIDDEN.search(text):
        char = bad.group()
        what = (
            "NUL character"
            if char == "\x00"
            else "unpaired surrogate"
            if "\ud800" <= char <= "\udfff"
            else f"control character U+{ord(char):04X}"
        )
        raise QueryError(f"{what} is not allowed in a query", bad.start())
    return _Parser(text, now_us, limits).query()


class _Parser:
    def __init__(self, text: str, now_us: int, limits: QueryLimits) -> None:
        self.text = text
        self.pos = 0
        self.now_us = now_us
        self.limits = limits

    # -- characters ----------------------------------------------------------------

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def at_term_end(self) -> bool:
        char = self.peek()
        return char is None or char.isspace()

    def run(self, stop: frozenset[str]) -> str:
        """Consume characters up to whitespace, a character of ``stop`` or the end."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and not (text[self.pos] in stop or text[self.pos].isspace()):
            self.pos += 1
        return text[start : self.pos]

    def quoted(self) -> str:
        """A double-quoted string at self.pos; ``\\"`` and ``\\\\`` are its only escapes."""
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                if escaped not in ('"', "\\"):
                    if not escaped:
                        break
                    # Refused, not kept literally: a later \n or \t escape stays possible.
                    raise QueryError(
                        f"unknown escape '\\{escaped}' in quotes: only \\\" and \\\\ are escapes",
                        self.pos,
                    )
                out.append(escaped)
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1
        raise QueryError("unbalanced quote: no closing '\"'", start)

    def expect_term_end(self) -> None:
        if self.at_term_end():
            return
        char = self.peek()
        if char in _RESERVED:
            raise self.reserved()
        if char == '"':
            raise QueryError(
                "unexpected '\"' inside a word or value: quote the whole text", self.pos
            )
        raise QueryError(f"unexpected {char!r} after a closing quote: add a space", self.pos)

    def reserved(self) -> QueryError:
        return QueryError(
            "parentheses are not supported (terms are always ANDed): quote text containing"
            f" {self.text[self.pos]!r}",
            self.pos,
        )

    # -- terms ---------------------------------------------------------------------

    def query(self) -> Query:
        terms: list[Term] = []
        while True:
            while self.pos < len(self.text) and self.text[self.pos].isspace():
                self.pos += 1
            if self.pos == len(self.text):
                return Query(tuple(terms))
            if len(terms) == self.limits.max_terms:
                raise QueryError(f"more than {self.limits.max_terms} terms", self.pos)
            terms.append(self.term())

    def term(self) -> Term:
        start = self.pos
        negated = self.peek() == "-"
        if negated:
            self.pos += 1
            if self.at_term_end():
                raise QueryError("'-' must be followed by a term", start)
            if self.peek() == "-":
                raise QueryError("'-' must be followed by a term, not another '-'", start)
        char = self.peek()
        if char == '"':
            phrase = self.quoted()
            self.expect_term_end()
            return Phrase(self.checked_phrase(phrase, start + negated), negated)
        if char in _RESERVED:
            raise self.reserved()
        name_pos = self.pos
        name = self.run(_NAME_STOP)
        char = self.peek()
        if char is not None and char in _OPERATOR_CHARS:
            if not name:
                raise QueryError(
                    f"missing field name before {char!r} (quote text to search for it)", self.pos
                )
            return self.field_term(name, name_pos, negated, start)
        self.expect_term_end()  # a quote or parenthesis glued to a word
        return self.word(name, name_pos, negated)

    def word(self, text: str, position: int, negated: bool) -> Word:
        prefix = text.endswith("*")
        core = text[:-1] if prefix else text
        if "*" in core:
            raise QueryError("'*' is only allowed at the end of a word", position + core.index("*"))
        if not core:
            raise QueryError("a bare '*' matches everything: leave the query empty", position)
        if not prefix and core in _KEYWORDS:
            raise QueryError(f"{_KEYWORDS[core]} (quote it to search for the word)", position)
        self.check_length(core, position, "word")
        if not any(c.isalnum() for c in core):
            raise QueryError(f"word {core!r} has no letters or digits to search for", position)
        if prefix and len(core) < self.limits.min_word_prefix:
            raise QueryError(
                f"prefix {core!r} is too short: a word prefix needs at least"
                f" {self.limits.min_word_prefix} characters before '*'",
                position,
            )
        return Word(core, prefix, negated)

    def checked_phrase(self, text: str, position: int) -> str:
        if not text.strip():
            raise QueryError("empty phrase", position)
        self.check_length(text, position, "phrase")
        if not any(c.isalnum() for c in text):
            raise QueryError(f"phrase {text!r} has no letters or digits to search for", position)
        return text

    def check_length(self, text: str, position: int, what: str) -> None:
        if len(text) > self.limits.max_value_length:
            raise QueryError(
                f"{what} is longer than {self.limits.max_value_length} characters", position
            )

    # -- field terms ---------------------------------------------------------------

    def field_term(self, name: str, name_pos: int, negated: bool, start: int) -> Term:
        field = resolve_field(name, name_pos)
        op_pos = self.pos
        op = next(op for op in _OPERATORS if self.text.startswith(op, op_pos))
        self.pos += len(op)
        if op != ":" and field not in ORDERED:
            raise QueryError(
                f"{field!r} only takes ':' ({op!r} works on severity and occurred)", op_pos
            )
        values = self.values(field)
        if op not in (":", "=") and len(values) > 1:
            raise QueryError(f"{field}{op} takes one value, not a list", values[1].position - 1)
        return build_term(field, op, values, negated, start, self.now_us)

    def values(self, field: str) -> list[RawValue]:
        values: list[RawValue] = []
        while True:
            if len(values) == self.limits.max_values:
                raise QueryError(f"more than {self.limits.max_values} values in one term", self.pos)
            values.append(self.value(field))
            if self.peek() != ",":
                self.expect_term_end()
                return values
            self.pos += 1

    def value(self, field: str) -> RawValue:
        position = self.pos
        if self.peek() == '"':
            text, quoted = self.quoted(), True
            prefix = self.peek() == "*"
            self.pos += prefix
        else:
            text, quoted = self.run(_VALUE_STOP), False
            prefix = text.endswith("*")
            text = text[:-1] if prefix else text
            if "*" in text:
                raise QueryError(
                    "'*' is only allowed at the end of a value", position + text.index("*")
                )
        if not text:
            if prefix:
                raise QueryError(f"'{field}:*' matches everything: leave the term out", position)
            raise QueryError(f"empty value for {field!r}", position)
        self.check_length(text, position, "value")
        return RawValue(text, position, quoted, prefix)
