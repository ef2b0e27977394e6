"""Trailkeep's query language over archived events, read in place with DuckDB.

An archive root holds ``<tenant_id>/<segment_id>/events.parquet`` files in the export
schema (exports/writers.py ``SCHEMA``). DuckDB reads Parquet where it lies (local
files, projection and row-group pruning, no server, in-process), so searching an
archive needs no restore of events into the store: a query compiles to one
``SELECT ... FROM read_parquet([...]) WHERE ...`` with every value a ``?`` parameter.

Semantics, and where they differ from the live API (store/reads/conditions.py):

- Field terms (``action``, ``actor.*``, ``outcome``, ``request_id``) compare the
  archive's text columns exactly, byte for byte; a prefix is ``starts_with``. As live,
  an event without the field matches no positive term and every negated one.
- ``target.type``/``target.id``: the positive terms must hold for one and the same
  target; a negated term means no target matches it (as live).
- ``metadata.KEY``: the string at that path of the metadata JSON (numbers, booleans and
  objects never match), as live.
- ``severity``: the set of levels as names (``severity IN (...)``).
- ``occurred``: the half-open µs interval on ``epoch_us(occurred_at)``, which does not
  depend on the connection's TimeZone (comparing to ``make_timestamp(?)`` would).
- ``ip``: one address matches the address text exactly; an IPv4 CIDR block compares
  the address as a 32-bit number; an IPv6 block wider than /128 is not supported.
- Words and phrases: a case-insensitive *substring* of the fields the live full-text
  index covers (message, actor name, target names, metadata JSON text), joined with a
  separator no query can contain. That is looser than the live token index: ``disk``
  also finds ``diskette``, metadata keys and JSON punctuation are searched too, and
  ``foo-bar`` is the substring itself, not the phrase ``foo bar``.
- Personal fields (actor name/email, ip, sealed metadata) are matched on the text the
  archive's view columns hold, as presented to the role that wrote the archive: masked
  or "[erased]" text matches as such, a sealed envelope matches no value. The live API
  matches sealed fields by their blind index instead.
- Results are the stored events (the ``stored`` column: the bytes the Merkle leaves
  hash), newest seq first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import duckdb
import orjson

from trailkeep.kit.event_vocabulary import SEVERITIES
from trailkeep.kit.fulltext import tokenize
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
from trailkeep.query.parser import parse_query

EVENTS_FILE = "events.parquet"
_COLUMNS = {
    "action": "action",
    "actor.id": "actor_id",
    "actor.type": "actor_type",
    "actor.name": "actor_name",
    "actor.email": "actor_email",
    "outcome": "outcome",
    "request_id": "request_id",
}
_TARGET_KEYS = {"target.type": "type", "target.id": "id"}
_METADATA_KEY = re.compile(r"[A-Za-z0-9_-]+")
_IPV4_TEXT = r"[0-9]{1,3}([.][0-9]{1,3}){3}"
_IPV4_NUMBER = (
    "list_reduce(list_transform(string_split(ip_address, '.'),"
    " lambda x: TRY_CAST(x AS BIGINT)), lambda a, b: a * 256 + b)"
)
# U+001F cannot occur in a query (query/parser.py), so no phrase spans two fields.
_FULL_TEXT = (
    "lower(concat_ws(chr(31), message, actor_name,"
    " array_to_string(list_transform(targets, lambda t: t.name), chr(31)), metadata))"
)
_GLOB_CHARS = frozenset("*?[")
# The string at a JSON path of metadata, else NULL (numbers, booleans, objects).
_METADATA_STRING = (
    "(CASE WHEN json_type(metadata, ?) = 'VARCHAR' THEN json_extract_string(metadata, ?) END)"
)


class ArchiveQueryError(ValueError):
    """A query the archive cannot answer, or archive files that cannot be read.

    ``position`` is the 0-based offset in the query text when the query did not parse.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class _Where:
    """A conjunction of DuckDB predicates and their ``?`` arguments, in text order."""

    sql: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, sql: str, args: list[Any], negated: bool = False) -> None:
        # NOT over NULL (no such field) is NULL; a negated term must match it.
        self.sql.append(f"(NOT coalesce({sql}, false))" if negated else sql)
        self.args.extend(args)


def archive_files(root: Path, tenant_id: str | None) -> list[Path]:
    """The events.parquet files of one tenant (or of all, with None), sorted."""
    if not root.is_dir():
        raise ArchiveQueryError(f"the archive root {str(root)!r} is not a folder")
    if tenant_id is None:
        return sorted(p for p in root.glob(f"*/*/{EVENTS_FILE}") if p.is_file())
    if tenant_id in ("", ".", "..") or "/" in tenant_id or "\\" in tenant_id:
        raise ArchiveQueryError(f"bad tenant id {tenant_id!r}")
    folder = root / tenant_id
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*/{EVENTS_FILE}") if p.is_file())


def _any_of(
    expr: str, expr_args: list[Any], values: tuple[TextValue, ...]
) -> tuple[str, list[Any]]:
    """``expr`` equals one of the exact values or starts with one of the prefixes."""
    parts: list[str] = []
    args: list[Any] = []
    exact = [v.text for v in values if not v.prefix]
    if exact:
        parts.append(f"{expr} IN ({', '.join('?' * len(exact))})")
        args += expr_args + exact
    for value in values:
        if value.prefix:
            parts.append(f"starts_with({expr}, ?)")
            args += [*expr_args, value.text]
    if not parts:
        return "false", []
    return "(" + " OR ".join(parts) + ")", args


def _metadata_path(term: TextMatch) -> str:
    keys = term.metadata_path or ()
    if not keys or not all(_METADATA_KEY.fullmatch(key) for key in keys):
        raise ArchiveQueryError(f"bad metadata field {term.field!r}")
    return "$" + "".join(f'."{key}"' for key in keys)


