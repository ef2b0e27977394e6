"""Redaction rules: what a tenant strips from its events at ingest, before hashing.

A stored event is a leaf of the tenant's Merkle log: a value that reached storage cannot
be removed later without breaking the proofs, so redaction runs on the client document
before it is hashed, and the redacted value never survives in it. A rule names exactly
one of a field ``path``, a built-in ``detector`` (privacy/detectors.py) or a custom RE2
``pattern``, and an action:

- ``drop``: a field is removed from its object; a match in text becomes ``[redacted]``;
- ``mask``: ``****`` + the last 4 characters when there are more than 8, else ``****``
  (any non-string field: ``****``; a card keeps its last 4 digits);
- ``hmac``: ``hmac:`` + 32 hex digits of HMAC-SHA256 under the tenant's key (of the
  UTF-8 string, or of the canonical JSON of another value): equal values give equal
  results, so they can still be counted and joined, but not read or guessed offline.

Paths are dotted keys under ``actor``, ``targets``, ``message``, ``context``,
``changes`` or ``metadata``; ``*`` matches any one key; lists are crossed element by
element (``targets.name`` is every target's name). What the log is indexed by (action,
ids, actor and target ``id``/``type``, times, severity, outcome) cannot be named, and
``actor.*`` / ``targets.*`` skip ``id`` and ``type``. Changed places are reported as
concrete paths with list indexes (``targets.0.name``), never with values.

Detectors and patterns scan string values (never keys): ``message``, ``actor.name``,
``actor.email``, each target's ``name``, and every string under ``context``,
``changes`` and ``metadata``. Order: field rules (in list order, so a dropped field is
not scanned), then all detectors in one pass (where two could match at one place, the
earlier rule wins), then each pattern in list order.

Custom patterns are RE2: matching is linear in the text whatever the pattern, so a
tenant's ``(a+)+$`` cannot stall ingest. RE2's Python wrapper costs a few µs per call,
so a pass runs once over the event's scanned strings joined by ``"\\n"`` and maps each
match back to its string; a pattern that needs real string bounds (``^ $ \\A \\z``) or
whose match crosses a separator is run string by string instead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import re2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trailkeep.kit.canonical import canonical_json
from trailkeep.privacy.detectors import (
    DETECTORS,
    Action,
    Alternative,
    DetectorName,
    Pass,
    detector_pass,
    find,
    re2_options,
)

__all__ = [
    "DEFAULT_RULES",
    "MAX_PATTERN_LENGTH",
    "MAX_RULES",
    "Action",
    "CompiledRules",
    "DetectorName",
    "RedactionRule",
    "RuleError",
    "compile_rules",
]

MAX_RULES = 100
MAX_PATTERN_LENGTH = 512
MAX_SEGMENTS = 16
ROOTS = ("actor", "targets", "message", "context", "changes", "metadata")
_STRUCTURAL = frozenset({"id", "type"})  # of the actor and of each target
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}|\*")
_ACTIONS = frozenset({"drop", "mask", "hmac"})
_TARGETS = ("path", "detector", "pattern")
_DROPPED = "[redacted]"
_HIDDEN = "****"
_EMPTY_PROBES = ("", "a", "ab", "a b", "\n", "0")
_SCANNED_TREES = ("context", "changes", "metadata")


def _target_problem(rule: RedactionRule) -> str | None:
    given = [name for name in _TARGETS if getattr(rule, name, None) is not None]
    if len(given) == 1:
        return None
    named = " and ".join(given) if given else "none of them"
    return f"a rule names exactly one of path, detector or pattern; this one names {named}"


class RedactionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        None, description="Dotted field path, e.g. metadata.card, targets.name, metadata.*.token"
    )
    detector: DetectorName | None = Field(None, description="A built-in detector")
    pattern: str | None = Field(None, description="A regular expression (RE2 syntax)")
    action: Action

    @model_validator(mode="after")
    def _one_target(self) -> RedactionRule:
        problem = _target_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self


DEFAULT_RULES: tuple[RedactionRule, ...] = (
    RedactionRule(detector="card", action="mask"),
    RedactionRule(detector="bearer", action="drop"),
    RedactionRule(detector="jwt", action="drop"),
    RedactionRule(detector="api_key", action="drop"),
    RedactionRule(detector="aws", action="drop"),
)
"""On for tenants that set no rules: secrets, which an audit log never needs, and card
numbers (masked: the last 4 digits still tell cards apart). Not email, phone or IBAN:
personal data the tenant may need to keep (and may encrypt instead); it opts in."""


class RuleError(ValueError):
    """A rule set that cannot be used. ``index`` is the position of the rule at fault in
    the list (None: the set as a whole); the message names the problem only."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, slots=True)
class _FieldRule:
    segments: tuple[str, ...]
    action: Action


