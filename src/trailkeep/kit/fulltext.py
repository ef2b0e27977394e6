"""Full-text tokens: one tokenizer for documents and queries, on both backends.

SQLite (FTS5) and PostgreSQL (tsvector) tokenize text differently: FTS5's unicode61
folds diacritics, PostgreSQL's parser keeps ``foo-bar`` and e-mail addresses whole,
and each stems or not by configuration. To give the same results for the same query on
both, neither database tokenizes anything: this module does, at ingest and at query
time, and the databases only store and look up the finished tokens.

- A token is a run of characters for which ``str.isalnum()`` holds, lower-cased.
  Tokens longer than MAX_TOKEN_CHARS are not indexed (hashes, base64 blobs).
- An event's searchable text is its message, actor name, target names and metadata
  values (strings and numbers, at any depth), in that order. Between two fields sits
  FIELD_BREAK, a token no query can contain, so a phrase never matches across fields.
- At most MAX_TOKENS tokens per event are indexed (the message comes first).

SQLite gets the tokens as one space-separated string (``document_text``), indexed by
FTS5's ``ascii`` tokenizer, which splits on ASCII spaces and passes every non-ASCII
character through unchanged, so each of our tokens is exactly one FTS5 token.
PostgreSQL gets a tsvector literal with the same tokens at the same positions
(``document_tsvector``), cast without any text search configuration.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trailkeep.kit.sealed import is_sealed

MAX_TOKEN_CHARS = 64
MAX_TOKENS = 1024
# Not alphanumeric, so no query token equals it; non-ASCII, so FTS5's ascii tokenizer
# keeps it as a token of its own (a gap of one position, as in the tsvector).
FIELD_BREAK = "\u00a7"
# PostgreSQL keeps at most 256 positions per lexeme and positions up to 16,383.
_PG_MAX_POSITIONS = 256
_ALNUM_RUN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``: runs of alphanumeric characters, lower-cased."""
    # re's \w is exactly str.isalnum() plus "_" (both use Py_UNICODE_ISALNUM), so
    # [^\W_] is isalnum(): the same tokens as a character loop, ~10x faster at ingest.
    return [run.lower() for run in _ALNUM_RUN.findall(text)]


def _indexable(tokens: list[str]) -> list[str]:
    return [t for t in tokens if len(t) <= MAX_TOKEN_CHARS]


def _metadata_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, dict):
        if is_sealed(value):  # ciphertext: never indexed (docs/privacy.md)
            return
        for item in value.values():
            yield from _metadata_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _metadata_texts(item)


def _field_texts(doc: dict[str, Any]) -> Iterator[str]:
    message = doc.get("message")
    if isinstance(message, str):
        yield message
    actor = doc.get("actor")
    if isinstance(actor, dict) and isinstance(actor.get("name"), str):
        yield actor["name"]
    for target in doc.get("targets") or ():
        if isinstance(target, dict) and isinstance(target.get("name"), str):
            yield target["name"]
    yield from _metadata_texts(doc.get("metadata"))


def document_tokens(doc: dict[str, Any]) -> list[str]:
    """The indexed tokens of a stored event, with FIELD_BREAK between fields."""
    out: list[str] = []
    for text in _field_texts(doc):
        tokens = _indexable(tokenize(text))
        if not tokens:
            continue
        if out:
            out.append(FIELD_BREAK)
        out.extend(tokens)
        if len(out) >= MAX_TOKENS:
            return out[:MAX_TOKENS]
    return out


def document_text(tokens: list[str]) -> str:
    """SQLite's form: the tokens between single spaces, with a space at either end, so
    that ``instr(text, ' word ')`` tests a token and ``' pre'`` a token prefix."""
    return " " + " ".join(tokens) + " " if tokens else " "


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _positions(tokens: list[str]) -> dict[str, list[int]]:
    """Each lexeme's positions 1, 2, ...; FIELD_BREAK is not stored but takes its
    position, like the token FTS5 keeps."""
    positions: dict[str, list[int]] = {}
    for position, token in enumerate(tokens, start=1):
        if token != FIELD_BREAK:
            found = positions.setdefault(token, [])
            if len(found) < _PG_MAX_POSITIONS:
                found.append(position)
    return positions


def document_tsvector(tokens: list[str]) -> str:
    """PostgreSQL's form as a tsvector literal (text input, e.g. for a backfill)."""
    return " ".join(
        f"{_quote(lexeme)}:{','.join(map(str, spots))}"
        for lexeme, spots in _positions(tokens).items()
    )


def document_tsvector_binary(tokens: list[str]) -> bytes:
    """The same tsvector in PostgreSQL's binary wire format (for COPY ... BINARY):
    int32 lexeme count; per lexeme its UTF-8 text and a NUL, uint16 position count,
    uint16 positions (weight bits 0). The server sorts the lexemes itself."""
    positions = _positions(tokens)
    parts = [struct.pack("!i", len(positions))]
    for lexeme, spots in positions.items():
        parts.append(lexeme.encode() + b"\0")
        parts.append(struct.pack(f"!H{len(spots)}H", len(spots), *spots))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class TextSearch:
    """One full-text condition: these tokens, adjacent and in order (one token: a word).

    ``prefix``: the last token is a prefix. ``negated``: the event must not match.
    """

    tokens: tuple[str, ...]
    prefix: bool = False
    negated: bool = False

    def sqlite_needle(self) -> str:
        """The substring of ``document_text`` whose presence means a match."""
        inner = " " + " ".join(self.tokens)
        return inner if self.prefix else inner + " "

    def fts5(self) -> str:
        """The FTS5 query of this condition alone (a quoted phrase, maybe a prefix)."""
        phrase = '"' + " ".join(self.tokens) + '"'
        return phrase + " *" if self.prefix else phrase

    def tsquery(self) -> str:
        """The tsquery of this condition alone (``<->`` is "followed by")."""
        parts = [_quote(t) for t in self.tokens]
        if self.prefix:
            parts[-1] += ":*"
        return " <-> ".join(parts)


def text_search(text: str, prefix: bool, negated: bool) -> TextSearch | None:
    """The condition for a query word or phrase; None when it has no indexed token.

    ``foo-bar`` is the phrase ``foo bar``, as it is indexed. A token longer than
    MAX_TOKEN_CHARS is never indexed, so a condition containing one cannot match.
    """
    tokens = tokenize(text)
    if not tokens or any(len(t) > MAX_TOKEN_CHARS for t in tokens):
        return None
    # "foo-*" ends in a separator: its last token is complete, not a prefix.
    last_complete = not text.rstrip("*")[-1:].isalnum()
    return TextSearch(tuple(tokens), prefix and not last_complete, negated)
