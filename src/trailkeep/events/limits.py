"""Configurable limits, checked after the schema has parsed an event.

Each violation is reported as ``{"loc": [...], "msg": ..., "type": ...}`` naming the
field, the same shape as schema errors, so clients see one error format.
"""

from __future__ import annotations

import math
from typing import Any

from trailkeep.config import Limits
from trailkeep.events.schema import EventIn
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
        elif isinstance(value, float) and not math.isfinite(value):
            self.problems.append(
                _problem(
                    self.loc + path, "numbers must be finite (no NaN or Infinity)", "value_error"
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
    if value is not None and len(value) > cap:
        problems.append(_problem(loc, f"longer than {cap} characters"))


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


def check_limits(event: EventIn, limits: Limits) -> list[Problem]:
    problems: list[Problem] = []
    name_cap = limits.max_name_length
    _length(problems, ["id"], event.id, limits.max_id_length)
    _length(problems, ["action"], event.action, limits.max_action_length)
    _length(problems, ["message"], event.message, limits.max_message_length)
    actor = event.actor
    for field in ("id", "name", "email"):
        _length(problems, ["actor", field], getattr(actor, field), name_cap)
    if len(event.targets) > limits.max_targets:
        problems.append(_problem(["targets"], f"more than {limits.max_targets} targets"))
    for index, target in enumerate(event.targets[: limits.max_targets]):
        for field in ("type", "id", "name"):
            _length(problems, ["targets", index, field], getattr(target, field), name_cap)
    _length(problems, ["resource_type"], event.resource_type, name_cap)
    _length(problems, ["resource_id"], event.resource_id, name_cap)
    if event.context is not None:
        for field in ("request_id", "session_id", "location"):
            _length(problems, ["context", field], getattr(event.context, field), name_cap)
    _free_json(problems, ["metadata"], event.metadata, limits.max_metadata_bytes, limits)
    if event.changes is not None:
        changes = {"before": event.changes.before, "after": event.changes.after}
        _free_json(problems, ["changes"], changes, limits.max_changes_bytes, limits)
    return problems