class CompiledRules:
    """A rule set ready to apply: compiled once per tenant policy, shared by requests."""

    __slots__ = ("_fields", "_passes", "rules")

    def __init__(
        self,
        rules: tuple[RedactionRule, ...],
        fields: tuple[_FieldRule, ...],
        passes: tuple[Pass, ...],
    ) -> None:
        self.rules = rules
        self._fields = fields
        self._passes = passes

    def apply(self, doc: dict[str, Any], hmac_key: bytes) -> list[str]:
        """Redact ``doc`` in place; return the sorted, de-duplicated field paths that were
        changed (never values)."""
        changed: set[str] = set()
        for rule in self._fields:
            _apply_field_rule(doc, rule, hmac_key, changed)
        if self._passes:
            _scan(doc, self._passes, hmac_key, changed)
        return sorted(changed)


def compile_rules(rules: Sequence[RedactionRule]) -> CompiledRules:
    """Check and compile ``rules``; raises RuleError naming the first unusable one."""
    if len(rules) > MAX_RULES:
        raise RuleError(f"{len(rules)} rules; at most {MAX_RULES} are allowed")
    fields: list[_FieldRule] = []
    detectors: dict[DetectorName, Action] = {}  # the first rule of a detector wins
    patterns: list[Pass] = []
    for index, rule in enumerate(rules):
        problem = _target_problem(rule)
        if problem is None and getattr(rule, "action", None) not in _ACTIONS:
            problem = f"unknown action {getattr(rule, 'action', None)!r}; use drop, mask or hmac"
        if problem is not None:
            raise RuleError(problem, index)
        if rule.path is not None:
            fields.append(_FieldRule(_parse_path(rule.path, index), rule.action))
        elif rule.detector is not None:
            if rule.detector not in DETECTORS:
                raise RuleError(f"unknown detector {rule.detector!r}", index)
            detectors.setdefault(rule.detector, rule.action)
        elif rule.pattern is not None:
            patterns.append(_pattern_pass(rule.pattern, rule.action, index))
    passes = ([detector_pass(detectors)] if detectors else []) + patterns
    return CompiledRules(tuple(rules), tuple(fields), tuple(passes))


# -- checking ------------------------------------------------------------------------
def _parse_path(path: str, index: int) -> tuple[str, ...]:
    segments = tuple(path.split("."))
    if len(segments) > MAX_SEGMENTS:
        raise RuleError(f"path has {len(segments)} segments; at most {MAX_SEGMENTS}", index)
    for position, segment in enumerate(segments):
        if not segment:
            raise RuleError(f"path {path[:80]!r} has an empty segment", index)
        if not _SEGMENT.fullmatch(segment):
            raise RuleError(
                f"path segment {position} ({segment[:40]!r}) must be * or 1-64 letters,"
                " digits, '_' and '-'",
                index,
            )
    root = segments[0]
    if root not in ROOTS:
        raise RuleError(
            f"path {path[:80]!r} cannot be redacted: it must start with one of"
            f" {', '.join(ROOTS)} (the other fields are what the log is indexed by)",
            index,
        )
    if root in ("actor", "targets") and (len(segments) == 1 or segments[1] in _STRUCTURAL):
        raise RuleError(
            f"path {path[:80]!r} cannot be redacted: {root} id and type are what the log is"
            f" indexed by; name a field such as {root}.name",
            index,
        )
    if root == "message" and len(segments) > 1:
        raise RuleError("message is text: it has no fields (use just 'message')", index)
    return segments


def _pattern_pass(pattern: str, action: Action, index: int) -> Pass:
    if not pattern:
        raise RuleError("the pattern is empty", index)
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RuleError(
            f"the pattern has {len(pattern)} characters; at most {MAX_PATTERN_LENGTH}", index
        )
    if "\\C" in pattern:
        raise RuleError("\\C (any byte) is not supported: patterns match characters", index)
    try:
        regex = re2.compile(pattern, re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):  # the wrapper passes RE2's message through as bytes
            detail = detail.decode("utf-8", "replace")
        raise RuleError(f"the pattern is not valid RE2 syntax: {detail}", index) from None
    for probe in _EMPTY_PROBES:
        if any(m.start() == m.end() for m in regex.finditer(probe)):
            raise RuleError("the pattern matches the empty string", index)
    return Pass(regex, (Alternative(0, None, None, action),), not _needs_bounds(pattern))


def _needs_bounds(pattern: str) -> bool:
    """Whether ``pattern`` has ``^ $ \\A \\z`` (outside a character class): then it must
    see each string alone. When unsure (``\\Q...\\E`` quoting) the answer is yes."""
    if "\\Q" in pattern:
        return True
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if not in_class and pattern[i + 1 : i + 2] in ("A", "z"):
                return True
            i += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "^$":
            return True
        i += 1
    return False


