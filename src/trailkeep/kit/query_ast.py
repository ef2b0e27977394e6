"""The filter model a query parses to: a conjunction of terms.

Every class is a frozen dataclass, so a parsed query can be compared, hashed, cached
and handed to a backend without anyone mutating it. The model is normalized as far as
that is lossless for the backends: severity comparisons and negations become a set of
levels, every time form becomes a half-open microsecond interval, IPs become networks.
That keeps the later SQL and rollup code to one case per field instead of one per
spelling, and makes ``parse(render(q)) == q`` a meaningful property.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

# Fields compared as text. metadata.KEY is open-ended and checked by its key charset.
TEXT_FIELDS = (
    "action",
    "actor.id",
    "actor.type",
    "actor.name",
    "actor.email",
    "target.type",
    "target.id",
    "outcome",
    "request_id",
)
FIELDS = (*TEXT_FIELDS, "severity", "ip", "occurred")
METADATA_PREFIX = "metadata."

IpNetwork = IPv4Network | IPv6Network


class QueryError(ValueError):
    """A query that cannot be parsed; ``position`` is the 0-based offset of the problem.

    ``str(error)`` is the message alone, so the API can put it in its error body and the
    position in the details; ``pointer()`` draws a caret for terminals.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def pointer(self, text: str) -> str:
        """The query and a caret under the offending character (for the CLI)."""
        line = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        return f"{line}\n{' ' * self.position}^ {self.message}"


@dataclass(frozen=True, slots=True)
class TextValue:
    """One value of a text field: exact, or a prefix (``user.*``)."""

    text: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class TextMatch:
    """``field:a,b*``: the field equals one of the values (or starts with a prefix).

    ``field`` is one of TEXT_FIELDS or ``metadata.<key>``, where the key is dotted
    segments of ``[A-Za-z0-9_-]`` naming a path into nested metadata objects.
    """

    field: str
    values: tuple[TextValue, ...]
    negated: bool = False

    @property
    def metadata_path(self) -> tuple[str, ...] | None:
        """The key path of a metadata field (``("plan", "tier")``), else None."""
        if not self.field.startswith(METADATA_PREFIX):
            return None
        return tuple(self.field[len(METADATA_PREFIX) :].split("."))


@dataclass(frozen=True, slots=True)
class SeverityMatch:
    """The event's severity level is one of ``levels``.

    Levels are the store's ints (``SEVERITY_RANK``: DEBUG=0 .. CRITICAL=5), sorted and
    distinct. ``severity>=WARNING`` and ``-severity:DEBUG`` are folded into this set, so
    there is no ``negated``: a backend serves every severity term with one ``IN``
    (or a range when the levels are contiguous).
    """

    levels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class IpMatch:
    """``context.ip_address`` lies in one of the networks (an address is a /32 or /128)."""

    networks: tuple[IpNetwork, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class OccurredRange:
    """``occurred_at`` in the half-open interval [start, end), in microseconds UTC.

    ``None`` is an open side; the parser never produces both None. Comparisons, dates,
    date-times, relative times and ``a..b`` ranges all resolve to this one shape.
    """

    start: int | None
    end: int | None
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """``"disk full"``: the words in this order, in the full-text fields."""

    text: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Word:
    """A bare word (or word prefix ``disk*``) searched as full text over message, actor
    name, target names and metadata values."""

    text: str
    prefix: bool = False
    negated: bool = False


Term = TextMatch | SeverityMatch | IpMatch | OccurredRange | Phrase | Word


@dataclass(frozen=True, slots=True)
class Query:
    """All terms must hold (AND). No terms: every event matches."""

    terms: tuple[Term, ...] = ()
