"""Redaction rules (privacy/rules.py) and detectors (privacy/detectors.py): pure, no server.

Each detector is checked on realistic positives and on lookalikes it must leave alone;
the rule engine on paths (wildcards, lists, protected fields), all three actions, the
errors of unusable rule sets, RE2's linear time, and by Hypothesis on arbitrary JSON.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import time
from typing import Any

import pytest
import re2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from trailkeep.privacy.detectors import DETECTORS, iban_valid, luhn_valid
from trailkeep.privacy.rules import (
    DEFAULT_RULES,
    MAX_RULES,
    RedactionRule,
    RuleError,
    compile_rules,
)

KEY = b"k" * 32
HMAC = re.compile(r"hmac:[0-9a-f]{32}")


def _event(**members: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "0190f1c2-7a3b-7c4d-8e5f-6a7b8c9d0e1f",
        "tenant_id": "acme",
        "occurred_at": "2024-05-01T10:00:00.000000Z",
        "received_at": "2024-05-01T10:00:00.120000Z",
        "action": "billing.plan.changed",
        "actor": {"id": "user_8f3a", "type": "user", "name": "Alice", "email": "a@example.com"},
        "targets": [{"type": "workspace", "id": "ws_42", "name": "Acme"}],
        "outcome": "success",
        "severity": "INFO",
    }
    doc.update(members)
    return doc


def _redact(rules: list[RedactionRule], doc: dict[str, Any], key: bytes = KEY) -> list[str]:
    return compile_rules(rules).apply(doc, key)


def _scan_text(detector: str, text: str, action: str = "drop") -> str:
    """``text`` as the message after one detector rule."""
    doc = _event(message=text)
    _redact([RedactionRule.model_validate({"detector": detector, "action": action})], doc)
    return str(doc["message"])


def _luhn_complete(body: str) -> str:
    """``body`` + the check digit that makes it pass Luhn (computed independently)."""
    for check in "0123456789":
        digits = [int(c) for c in body + check][::-1]
        total = sum(
            d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)
        )
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


# -- detectors: positives ----------------------------------------------------------------
POSITIVES = {
    "email": [
        "alice@example.com",
        "first.last+billing@mail.example.co.uk",
        "ops_team-42@acme-corp.io",
    ],
    "card": [
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782-822463-10005",  # Amex, 15 digits in 4-6-5
        "6011111111111117",
        "4222222222222",  # 13 digits
        _luhn_complete("622202000000000000"),  # 19 digits
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "NO9386011117947",  # the shortest: 15 characters
    ],
    "bearer": [
        "abcdef0123456789abcdef",
        "mF_9.B5f-4.1JqM+/abcdefgh==",
    ],
    "jwt": [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
        "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyXzQyIn0.",  # unsigned: empty third segment
    ],
    "api_key": [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_test_51H8abcdefghijklmnop",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefghij",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    ],
    "aws": ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"],
    "phone": ["+44 20 7946 0958", "+1 (415) 555-2671", "+4915112345678", "+33-1-23-45-67-89"],
}


@pytest.mark.parametrize(
    ("detector", "secret"), [(d, s) for d, items in POSITIVES.items() for s in items]
)
def test_detector_finds_its_positives(detector: str, secret: str) -> None:
    prefix = "Authorization: Bearer " if detector == "bearer" else "see "
    text = f"{prefix}{secret}, thanks"
    out = _scan_text(detector, text)
    assert secret not in out
    assert out == f"{prefix}[redacted], thanks"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2hunter2", "password=[redacted]"),
        ('api_key: "abcd1234efgh5678"', 'api_key: "[redacted]"'),
        ('{"secret": "s3cr3t-v4lue"}', '{"secret": "[redacted]"}'),
        ('{\\"client_secret\\":\\"s3cr3t-v4lue\\"}', '{\\"client_secret\\":\\"[redacted]\\"}'),
        ("APIKEY = ZXhhbXBsZWtleQ", "APIKEY = [redacted]"),
        ("db_passwd:longenough1", "db_passwd:[redacted]"),
    ],
)
def test_api_key_assignments_redact_the_value(text: str, expected: str) -> None:
    assert _scan_text("api_key", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
)
def test_aws_secret_access_key_value(text: str) -> None:
    out = _scan_text("aws", text)
    assert "wJalrXUtnFEMI" not in out
    assert out.endswith("[redacted]" + ('"' if text.endswith('"') else ""))


def test_bearer_keeps_the_scheme_word_and_any_case() -> None:
    out = _scan_text("bearer", "header: bearer abcdef0123456789abcdef")
    assert out == "header: bearer [redacted]"


def test_card_windows_in_grouped_runs() -> None:
    assert _scan_text("card", "4111 1111 1111 1111 2 items") == "[redacted] 2 items"
    two = "4111 1111 1111 1111 5555 5555 5555 4444"
    assert _scan_text("card", two) == "[redacted] [redacted]"
    assert _scan_text("card", "ref 5-4111111111111111") == "ref 5-[redacted]"
    assert _scan_text("card", "1 2 3 4111 1111 1111 1111 5 6") == "1 2 3 [redacted] 5 6"


# -- detectors: lookalike negatives --------------------------------------------------------
NEGATIVES = {
    "email": ["user@localhost", "@mention me", "pkg@1.2.3", "see you at 10@home"],
    "card": [
        "4111111111111112",  # fails Luhn
        "order 100045879631",  # 12 digits
        "9" + "4111111111111111" + "9" * 3,  # a valid card inside a longer digit run
        "tx a41111111111111111b",  # glued to letters, as in hex ids
        "550e8400-e29b-41d4-a716-446655440000",
        "2024-01-15 10:30:00",
        "v10.2.3 build 20240115",
        "203.0.113.7",
    ],
    "iban": [
        "DE88 3704 0044 0532 0130 00",  # bad check digits
        "GB82WEST12345698765433",
        "AB12",
        "SKU12ABCDEFGHIJK",
    ],
    "bearer": ["Bearer short", "the bearer of bad news", "Bearer <token>"],
    "jwt": ["eyJhbGciOi.x.y", "file.name.ext", "eyJ0eXAi"],
    "api_key": [
        "password: changed",
        "Password reset requested",
        "sk_live_short",
        "skills_test_results_2024",
        "secretary: Jane Smith-Jones",
    ],
    "aws": ["AKIA1234", "AKIAIOSFODNN7EXAMPLEXX", "akiaiosfodnn7example"],
    "phone": [
        "555-2671",
        "4155552671",
        "+12",
        "2024-01-15T10:00:00+01:00",
        "x+4915112345678",
        "C++ 11",
    ],
}
SENTENCE = "Alice changed the plan of workspace Acme from team to pro on 2024-05-01 (v2.3.1)."


@pytest.mark.parametrize(
    ("detector", "text"),
    [(d, t) for d, items in NEGATIVES.items() for t in [*items, SENTENCE]],
)
def test_detector_leaves_lookalikes_alone(detector: str, text: str) -> None:
    assert _scan_text(detector, text) == text


def test_the_card_negatives_are_real_lookalikes() -> None:
    assert not luhn_valid("4111111111111112")
    run = "9" + "4111111111111111" + "999"
    assert luhn_valid(run[1:17]) and not luhn_valid(run)
    assert not iban_valid("DE88370400440532013000")
    assert iban_valid("DE89370400440532013000")


def test_detector_patterns_declare_their_secret_group() -> None:
    for detector in DETECTORS.values():
        assert re2.compile(detector.pattern).groups == int(detector.secret_group), detector.name
        # No detector may match a newline (the separator of joined strings): \s only negated.
        assert "\n" not in detector.pattern
        assert detector.pattern.count("\\s") == detector.pattern.count("[^\\s")


# -- detector actions ----------------------------------------------------------------------
def test_detector_actions() -> None:
    text = "paid with 4111-1111-1111-1111 today"
    assert _scan_text("card", text, "drop") == "paid with [redacted] today"
    assert _scan_text("card", text, "mask") == "paid with ****1111 today"
    hashed = _scan_text("card", text, "hmac")
    assert HMAC.fullmatch(hashed.split()[2]) and "4111" not in hashed
    # The card's digits are what is hashed: written two ways, one hmac.
    assert _scan_text("card", "paid with 4111111111111111 today", "hmac") == hashed
    assert _scan_text("email", "mail bob@example.org now", "mask") == "mail ****.org now"
    assert _scan_text("api_key", "secret=abcdefghi", "mask") == "secret=****fghi"
    assert _scan_text("api_key", "secret=abcdefgh", "mask") == "secret=****"  # 8: no tail


def test_non_ascii_text_keeps_its_offsets() -> None:
    doc = _event(message="Café ☕ — carte 4111 1111 1111 1111 über alles", metadata={"n": "ß"})
    assert _redact([RedactionRule(detector="card", action="mask")], doc) == ["message"]
    assert doc["message"] == "Café ☕ — carte ****1111 über alles"


# -- field rules ---------------------------------------------------------------------------
def test_field_actions_on_strings_and_other_values() -> None:
    doc = _event(metadata={"card": "4111111111111111", "pin": "1234", "n": 42, "obj": {"a": 1}})
    rules = [
        RedactionRule(path="metadata.card", action="mask"),
        RedactionRule(path="metadata.pin", action="mask"),
        RedactionRule(path="metadata.n", action="hmac"),
        RedactionRule(path="metadata.obj", action="drop"),
    ]
    changed = _redact(rules, doc)
    assert changed == ["metadata.card", "metadata.n", "metadata.obj", "metadata.pin"]
    assert doc["metadata"]["card"] == "****1111"
    assert doc["metadata"]["pin"] == "****"
    assert HMAC.fullmatch(doc["metadata"]["n"])
    assert "obj" not in doc["metadata"]
    doc = _event(metadata={"list": [1, 2], "flag": True})
    _redact([RedactionRule(path="metadata.*", action="mask")], doc)
    assert doc["metadata"] == {"list": "****", "flag": "****"}


def test_hmac_is_keyed_and_stable() -> None:
    def hashed(value: Any, key: bytes) -> str:
        doc = _event(metadata={"v": copy.deepcopy(value)})
        _redact([RedactionRule(path="metadata.v", action="hmac")], doc, key)
        return str(doc["metadata"]["v"])

    for value in ("alice@example.com", 12345, {"b": 1, "a": [True, None]}):
        assert hashed(value, b"one") == hashed(value, b"one")
        assert hashed(value, b"one") != hashed(value, b"two")
    assert hashed({"a": 1, "b": 2}, b"one") == hashed({"b": 2, "a": 1}, b"one")
    # The spec's formula, computed here independently: HMAC-SHA256 of the UTF-8 bytes.
    expected = hmac.new(b"one", "café".encode(), hashlib.sha256).hexdigest()[:32]
    assert hashed("café", b"one") == "hmac:" + expected
    text = "mail bob@example.org"
    assert _scan_text("email", text, "hmac") == _scan_text("email", text, "hmac")


def test_wildcards_and_lists() -> None:
    doc = _event(
        targets=[
            {"type": "user", "id": "u1", "name": "Bob"},
            {"type": "doc", "id": "d1"},
            {"type": "user", "id": "u2", "name": "Eve"},
        ],
        changes={"before": {"password": "old-secret"}, "after": {"password": "new-secret"}},
        metadata={
            "items": [{"secret": "a1"}, {"other": 1}, {"secret": "c3"}, [{"secret": "d4"}]],
            "svc": {"token": "t1", "x": 2},
            "db": {"token": "t2"},
        },
    )
    rules = [
        RedactionRule(path="targets.name", action="drop"),
        RedactionRule(path="changes.*.password", action="drop"),
        RedactionRule(path="metadata.items.secret", action="mask"),
        RedactionRule(path="metadata.*.token", action="drop"),
    ]
    assert _redact(rules, doc) == [
        "changes.after.password",
        "changes.before.password",
        "metadata.db.token",
        "metadata.items.0.secret",
        "metadata.items.2.secret",
        "metadata.items.3.0.secret",
        "metadata.svc.token",
        "targets.0.name",
        "targets.2.name",
    ]
    assert doc["targets"] == [
        {"type": "user", "id": "u1"},
        {"type": "doc", "id": "d1"},
        {"type": "user", "id": "u2"},
    ]
    assert doc["changes"] == {"before": {}, "after": {}}
    assert doc["metadata"]["items"] == [
        {"secret": "****"},
        {"other": 1},
        {"secret": "****"},
        [{"secret": "****"}],
    ]
    assert doc["metadata"]["svc"] == {"x": 2} and doc["metadata"]["db"] == {}


def test_actor_and_target_wildcards_keep_id_and_type() -> None:
    doc = _event()
    changed = _redact(
        [
            RedactionRule(path="actor.*", action="drop"),
            RedactionRule(path="targets.*", action="drop"),
        ],
        doc,
    )
    assert changed == ["actor.email", "actor.name", "targets.0.name"]
    assert doc["actor"] == {"id": "user_8f3a", "type": "user"}
    assert doc["targets"] == [{"type": "workspace", "id": "ws_42"}]


def test_context_and_message_paths() -> None:
    doc = _event(
        message="hello there",
        context={"user_agent": "Mozilla/5.0 (X11)", "ip_address": "203.0.113.7"},
    )
    rules = [
        RedactionRule(path="context.user_agent", action="mask"),
        RedactionRule(path="message", action="drop"),
        RedactionRule(path="metadata.absent", action="drop"),
    ]
    assert _redact(rules, doc) == ["context.user_agent", "message"]
    assert doc["context"] == {"user_agent": "****X11)", "ip_address": "203.0.113.7"}
    assert "message" not in doc


def test_field_rules_run_before_detectors() -> None:
    doc = _event(metadata={"card": "4111111111111111", "note": "card 4111111111111111"})
    rules = [
        RedactionRule(detector="card", action="hmac"),
        RedactionRule(path="metadata.card", action="drop"),
    ]
    assert _redact(rules, doc) == ["metadata.card", "metadata.note"]
    assert "card" not in doc["metadata"] and HMAC.search(doc["metadata"]["note"])


def test_returned_paths_never_hold_values() -> None:
    secrets = ["4111111111111111", "AKIAIOSFODNN7EXAMPLE", "hunter2hunter2", "bob@example.org"]
    doc = _event(
        message=f"card {secrets[0]}",
        context={"request_id": secrets[1]},
        changes={"after": {"password": secrets[2]}},
        metadata={"contact": [secrets[3]], secrets[2]: "x"},
    )
    rules = [*DEFAULT_RULES, RedactionRule(detector="email", action="hmac")]
    rules.append(RedactionRule(path="changes.after.password", action="hmac"))
    changed = _redact(rules, doc)
    assert changed == [
        "actor.email",
        "changes.after.password",
        "context.request_id",
        "message",
        "metadata.contact.0",
    ]
    for path in changed:
        assert not any(secret in path for secret in secrets)
    assert not any(secret in str(doc).replace("'hunter2hunter2': 'x'", "") for secret in secrets)


def test_unscanned_fields_are_left_alone() -> None:
    card = "4111111111111111"
    doc = _event(action="card." + card, outcome="success", severity="INFO")
    doc["actor"]["id"] = card
    doc["targets"][0]["id"] = card
    doc["id"] = card
    before = copy.deepcopy(doc)
    assert _redact([RedactionRule(detector="card", action="drop")], doc) == []
    assert doc == before


# -- defaults ------------------------------------------------------------------------------
JWT = POSITIVES["jwt"][0]


@pytest.mark.parametrize(
    ("secret", "left"),
    [
        ("4111 1111 1111 1111", "****1111"),
        (JWT, "[redacted]"),
        ("Bearer abcdef0123456789abcdef", "Bearer [redacted]"),
        ("AKIAIOSFODNN7EXAMPLE", "[redacted]"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[redacted]"),
    ],
)
def test_defaults_redact_secrets_anywhere(secret: str, left: str) -> None:
    doc = _event(
        message=f"m {secret}",
        context={"user_agent": f"c {secret}", "session_id": secret},
        changes={"before": {"a": f"b {secret}"}, "after": {"list": ["x", f"a {secret}"]}},
        metadata={"deep": {"er": [{"v": f"d {secret}"}]}},
    )
    changed = compile_rules(DEFAULT_RULES).apply(doc, KEY)
    assert changed == [
        "changes.after.list.1",
        "changes.before.a",
        "context.session_id",
        "context.user_agent",
        "message",
        "metadata.deep.er.0.v",
    ]
    assert secret not in str(doc)
    assert doc["message"] == f"m {left}" and doc["metadata"]["deep"]["er"][0]["v"] == f"d {left}"


def test_defaults_leave_personal_data_and_ordinary_events() -> None:
    doc = _event(
        message="Alice (alice@example.com, +44 20 7946 0958) paid from DE89 3704 0044 0532 0130 00",
        context={"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0 (Macintosh) Chrome/124.0"},
        metadata={"invoice": "INV-2024-000123", "quoted": 'say "hi"\tthere\\', "n": 2**70},
    )
    before = copy.deepcopy(doc)
    assert compile_rules(DEFAULT_RULES).apply(doc, KEY) == []
    assert doc == before
    assert {r.detector for r in DEFAULT_RULES} == {"card", "bearer", "jwt", "api_key", "aws"}


def test_escaped_text_is_still_scanned() -> None:
    # Quotes, tabs and backslashes take the JSON fast path off; the full scan still runs.
    doc = _event(message='password:\t"hunter2hunter2" \\ done')
    assert compile_rules(DEFAULT_RULES).apply(doc, KEY) == ["message"]
    assert doc["message"] == 'password:\t"[redacted]" \\ done'


# -- custom patterns -----------------------------------------------------------------------
def test_custom_patterns_joined_and_per_string() -> None:
    doc = _event(
        message="employee EMP-123456 left",
        actor={"id": "u1", "type": "user", "name": "EMP-654321"},
        metadata={"a": "secret", "b": "no secret here", "c": "x=1&token=abc&y=2"},
    )
    rules = [
        RedactionRule(pattern=r"EMP-[0-9]{6}", action="mask"),
        RedactionRule(pattern=r"^secret$", action="drop"),  # needs real string bounds
        RedactionRule(pattern=r"token=[^&]+", action="drop"),  # [^...] is not an anchor
    ]
    assert _redact(rules, doc) == ["actor.name", "message", "metadata.a", "metadata.c"]
    assert doc["message"] == "employee ****3456 left"
    assert doc["actor"]["name"] == "****4321"
    assert doc["metadata"] == {"a": "[redacted]", "b": "no secret here", "c": "x=1&[redacted]&y=2"}


def test_a_pattern_crossing_strings_falls_back_to_each_string() -> None:
    doc = _event(message="alpha", metadata={"x": "beta gamma", "y": "alpha beta"})
    assert _redact([RedactionRule(pattern=r"alpha\s+beta", action="drop")], doc) == ["metadata.y"]
    assert doc["message"] == "alpha" and doc["metadata"] == {"x": "beta gamma", "y": "[redacted]"}


def test_pathological_pattern_runs_in_linear_time() -> None:
    rules = compile_rules([RedactionRule(pattern=r"(a+)+$", action="drop")])
    doc = _event(message="a" * 100_000 + "!", metadata={"s": "a" * 50_000 + "!"})
    started = time.perf_counter()
    assert rules.apply(doc, KEY) == []
    assert time.perf_counter() - started < 0.5
    doc = _event(message="aaaa")
    assert rules.apply(doc, KEY) == ["message"] and doc["message"] == "[redacted]"


@pytest.mark.parametrize(
    "text",
    [
        "7" * 100_000,
        "1 " * 10_000,  # a long grouped run: card windows
        "a@" * 50_000,
        "+1 " * 30_000,
        "eyJ" + "a." * 50_000,
        "password=" * 10_000,
        "DE89 " * 20_000,
    ],
)
def test_detectors_run_in_linear_time(text: str) -> None:
    rules = compile_rules([RedactionRule(detector=d, action="hmac") for d in DETECTORS])
    started = time.perf_counter()
    rules.apply(_event(message=text), KEY)
    assert time.perf_counter() - started < 0.5


# -- rule errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"path": "action", "action": "drop"}, "must start with one of"),
        ({"path": "actor.id", "action": "mask"}, "indexed by"),
        ({"path": "targets.type", "action": "drop"}, "indexed by"),
        ({"path": "actor", "action": "drop"}, "indexed by"),
        ({"path": "tenant_id", "action": "drop"}, "must start with one of"),
        ({"path": "*.name", "action": "drop"}, "must start with one of"),
        ({"path": "metadata..card", "action": "drop"}, "empty segment"),
        ({"path": "", "action": "drop"}, "empty segment"),
        ({"path": "metadata.ca rd", "action": "drop"}, "letters, digits"),
        ({"path": "metadata.a*", "action": "drop"}, "letters, digits"),
        ({"path": "metadata." + "k" * 65, "action": "drop"}, "1-64 letters"),
        ({"path": "metadata" + ".a" * 16, "action": "drop"}, "at most 16"),
        ({"path": "message.x", "action": "drop"}, "no fields"),
        ({"pattern": "(unclosed", "action": "drop"}, "not valid RE2"),
        ({"pattern": "(?<=x)y", "action": "drop"}, "not valid RE2"),  # no look-behind in RE2
        ({"pattern": "", "action": "drop"}, "empty"),
        ({"pattern": "x*", "action": "drop"}, "matches the empty string"),
        ({"pattern": r"\b", "action": "drop"}, "matches the empty string"),
        ({"pattern": "a{1,513}" * 1 + "b" * 510, "action": "drop"}, "at most 512"),
    ],
)
def test_unusable_rules_raise_rule_error(rule: dict[str, str], problem: str) -> None:
    rules = [RedactionRule(detector="card", action="mask"), RedactionRule.model_validate(rule)]
    with pytest.raises(RuleError, match=re.escape(problem)) as caught:
        compile_rules(rules)
    assert caught.value.index == 1
    assert "rule 1" not in str(caught.value)  # the caller prefixes the index (settings.py)
    assert "b'" not in str(caught.value)  # RE2's message decoded, not a bytes repr


@pytest.mark.parametrize(
    "members",
    [
        {"path": "metadata.a", "detector": "card"},
        {"detector": "card", "pattern": "x"},
        {"path": "metadata.a", "pattern": "x"},
        {},
    ],
)
def test_exactly_one_of_path_detector_pattern(members: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of path, detector or pattern"):
        RedactionRule.model_validate({**members, "action": "drop"})
    unchecked = RedactionRule.model_construct(**members, action="drop")
    with pytest.raises(RuleError, match="exactly one of") as caught:
        compile_rules([unchecked])
    assert caught.value.index == 0


def test_model_rejects_unknown_members_and_values() -> None:
    for bad in (
        {"path": "metadata.a", "action": "drop", "extra": 1},
        {"detector": "ssn", "action": "drop"},
        {"path": "metadata.a", "action": "delete"},
    ):
        with pytest.raises(ValidationError):
            RedactionRule.model_validate(bad)


def test_too_many_rules() -> None:
    rule = RedactionRule(path="metadata.a", action="drop")
    compile_rules([rule] * MAX_RULES)
    with pytest.raises(RuleError, match="at most 100") as caught:
        compile_rules([rule] * (MAX_RULES + 1))
    assert caught.value.index is None


def test_default_rules_compile_and_dump_as_the_api_shows_them() -> None:
    compile_rules(DEFAULT_RULES)
    dumped = [r.model_dump(mode="json", exclude_none=True) for r in DEFAULT_RULES]
    assert dumped[0] == {"detector": "card", "action": "mask"}
    assert [RedactionRule.model_validate(d) for d in dumped] == list(DEFAULT_RULES)


# -- properties ----------------------------------------------------------------------------
CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "4222222222222"]
SECRETS = ["Bearer abcdef0123456789abcdef", "AKIAIOSFODNN7EXAMPLE", "password=", JWT]
_FRAGMENTS = st.sampled_from(
    [*CARDS, *SECRETS, "0", "12", " ", "-", "\n", "\t", '"', "\\", "x", "é", "@", "+1", "="]
)
TEXT = st.one_of(st.text(max_size=40), st.lists(_FRAGMENTS, max_size=8).map("".join))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
DOCS = st.builds(
    lambda message, name, target, context, metadata, changes: _event(
        message=message,
        actor={"id": "u1", "type": "user", "name": name},
        targets=[{"type": "t", "id": "t1", "name": target}],
        context={"user_agent": context},
        metadata=metadata,
        changes={"before": changes, "after": {"v": message}},
    ),
    TEXT,
    TEXT,
    TEXT,
    TEXT,
    st.dictionaries(TEXT, JSON, max_size=5),
    st.dictionaries(TEXT, JSON, max_size=3),
)
_EVERYTHING = compile_rules(
    [
        *(
            RedactionRule(detector=d, action=a)
            for d, a in zip(DETECTORS, ["hmac", "mask", "drop"] * 3, strict=False)
        ),
        RedactionRule(path="metadata.*.x", action="hmac"),
        RedactionRule(path="changes.before.*", action="mask"),
        RedactionRule(pattern=r"[0-9]{3}", action="hmac"),
        RedactionRule(pattern=r"^x", action="drop"),
        RedactionRule(pattern=r"a\s+b", action="mask"),
    ]
)
_CARD_DROP = compile_rules([RedactionRule(detector="card", action="drop")])
_DEFAULTS = compile_rules(DEFAULT_RULES)
# The same rules plus a pattern that never matches: no JSON fast path, always the full walk.
_DEFAULTS_WALKED = compile_rules(
    [*DEFAULT_RULES, RedactionRule(pattern="NEVER-7f3a", action="drop")]
)
_BARE_CARD = re.compile(r"(?<![0-9A-Za-z_])[0-9]{13,19}(?![0-9A-Za-z_])")


def _scanned_strings(doc: dict[str, Any]) -> list[str]:
    found = [doc.get("message"), doc["actor"].get("name"), *(t.get("name") for t in doc["targets"])]
    stack: list[Any] = [doc.get("context"), doc.get("changes"), doc.get("metadata")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            found.append(node)
    return [s for s in found if isinstance(s, str)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
@example(_event(message="4111111111111111", metadata={"a": ["x 5555555555554444\n"]}))
def test_properties_on_arbitrary_json(doc: dict[str, Any]) -> None:
    """One generated document serves three properties (generation is the slow part)."""
    everything = copy.deepcopy(doc)
    changed = _EVERYTHING.apply(everything, KEY)
    assert changed == sorted(set(changed))
    structural = ("action", "id", "tenant_id", "occurred_at", "outcome", "severity")
    assert all(everything[name] == doc[name] for name in structural)
    assert everything["actor"]["id"] == doc["actor"]["id"]
    assert everything["targets"][0]["id"] == doc["targets"][0]["id"]
    fast, walked = copy.deepcopy(doc), copy.deepcopy(doc)
    assert _DEFAULTS.apply(fast, KEY) == _DEFAULTS_WALKED.apply(walked, KEY)
    assert fast == walked
    _CARD_DROP.apply(doc, KEY)
    for text in _scanned_strings(doc):
        for run in _BARE_CARD.findall(text):
            assert not luhn_valid(run), (run, text)
