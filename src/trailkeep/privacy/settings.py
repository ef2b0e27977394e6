"""A tenant's privacy settings: their API shape, their defaults, their compiled form.

Set with ``PATCH /v1/tenants/{id}`` as ``{"privacy": {...}}``; each member left out
keeps its current value, and a tenant that never set one has the defaults:

- ``redaction``: rules applied at ingest, before hashing (privacy/rules.py); default
  :data:`DEFAULT_RULES` (payment cards masked, bearer tokens, JWTs, API keys and AWS
  keys dropped);
- ``encrypt``: field paths stored as ciphertext under the data subject's key; default
  :data:`DEFAULT_ENCRYPTED`;
- ``reveal_to``: the roles that read those fields decrypted; every other role reads
  them masked (``a***@example.com``, ``203.0.113.x``). Platform admins always may.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from trailkeep.privacy.rules import (
    DEFAULT_RULES,
    CompiledRules,
    RedactionRule,
    RuleError,
    compile_rules,
)

DEFAULT_ENCRYPTED = ("actor.name", "actor.email", "context.ip_address", "context.user_agent")
DEFAULT_REVEAL_TO = ("tenant_admin", "auditor")
MAX_ENCRYPTED_PATHS = 32
RevealRole = Literal["tenant_admin", "auditor", "reader", "writer"]

# Fields that may be encrypted: personal data, never what the log is indexed by (action,
# actor id and type, target type and id, times, severity, outcome).
_ENCRYPTABLE = re.compile(
    r"(actor\.(name|email)|targets\.name|context\.(ip_address|user_agent|location|session_id)"
    r"|(metadata|changes\.before|changes\.after)(\.[A-Za-z0-9_-]{1,64}){1,8})"
)


def _check_path(path: str) -> str:
    if not _ENCRYPTABLE.fullmatch(path):
        raise ValueError(
            f"{path[:80]!r} cannot be encrypted: name actor.name, actor.email, targets.name,"
            " context.ip_address|user_agent|location|session_id, or a dotted path under"
            " metadata, changes.before or changes.after"
        )
    return path


EncryptPath = Annotated[str, Field(max_length=600), AfterValidator(_check_path)]


class PrivacySettings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "redaction": [
                        {"detector": "card", "action": "mask"},
                        {"path": "changes.after.password", "action": "drop"},
                        {"detector": "email", "action": "hmac"},
                    ],
                    "encrypt": ["actor.name", "actor.email", "context.ip_address"],
                    "reveal_to": ["tenant_admin", "auditor"],
                }
            ]
        },
    )
    redaction: list[RedactionRule] | None = None
    encrypt: list[EncryptPath] | None = Field(None, max_length=MAX_ENCRYPTED_PATHS)
    reveal_to: list[RevealRole] | None = None

    @field_validator("redaction")
    @classmethod
    def _rules_compile(cls, rules: list[RedactionRule] | None) -> list[RedactionRule] | None:
        if rules is not None:
            try:
                compile_rules(rules)
            except RuleError as exc:
                where = "" if exc.index is None else f"rule {exc.index}: "
                raise ValueError(f"{where}{exc}") from None
        return rules


@dataclass(frozen=True, slots=True)
class Policy:
    """A tenant's effective settings, compiled once (cached by privacy/service.py)."""

    rules: CompiledRules
    encrypt: tuple[tuple[str, ...], ...]  # each path as its segments
    encrypt_names: tuple[str, ...]  # the same, dotted
    reveal_to: frozenset[str]
    shown: dict[str, Any]  # the effective settings as the API shows them


def merged(stored: dict[str, Any] | None, change: PrivacySettings) -> dict[str, Any]:
    """The stored settings with the members ``change`` names replaced."""
    result = dict(stored or {})
    result.update(change.model_dump(mode="json", exclude_unset=True, exclude_none=False))
    return {k: v for k, v in result.items() if v is not None}


def effective(stored: dict[str, Any] | None) -> dict[str, Any]:
    settings = PrivacySettings.model_validate(stored or {})
    rules = DEFAULT_RULES if settings.redaction is None else tuple(settings.redaction)
    return {
        "redaction": [r.model_dump(mode="json", exclude_none=True) for r in rules],
        "encrypt": list(DEFAULT_ENCRYPTED if settings.encrypt is None else settings.encrypt),
        "reveal_to": list(DEFAULT_REVEAL_TO if settings.reveal_to is None else settings.reveal_to),
    }


def compile_policy(stored: dict[str, Any] | None) -> Policy:
    shown = effective(stored)
    rules = compile_rules([RedactionRule.model_validate(r) for r in shown["redaction"]])
    paths = tuple(dict.fromkeys(tuple(p.split(".")) for p in shown["encrypt"]))
    names = tuple(".".join(p) for p in paths)
    return Policy(rules, paths, names, frozenset(shown["reveal_to"]), shown)