def _text_match(where: _Where, term: TextMatch) -> None:
    column = _COLUMNS.get(term.field)
    if column is not None:
        where.add(*_any_of(column, [], term.values), negated=term.negated)
        return
    if term.metadata_path is None:
        raise ArchiveQueryError(f"unknown field {term.field!r}")
    path = _metadata_path(term)
    expr = (
        "(CASE WHEN json_type(metadata, ?) = 'VARCHAR' THEN json_extract_string(metadata, ?) END)"
    )
    where.add(*_any_of(expr, [path, path], term.values), negated=term.negated)


def _targets(where: _Where, terms: list[TextMatch], negated: bool) -> None:
    """One predicate: some target satisfies every term (its negation: none does)."""
    parts: list[str] = []
    args: list[Any] = []
    for term in terms:
        sql, more = _any_of(f"t.{_TARGET_KEYS[term.field]}", [], term.values)
        parts.append(sql)
        args += more
    sql = f"(len(list_filter(targets, lambda t: {' AND '.join(parts)})) > 0)"
    where.add(sql, args, negated=negated)


def _ip(where: _Where, term: IpMatch) -> None:
    parts: list[str] = []
    args: list[Any] = []
    for network in term.networks:
        if network.prefixlen == network.max_prefixlen:
            parts.append("ip_address = ?")
            args.append(str(network.network_address))
        elif isinstance(network, IPv4Network):
            parts.append(
                f"(CASE WHEN regexp_full_match(ip_address, '{_IPV4_TEXT}')"
                f" THEN {_IPV4_NUMBER} END BETWEEN ? AND ?)"
            )
            args += [int(network.network_address), int(network.broadcast_address)]
        else:
            raise ArchiveQueryError(
                f"ip:{network}: IPv6 CIDR ranges are not supported on archives;"
                " search one address (a /128) instead"
            )
    where.add("(" + " OR ".join(parts) + ")", args, negated=term.negated)


def _occurred(where: _Where, term: OccurredRange) -> None:
    parts: list[str] = []
    args: list[Any] = []
    if term.start is not None:
        parts.append("epoch_us(occurred_at) >= ?")
        args.append(term.start)
    if term.end is not None:
        parts.append("epoch_us(occurred_at) < ?")
        args.append(term.end)
    where.add("(" + (" AND ".join(parts) or "true") + ")", args, negated=term.negated)


def _full_text(where: _Where, term: Word | Phrase) -> None:
    if not tokenize(term.text):  # as live: a word without a token matches nothing
        if not term.negated:
            where.add("false", [])
        return
    where.add(f"contains({_FULL_TEXT}, ?)", [term.text.lower()], negated=term.negated)


def compile_duckdb(query: Query) -> tuple[str, list[Any]]:
    """A WHERE clause over the export schema's columns, and its ``?`` arguments.

    Raises ArchiveQueryError for a term the archive cannot answer.
    """
    where = _Where()
    positive_targets: list[TextMatch] = []
    term: Term
    for term in query.terms:
        if isinstance(term, TextMatch) and term.field in _TARGET_KEYS:
            if term.negated:
                _targets(where, [term], negated=True)
            else:
                positive_targets.append(term)
        elif isinstance(term, TextMatch):
            _text_match(where, term)
        elif isinstance(term, SeverityMatch):
            names = [SEVERITIES[level] for level in term.levels]
            where.add(f"severity IN ({', '.join('?' * len(names))})", names)
        elif isinstance(term, OccurredRange):
            _occurred(where, term)
        elif isinstance(term, IpMatch):
            _ip(where, term)
        elif isinstance(term, Word | Phrase):
            _full_text(where, term)
        else:
            raise ArchiveQueryError(f"{type(term).__name__} terms are not supported on archives")
    if positive_targets:
        _targets(where, positive_targets, negated=False)
    return " AND ".join(where.sql) if where.sql else "true", where.args


def query_archive(
    files: list[Path], query_text: str, *, limit: int, now_us: int
) -> list[dict[str, Any]]:
    """The stored events of ``files`` matching ``query_text``, newest seq first, at most
    ``limit``. Relative times in the query count back from ``now_us``."""
    if limit < 0:
        raise ArchiveQueryError(f"limit must not be negative, not {limit}")
    try:
        query = parse_query(query_text, now_us=now_us)
    except QueryError as error:
        raise ArchiveQueryError(
            f"bad query at position {error.position}: {error.message}", error.position
        ) from error
    where, args = compile_duckdb(query)
    if not files or limit == 0:
        return []
    paths = [str(path) for path in files]
    for path in paths:  # read_parquet expands globs: a name must be taken literally
        if _GLOB_CHARS.intersection(path):
            raise ArchiveQueryError(f"archive path {path!r} contains a glob character")
    # A run killed after storing a segment but before recording it leaves a copy that
    # the next run archives again: one row per (tenant folder, seq), the same event.
    sql = (
        "SELECT stored FROM (SELECT stored, seq, filename, row_number() OVER (PARTITION BY"
        " regexp_extract(filename, '([^/]+)/[^/]+/[^/]+$', 1), seq ORDER BY filename) AS copy"
        f" FROM read_parquet(?, filename = true) WHERE {where})"
        " WHERE copy = 1 ORDER BY seq DESC, filename LIMIT ?"
    )
    try:
        with duckdb.connect(":memory:") as connection:
            rows = connection.execute(sql, [paths, *args, limit]).fetchall()
    except duckdb.Error as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ArchiveQueryError(f"cannot read the archive: {detail}") from error
    return [orjson.loads(stored) for (stored,) in rows]
