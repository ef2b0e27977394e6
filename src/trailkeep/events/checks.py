"""Checks run on every decoded event: the rules the schema cannot express, and the
configurable limits.

Rules: text without NUL characters or unpaired surrogates, a valid IP address, a known
severity (aliases normalised in place), an actor id unless anonymous, resource_type and
resource_id together, free JSON (metadata, changes) bounded in depth, keys and size,
finite numbers, and every number (integer or not) within ±(2**53-1): the I-JSON rule
(RFC 7493 section 2.2). RFC 8785 writes a float such as 5.2775053738783674e+17 without
an exponent (527750537387836740), which ordinary parsers in JavaScript, Go or Python
then read as an integer beyond the exact range, so the stored bytes would not survive
parse, canonicalise, parse unchanged and an honest log would fail to verify.

Each violation is reported as ``{"loc": [...], "msg": ..., "type": ...}`` naming the
field, the same shape as schema errors, so clients see one error format.
"""

from __future__ import annotations

import math
from ipaddress import ip_address
from typing import Any

from trailkeep.config import Limits
from trailkeep.events.schema import EventIn
from trailkeep.kit.event_vocabulary import canonical_severity, unknown_severity
from trailkeep.kit.jsonutil import dumps
from trailkeep.kit.text import check_text

MAX_SAFE_INTEGER = 2**53 - 1  # integers beyond this do not survive JSON in most languages

Problem = dict[str, Any]


def _problem(loc: list[Any], msg: str, kind: str = "limit_exceeded") -> Problem:
    return {"loc": loc, "msg": msg, "type": kind}


class _JsonWalker:
    """Checks free-form JSON (metadata, changes): depth, key count, text, number range."""

    def __init__(self, loc: list[Any], max_depth: int, max_keys: int, max_key_len: int) -> None:
        self.loc = loc
        self.max_depth = max_depth
        self.max_keys = max_keys
        self.max_key_len = max_key_len
        self.keys = 0
        self.problems: list[Problem] = []

    def walk(self, value: Any, path: list[Any], depth: int) -> None:
        if self.problems:
            return  # first problem is enough; the walk must stay cheap on hostile input
        if depth > self.max_depth:
            self.problems.append(
                _problem(self.loc + path, f"nested deeper than {self.max_depth} levels")
            )
            return
        if isinstance(value, dict):
            self.keys += len(value)
            if self.keys > self.max_keys:
                self.problems.append(_problem(self.loc, f"more than {self.max_keys} keys"))
                return
            for key, item in value.items():
                if len(key) > self.max_key_len:
                    self.problems.append(
                        _problem(self.loc + path, f"key longer than {self.max_key_len}")
                    )
                    return
                self._text(key, [*path, key])
                self.walk(item, [*path, key], depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, [*path, index], depth + 1)
        elif isinstance(value, str):
            self._text(value, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                self.problems.append(
                    _problem(
                        self.loc + path,
                        "numbers must be finite (no NaN or Infinity)",
                        "value_error",
                    )
                )
            elif abs(value) > MAX_SAFE_INTEGER:
                self.problems.append(
                    _problem(
                        self.loc + path,
                        "number outside ±(2**53-1): JSON parsers cannot keep it exact"
                        " (send it as a string)",
                        "value_error",
                    )
                )
        elif (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER
        ):
            self.problems.append(
                _problem(self.loc + path, "integer outside ±(2**53-1)", "value_error")
            )

    def _text(self, value: str, path: list[Any]) -> None:
        try:
            check_text(value)
        except ValueError as exc:
            self.problems.append(_problem(self.loc + path, str(exc), "value_error"))


def _length(problems: list[Problem], loc: list[Any], value: str | None, cap: int) -> None:
    """Length cap and text rules of one string field."""
    if value is None:
        return
    if len(value) > cap:
        problems.append(_problem(loc, f"longer than {cap} characters"))
        return
    try:
        check_text(value)
    except ValueError as exc:
        problems.append(_problem(loc, str(exc), "value_error"))


def _free_json(
    problems: list[Problem], loc: list[Any], value: Any, cap_bytes: int, limits: Limits
) -> None:
    if value is None:
        return
    walker = _JsonWalker(loc, limits.max_metadata_depth, limits.max_metadata_keys, 256)
    walker.walk(value, [], 1)
    problems.extend(walker.problems)
    if not walker.problems and len(dumps(value)) > cap_bytes:
        problems.append(_problem(loc, f"larger than {cap_bytes} bytes as JSON"))


def _check_semantics(event: EventIn, problems: list[Problem]) -> None:
    severity = canonical_severity(event.severity)
    if severity is not None:
        event.severity = severity
    else:
        problems.append(_problem(["severity"], unknown_severity(event.severity), "enum"))
    if event.actor.id is None and event.actor.type != "anonymous":
        problems.append(
            _problem(["actor", "id"], "required unless actor.type is 'anonymous'", "missing")
        )
    if (event.resource_type is None) != (event.resource_id is None):
        problems.append(
            _problem(
                ["resource_id" if event.resource_id is None else "resource_type"],
                "resource_type and resource_id must be given together",
                "missing",
            )
        )
    context = event.context
    if context is not None and context.ip_address is not None:
        try:
            context.ip_address = str(ip_address(context.ip_address))
        except ValueError:
            problems.append(
                _problem(
                    ["context", "ip_address"], "must be an IPv4 or IPv6 address", "value_error"
                )
            )


def check_event(event: EventIn, limits: Limits) -> list[Problem]:
    """Every problem of a decoded event; normalises severity and IP address in place."""
    problems: list[Problem] = []
    _check_semantics(event, problems)
    name_cap = limits.max_name_length
    _length(problems, ["id"], event.id, limits.max_id_length)
    _length(problems, ["action"], event.action, limits.max_action_length)
    _length(problems, ["message"], event.message, limits.max_message_length)
    actor = event.actor
    _length(problems, ["actor", "id"], actor.id, name_cap)
    _length(problems, ["actor", "name"], actor.name, name_cap)
    _length(problems, ["actor", "email"], actor.email, name_cap)
    if len(event.targets) > limits.max_targets:
        problems.append(_problem(["targets"], f"more than {limits.max_targets} targets"))
    for index, target in enumerate(event.targets[: limits.max_targets]):
        _length(problems, ["targets", index, "type"], target.type, name_cap)
        _length(problems, ["targets", index, "id"], target.id, name_cap)
        _length(problems, ["targets", index, "name"], target.name, name_cap)
    _length(problems, ["resource_type"], event.resource_type, name_cap)
    _length(problems, ["resource_id"], event.resource_id, name_cap)
    _length(problems, ["subject_id"], event.subject_id, name_cap)
    context = event.context
    if context is not None:
        _length(problems, ["context", "request_id"], context.request_id, name_cap)
        _length(problems, ["context", "session_id"], context.session_id, name_cap)
        _length(problems, ["context", "location"], context.location, name_cap)
        _length(problems, ["context", "user_agent"], context.user_agent, 1024)
    _free_json(problems, ["metadata"], event.metadata, limits.max_metadata_bytes, limits)
    if event.changes is not None:
        changes = {"before": event.changes.before, "after": event.changes.after}
        _free_json(problems, ["changes"], changes, limits.max_changes_bytes, limits)
    return problems
