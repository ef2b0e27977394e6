"""Which rule of a retention policy governs an event, and when it is due."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.retention.policy import DAY_US, RetentionPolicy, effective_policy, schedule

NOW = 1_800_000_000_000_000
DEBUG, INFO, CRITICAL = SEVERITY_RANK["DEBUG"], SEVERITY_RANK["INFO"], SEVERITY_RANK["CRITICAL"]


def _policy() -> RetentionPolicy:
    return RetentionPolicy(
        default_days=365,
        by_severity={"debug": 7, "CRITICAL": 2555},
        by_action={"auth.*": 30, "auth.sso.*": 60, "auth.sso.login": 90},
    )


@pytest.mark.parametrize(
    ("action", "severity", "rule", "days"),
    [
        ("doc.update", INFO, "default", 365),
        ("doc.update", DEBUG, "severity:DEBUG", 7),
        ("doc.update", CRITICAL, "severity:CRITICAL", 2555),
        ("auth.login", DEBUG, "action:auth.*", 30),  # an action rule beats severity
        ("auth.sso.logout", INFO, "action:auth.sso.*", 60),  # the longest prefix wins
        ("auth.sso.login", INFO, "action:auth.sso.login", 90),  # exact beats prefixes
        ("authx.login", INFO, "default", 365),  # a prefix is a whole segment
        ("auth", INFO, "default", 365),
    ],
)
def test_the_most_specific_rule_governs(action: str, severity: int, rule: str, days: int) -> None:
    found = schedule(_policy(), NOW).rule_for(action, severity)
    assert found is not None and (found.name, found.days) == (rule, days)


def test_due_means_older_than_the_rule() -> None:
    sched = schedule(_policy(), NOW)
    assert sched.due("doc.update", DEBUG, NOW - 7 * DAY_US - 1) is not None
    assert sched.due("doc.update", DEBUG, NOW - 7 * DAY_US) is None
    assert sched.due("doc.update", INFO, NOW - 364 * DAY_US) is None


def test_no_rule_keeps_forever() -> None:
    sched = schedule(RetentionPolicy(by_severity={"DEBUG": 1}), NOW)
    assert sched.rule_for("doc.update", INFO) is None
    assert sched.due("doc.update", INFO, 0) is None
    assert not schedule(RetentionPolicy(), NOW).deletes_anything


def test_the_older_retention_days_is_the_default() -> None:
    assert effective_policy(None, 30).default_days == 30
    assert effective_policy(None, None).default_days is None
    assert effective_policy({"default_days": 5, "archive": False}, 30).archive is False


@pytest.mark.parametrize(
    "bad",
    [
        {"default_days": 0},
        {"default_days": -3},
        {"default_days": 36_501},
        {"by_severity": {"LOUD": 1}},
        {"by_action": {"a b": 1}},
        {"by_action": {"*": 1}},
        {"by_action": {f"a{i}": 1 for i in range(101)}},
        {"unknown": 1},
    ],
)
def test_nonsense_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetentionPolicy.model_validate(bad)