# -- field rules ---------------------------------------------------------------------
def _apply_field_rule(doc: dict[str, Any], rule: _FieldRule, key: bytes, changed: set[str]) -> None:
    segments = rule.segments
    last = len(segments) - 1
    protect = segments[0] in ("actor", "targets")  # skip id and type under actor.* / targets.*
    stack: list[tuple[Any, int, str]] = [(doc, 0, "")]
    while stack:
        node, depth, prefix = stack.pop()
        if isinstance(node, list):
            stack.extend((item, depth, f"{prefix}{i}.") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        segment = segments[depth]
        if segment == "*":
            names = [k for k in node if not (protect and depth == 1 and k in _STRUCTURAL)]
        else:
            names = [segment] if segment in node else []
        for name in names:
            if depth < last:
                stack.append((node[name], depth + 1, f"{prefix}{name}."))
                continue
            if rule.action == "drop":
                del node[name]
            else:
                node[name] = _redact_value(node[name], rule.action, key)
            changed.add(prefix + name)


def _redact_value(value: Any, action: Action, key: bytes) -> str:
    if isinstance(value, str):
        return _redact_text(value, action, key)
    if action == "mask":
        return _HIDDEN
    try:
        data = canonical_json(value)
    except (ValueError, TypeError, RecursionError):  # not JCS-encodable: still keyed, stable
        data = repr(value).encode("utf-8", "surrogatepass")
    return _hmac(key, data)


def _redact_text(value: str, action: Action, key: bytes) -> str:
    if action == "drop":
        return _DROPPED
    if action == "mask":
        return _HIDDEN + value[-4:] if len(value) > 8 else _HIDDEN
    return _hmac(key, value.encode("utf-8", "surrogatepass"))


def _hmac(key: bytes, data: bytes) -> str:
    return "hmac:" + hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


# -- scanning ------------------------------------------------------------------------
_Place = tuple[Any, Any, str]  # holder (dict or list), key in it, path prefix of the holder


def _scanned(doc: dict[str, Any]) -> tuple[list[str], list[_Place]]:
    """The strings detectors scan, and where each one is (hot path: kept flat)."""
    texts: list[str] = []
    places: list[_Place] = []
    text, place = texts.append, places.append
    value = doc.get("message")
    if isinstance(value, str):
        text(value)
        place((doc, "message", ""))
    actor = doc.get("actor")
    if isinstance(actor, dict):
        for name in ("name", "email"):
            if isinstance(value := actor.get(name), str):
                text(value)
                place((actor, name, "actor."))
    targets = doc.get("targets")
    if isinstance(targets, list):
        for i, target in enumerate(targets):
            if isinstance(target, dict) and isinstance(value := target.get("name"), str):
                text(value)
                place((target, "name", f"targets.{i}."))
    stack = [(doc[r], f"{r}.") for r in _SCANNED_TREES if isinstance(doc.get(r), dict | list)]
    while stack:
        node, prefix = stack.pop()
        items: Iterable[tuple[Any, Any]] = node.items() if type(node) is dict else enumerate(node)
        for name, value in items:
            if isinstance(value, str):
                text(value)
                place((node, name, prefix))
            elif isinstance(value, dict | list):
                stack.append((value, f"{prefix}{name}."))
    return texts, places


def _nothing_found(doc: dict[str, Any], detectors: Pass) -> bool:
    """A fast proof that no detector matches: one RE2 search over the scanned members as
    orjson bytes, no Python walk. Sound only when that JSON has no backslash: then every
    string appears verbatim, between quotes, which are not word characters as the text
    bounds are not. Keys and non-strings there can only cause a needless full scan."""
    try:
        data = orjson.dumps(tuple(doc.get(root) for root in ROOTS))
    except orjson.JSONEncodeError:
        return False
    return b"\\" not in data and detectors.regex.search(data) is None


def _scan(doc: dict[str, Any], passes: tuple[Pass, ...], key: bytes, changed: set[str]) -> None:
    only_detectors = len(passes) == 1 and passes[0].alternatives[0].detector is not None
    if only_detectors and _nothing_found(doc, passes[0]):
        return
    texts, places = _scanned(doc)
    if not texts:
        return

    def redact(secret: str, action: Action) -> str:
        return _redact_text(secret, action, key)

    for pass_ in passes:
        for i, found in find(pass_, texts, redact).items():
            pieces: list[str] = []
            end = 0
            for start, stop, replacement in found:
                pieces += (texts[i][end:start], replacement)
                end = stop
            pieces.append(texts[i][end:])
            texts[i] = "".join(pieces)
            holder, name, prefix = places[i]
            holder[name] = texts[i]
            changed.add(f"{prefix}{name}")
