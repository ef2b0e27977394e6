"""Built-in detectors of secrets and personal data in free text, for redaction at ingest.

Each detector is an RE2 pattern that finds *candidates* plus a Python check that keeps
the real ones (Luhn for cards, ISO 13616 mod-97 for IBANs, lengths). All detectors of a
rule set are compiled into one alternation (``detector_pass``), and ``find`` runs it
once over all of an event's scanned strings joined by ``"\\n"``: one pass of RE2's DFA,
linear in the text, instead of one call per string and detector (RE2's Python wrapper
costs microseconds a call). So that no match can span two strings, no detector pattern
matches ``"\\n"``: separators are ``[ \\t]``, never ``\\s``. Custom patterns run the same
way, and ``find`` falls back to one call per string when a match crosses a separator.

RE2 has no look-around; boundaries are ``\\b`` (ASCII word characters ``[0-9A-Za-z_]``).
A candidate whose check fails is skipped whole, and the scan resumes after it.

What each detector matches, and what it deliberately leaves alone:

- ``email``: ``local@domain.tld`` (local part ``[A-Za-z0-9._%+-]``, a dotted domain, a
  top-level domain of letters). ``user@localhost`` and ``pkg@1.2.3`` are not addresses.
- ``card``: 13-19 digits, optionally grouped by single spaces or dashes, passing Luhn.
  The run must stand alone (``\\b``: not inside a longer digit run, not glued to letters
  as in hex ids); a grouped run holding more digits is searched for windows of whole
  groups of 3+ digits that pass (``4111 1111 1111 1111 2 items``, two cards in a row).
  A random digit string passes Luhn one time in ten, so bare 13-19 digit numbers (epoch
  milliseconds) sometimes match: over-redaction is the safe side for a log that cannot
  be changed later.
- ``iban``: country letters, two check digits, 11-30 upper-case letters or digits
  (optionally in space-separated groups of four), valid by mod-97 == 1.
- ``bearer``: ``Bearer <token>`` (``bearer`` in any case), token of >= 16 characters of
  ``[A-Za-z0-9._~+/=-]``. Only the token is redacted: ``Bearer [redacted]`` still says
  what was there.
- ``jwt``: three base64url segments, the first starting ``eyJ`` (``{"``), >= 30 chars.
- ``api_key``: well-known prefixed secrets (Stripe ``sk_live_``/``sk_test_``/
  ``rk_live_``/``rk_test_``, GitHub ``ghp_ gho_ ghs_ ghu_ ghr_ github_pat_``, Slack
  ``xox[baprs]-``, Google ``AIza``) and ``api_key``/``apikey``/``secret``/
  ``secret_access_key``/``password``/``passwd`` assignments with ``=`` or ``:`` (also
  quoted, as in JSON text), of which only the value (>= 8 characters up to whitespace,
  a quote or an escaped quote) is redacted.
- ``aws``: access key ids ``AKIA``/``ASIA`` + 16 and the 40-character value after
  ``secret_access_key`` / ``SecretAccessKey`` (any case) and ``=`` or ``:``.
- ``phone``: E.164 only: ``+`` (not after a letter or digit) then 8-15 digits, grouped by
  spaces, dashes or a parenthesised area code. Bare digit runs without ``+`` are not
  matched: order numbers, amounts and ids would be too.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

import re2

__all__ = [
    "DETECTORS",
    "Action",
    "Alternative",
    "Detector",
    "DetectorName",
    "Edit",
    "Pass",
    "detector_pass",
    "find",
    "iban_valid",
    "luhn_valid",
    "re2_options",
]

DetectorName = Literal["email", "card", "iban", "bearer", "jwt", "api_key", "aws", "phone"]
Action = Literal["drop", "mask", "hmac"]
Span = tuple[int, int]
Edit = tuple[int, int, str]  # start, end and replacement in one string
SEPARATOR = "\n"

# Assignment syntax shared by api_key and aws: optional (escaped) quote, `=` or `:`.
_ASSIGN = r"""(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?"""
_GROUP = re.compile(r"[0-9]+")  # digit groups of a card candidate (linear, no backtracking)
_NON_DIGIT = re.compile(r"[^0-9]")
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d with its digits summed


@dataclass(frozen=True, slots=True)
class Detector:
    """``pattern`` (RE2) has at most one capturing group: the secret, when it is set.

    ``check`` takes the secret and returns the spans in it to redact ([] rejects it).
    ``canonical`` is what ``mask`` and ``hmac`` see: card digits only, an IBAN without
    spaces, so one value written two ways redacts alike.
    """

    name: DetectorName
    pattern: str
    secret_group: bool
    check: Callable[[str], list[Span]]
    canonical: Callable[[str], str] = str


def _digits(text: str) -> str:
    return _NON_DIGIT.sub("", text)


def _whole(text: str) -> list[Span]:
    return [(0, len(text))]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        total += _DOUBLED[digit] if position & 1 else digit
    return total % 10 == 0


def _card_spans(text: str) -> list[Span]:
    """The card numbers in a candidate run: the whole run, or windows of whole groups.

    Windows take groups of 3 or more digits only (cards are written 4-4-4-4, 4-6-5,
    ...), so ``1 2 3 ...`` has none. Luhn sums of windows come from two prefix sums (one
    per parity of the window's end): a long grouped run costs O(length), not O(19 length).
    """
    digits = _digits(text)
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return [(0, len(text))]
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text)]
    if len(groups) < 2:
        return []
    # prefix[p][k]: the Luhn sum of digits[:k] with the digits at index parity p doubled.
    prefix = ([0], [0])
    for k, char in enumerate(digits):
        digit = ord(char) - 48
        prefix[0].append(prefix[0][-1] + (_DOUBLED[digit] if k & 1 == 0 else digit))
        prefix[1].append(prefix[1][-1] + (_DOUBLED[digit] if k & 1 else digit))
    bounds: list[Span] = []  # each group's bounds as offsets in ``digits``
    for start, end in groups:
        first = bounds[-1][1] if bounds else 0
        bounds.append((first, first + end - start))
    spans: list[Span] = []
    i = 0
    while i < len(groups):
        best = -1
        for j in range(i, len(groups)):
            a, b = bounds[i][0], bounds[j][1]
            if b - a > 19 or bounds[j][1] - bounds[j][0] < 3:
                break
            # The window's last digit (b - 1) is not doubled: those of b's parity are.
            if b - a >= 13 and (prefix[b & 1][b] - prefix[b & 1][a]) % 10 == 0:
                best = j
        if best < 0:
            i += 1
            continue
        spans.append((groups[i][0], groups[best][1]))
        i = best + 1
    return spans


def iban_valid(compact: str) -> bool:
    """ISO 13616: the IBAN (no spaces) with its first four characters moved to the end,
    letters as 10..35, is 1 modulo 97."""
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[Span]:
    """The candidate, or its longest group-prefix that is valid: a spaced candidate may
    have taken in a following word of four characters (``... 0130 00 EURO``)."""
    parts = text.split(" ")
    for n in range(len(parts), 0, -1):
        if iban_valid("".join(parts[:n])):
            return [(0, len(" ".join(parts[:n])))]
    return []


def _compact(text: str) -> str:
    return text.replace(" ", "")


def _min_length(length: int) -> Callable[[str], list[Span]]:
    def check(text: str) -> list[Span]:
        return [(0, len(text))] if len(text) >= length else []

    return check


def _phone_spans(text: str) -> list[Span]:
    return [(0, len(text))] if 8 <= len(_digits(text)) <= 15 else []


_DEFINITIONS = (
    Detector(
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        False,
        _whole,
    ),
    Detector("card", r"\b[0-9](?:[ -]?[0-9]){12,}\b", False, _card_spans, _digits),
    Detector(
        "iban",
        r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b",
        False,
        _iban_spans,
        _compact,
    ),
    Detector("bearer", r"\b(?i:bearer)[ \t]+([A-Za-z0-9._~+/=-]{16,})", True, _whole),
    Detector("jwt", r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", False, _min_length(30)),
    Detector(
        "api_key",
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
        r"|\bxox[baprs]-[A-Za-z0-9-]{10,}"
        r"|\bAIza[0-9A-Za-z_-]{35}"
        r"|(?i:api[_-]?key|secret(?:_?access_?key)?|passw(?:or)?d)"
        + _ASSIGN
        + r"""((?:[^\s"'\\]|\\[^\s"']){8,})""",  # a backslash escapes, except a quote
        True,
        _whole,
    ),
    Detector(
        "aws",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
        r"|(?i:secret_?access_?key)" + _ASSIGN + r"([A-Za-z0-9/+=]{40})",
        True,
        _whole,
    ),
    Detector("phone", r"\B\+[1-9](?:[ -]?(?:\([0-9]{1,4}\)|[0-9])){7,}", False, _phone_spans),
)

DETECTORS: dict[DetectorName, Detector] = {d.name: d for d in _DEFINITIONS}


# -- scanning ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Alternative:
    group: int  # this alternative's capturing group in the pass's regex (0: whole match)
    secret: int | None  # the group holding the secret, when only part of a match is
    detector: Detector | None  # None for a custom pattern
    action: Action


@dataclass(frozen=True, slots=True)
class Pass:
    """One RE2 regex, run over all the scanned strings at once, and its alternatives.

    ``joined`` is False for a pattern that needs real string bounds (``^ $ \\A \\z``).
    """

    regex: re2._Regexp[str]
    alternatives: tuple[Alternative, ...]
    joined: bool = True


def re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors are raised, not also printed to stderr
    return options


def detector_pass(actions: Mapping[DetectorName, Action]) -> Pass:
    """One alternation of the detectors, each in its own group, in the given order."""
    parts: list[str] = []
    alternatives: list[Alternative] = []
    group = 1
    for name, action in actions.items():
        detector = DETECTORS[name]
        parts.append(f"({detector.pattern})")
        secret = group + 1 if detector.secret_group else None
        alternatives.append(Alternative(group, secret, detector, action))
        group += 2 if detector.secret_group else 1
    return Pass(re2.compile("|".join(parts), re2_options()), tuple(alternatives))


def find(
    pass_: Pass, texts: list[str], redact: Callable[[str, Action], str]
) -> dict[int, list[Edit]]:
    """The edits of one pass, per index in ``texts``: one RE2 call over the joined texts.

    ``redact(secret, action)`` gives a secret's replacement. A match that crosses a
    separator (a custom pattern's ``\\s`` or ``(?s).``) is no match of one string: the
    pass is then run string by string.
    """
    if not pass_.joined:
        return _find_each(pass_, texts, redact)
    joined = SEPARATOR.join(texts)
    edits: dict[int, list[Edit]] = {}
    starts: list[int] = []
    for m in _matches(pass_.regex, joined):
        start, end = m.span()
        if start == end:
            continue
        if not starts:
            starts = [0, *accumulate(len(t) + 1 for t in texts[:-1])]
        i = bisect_right(starts, start) - 1
        if end - starts[i] > len(texts[i]):
            return _find_each(pass_, texts, redact)
        _edits_of(m, joined, pass_, starts[i], redact, edits.setdefault(i, []))
    return {i: found for i, found in edits.items() if found}


def _find_each(
    pass_: Pass, texts: list[str], redact: Callable[[str, Action], str]
) -> dict[int, list[Edit]]:
    edits: dict[int, list[Edit]] = {}
    for i, text in enumerate(texts):
        found: list[Edit] = []
        for m in _matches(pass_.regex, text):
            if m.end() > m.start():
                _edits_of(m, text, pass_, 0, redact, found)
        if found:
            edits[i] = found
    return edits


def _matches(regex: re2._Regexp[str], text: str) -> Iterator[re2._Match[Any]]:
    """RE2's matches in ``text``. ASCII text goes as bytes: the offsets are the same, and
    the wrapper skips its UTF-8 offset bookkeeping (the larger part of a match's cost)."""
    if text.isascii():
        return regex.finditer(text.encode("ascii"))
    return regex.finditer(text)


def _edits_of(
    m: re2._Match[Any],
    text: str,
    pass_: Pass,
    base: int,
    redact: Callable[[str, Action], str],
    out: list[Edit],
) -> None:
    """Append the edits of match ``m`` in ``text`` (of the string at ``base``) to ``out``."""
    alt = pass_.alternatives[0]
    if len(pass_.alternatives) > 1:
        alt = next(a for a in pass_.alternatives if m.span(a.group)[0] >= 0)
    start, stop = m.span(alt.group)
    if alt.secret is not None and (inner := m.span(alt.secret))[0] >= 0:
        start, stop = inner
    secret = text[start:stop]
    start -= base
    detector = alt.detector
    if detector is None:
        out.append((start, start + len(secret), redact(secret, alt.action)))
        return
    for a, b in detector.check(secret):
        out.append((start + a, start + b, redact(detector.canonical(secret[a:b]), alt.action)))
