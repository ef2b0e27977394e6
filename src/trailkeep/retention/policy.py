"""A tenant's retention policy and legal hold: their API shapes and what they decide.

The policy says how many days an event is kept, by the most specific rule that names
it: an action rule (exact action, or a prefix ending in ``.*``), else its severity's
rule, else the default. ``None`` days means "kept forever". Age is measured from the
event's ``occurred_at``. A legal hold keeps everything of the tenant, whatever the
policy says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trailkeep.kit.event_vocabulary import SEVERITY_RANK, canonical_severity

DAY_US = 86_400 * 1_000_000
MAX_DAYS = 36_500  # a hundred years
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, description="days an event is kept")]
_ACTION_RULE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*(\.\*)?$")
MAX_ACTION_RULES = 100


class RetentionPolicy(BaseModel):
    """The ``retention`` member of a tenant (PATCH /v1/tenants/{id})."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "default_days": 365,
                    "by_severity": {"DEBUG": 7, "CRITICAL": 2555},
                    "by_action": {"auth.*": 90},
                    "archive": True,
                }
            ]
        },
    )
    default_days: Days | None = None
    by_severity: dict[str, Days] = Field(default_factory=dict)
    by_action: dict[str, Days] = Field(default_factory=dict)
    archive: bool = True

    @field_validator("by_severity")
    @classmethod
    def _severities(cls, value: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, days in value.items():
            canonical = canonical_severity(name.upper())
            if canonical is None:
                raise ValueError(
                    f"unknown severity {name!r} in by_severity; one of {', '.join(SEVERITY_RANK)}"
                )
            out[canonical] = days
        return out

    @field_validator("by_action")
    @classmethod
    def _actions(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) > MAX_ACTION_RULES:
            raise ValueError(f"at most {MAX_ACTION_RULES} action rules")
        for action in value:
            if len(action) > 128 or not _ACTION_RULE.fullmatch(action):
                raise ValueError(
                    f"action rule {action[:130]!r} is not an action or a prefix ending in '.*'"
                )
        return value


class LegalHoldIn(BaseModel):
    """The ``legal_hold`` member: ``{"on": true, "reason": "…"}`` (or a bare boolean)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"on": True, "reason": "litigation 2026-117"}]},
    )
    on: bool
    reason: str | None = Field(None, min_length=1, max_length=1000)


def stored_policy(policy: RetentionPolicy) -> dict[str, Any]:
    return policy.model_dump()


def effective_policy(stored: dict[str, Any] | None, retention_days: int | None) -> RetentionPolicy:
    """The tenant's policy; a tenant with only the older ``retention_days`` gets it as
    the default, with archive-before-delete on."""
    if stored is None:
        return RetentionPolicy(default_days=retention_days)
    return RetentionPolicy.model_validate(stored)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a policy resolved against a moment: events it governs that occurred
    before ``cutoff`` (µs) are due for deletion."""

    name: str  # "default", "severity:DEBUG", "action:auth.*"
    days: int
    cutoff: int
    severity: int | None = None  # the rank, for severity rules
    action: str | None = None  # exact action, or prefix ending in '.' for 'x.*'


@dataclass(frozen=True, slots=True)
class Schedule:
    """A policy at one moment: action rules first, then severity, then default."""

    actions: tuple[Rule, ...]
    severities: tuple[Rule, ...]
    default: Rule | None

    @property
    def deletes_anything(self) -> bool:
        return bool(self.actions or self.severities or self.default)

    def rule_for(self, action: str, severity: int) -> Rule | None:
        """The rule that governs an event (None: kept forever)."""
        for rule in self.actions:
            assert rule.action is not None
            if action == rule.action or (
                rule.action.endswith(".") and action.startswith(rule.action)
            ):
                return rule
        for rule in self.severities:
            if rule.severity == severity:
                return rule
        return self.default

    def due(self, action: str, severity: int, occurred_at: int) -> Rule | None:
        rule = self.rule_for(action, severity)
        return rule if rule is not None and occurred_at < rule.cutoff else None

    def to_json(self) -> dict[str, Any]:
        rules = [*self.actions, *self.severities, *([self.default] if self.default else [])]
        return {r.name: {"days": r.days, "cutoff_us": r.cutoff} for r in rules}


def schedule(policy: RetentionPolicy, now: int) -> Schedule:
    def rule(name: str, days: int, **kw: Any) -> Rule:
        return Rule(name, days, now - days * DAY_US, **kw)

    # Longest prefix first, so that "auth.sso.*" wins over "auth.*"; exact before prefix.
    ordered = sorted(policy.by_action.items(), key=lambda kv: (kv[0].endswith(".*"), -len(kv[0])))
    actions = tuple(
        rule(f"action:{a}", d, action=a[:-1] if a.endswith(".*") else a) for a, d in ordered
    )
    severities = tuple(
        rule(f"severity:{s}", d, severity=SEVERITY_RANK[s]) for s, d in policy.by_severity.items()
    )
    default = None if policy.default_days is None else rule("default", policy.default_days)
    return Schedule(actions, severities, default)
