"""The canonical event schema, as accepted on ingest (JSON Schema in the OpenAPI doc).

Static limits here are absolute caps that keep parsing bounded; the configurable limits
of docs/configuration.md are enforced after parsing by ``events.limits``.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from trailkeep.kit.text import check_text

SEVERITIES = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
SEVERITY_ALIASES = {"LOW": "INFO", "MEDIUM": "WARNING", "HIGH": "ERROR"}
ACTOR_TYPES = ("user", "service", "system", "api_key", "anonymous")


ID_PATTERN = r"^[A-Za-z0-9._:~@+=-]+$"
ACTION_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


def normalize_severity(value: Any) -> Any:
    if isinstance(value, str):
        upper = value.strip().upper()
        return SEVERITY_ALIASES.get(upper, upper)
    return value


def check_ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


Text = Annotated[str, AfterValidator(check_text)]
ShortText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(check_text)]
Severity = Annotated[
    Literal["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(normalize_severity),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1_000_000)


class ActorIn(_Strict):
    id: ShortText | None = Field(None, description="Required unless type is anonymous")
    type: Literal["user", "service", "system", "api_key", "anonymous"] = "user"
    name: ShortText | None = None
    email: ShortText | None = None

    @model_validator(mode="after")
    def _id_required(self) -> ActorIn:
        if self.id is None and self.type != "anonymous":
            raise ValueError("actor.id is required unless actor.type is 'anonymous'")
        return self


class TargetIn(_Strict):
    type: ShortText
    id: ShortText
    name: ShortText | None = None


class ContextIn(_Strict):
    ip_address: Annotated[str, Field(max_length=64), AfterValidator(check_ip)] | None = None
    user_agent: Annotated[Text, Field(max_length=1024)] | None = None
    request_id: ShortText | None = None
    session_id: ShortText | None = None
    location: ShortText | None = None


class ChangesIn(_Strict):
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class EventIn(_Strict):
    """One audit event as sent by a client."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "evt-2026-0001",
                    "action": "document.update",
                    "actor": {"id": "u_42", "type": "user", "name": "Ada"},
                    "targets": [{"type": "document", "id": "doc_7", "name": "Q3 plan"}],
                    "outcome": "success",
                    "severity": "INFO",
                    "message": "Ada renamed the document",
                    "context": {"ip_address": "203.0.113.9", "request_id": "req-1"},
                    "changes": {"before": {"title": "Q3"}, "after": {"title": "Q3 plan"}},
                    "metadata": {"plan": "enterprise"},
                }
            ]
        },
    )

    id: Annotated[str, Field(min_length=1, max_length=512, pattern=ID_PATTERN)] | None = Field(
        None, description="Idempotency key; a UUIDv7 is assigned when absent"
    )
    tenant_id: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Taken from the credential; only platform admins may name a tenant"
    )
    occurred_at: AwareDatetime | None = Field(
        None, description="RFC 3339 with a UTC offset; defaults to the time of receipt"
    )
    action: Annotated[str, Field(min_length=1, max_length=512, pattern=ACTION_PATTERN)]
    actor: ActorIn
    targets: Annotated[list[TargetIn], Field(max_length=1000)] = Field(default_factory=list)
    resource_type: ShortText | None = Field(None, description="Legacy shape: one target's type")
    resource_id: ShortText | None = Field(None, description="Legacy shape: one target's id")
    outcome: Literal["success", "failure"] = "success"
    severity: Severity = "INFO"
    message: Annotated[Text, Field(max_length=1_000_000)] | None = None
    context: ContextIn | None = None
    changes: ChangesIn | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _legacy_resource(self) -> EventIn:
        if (self.resource_type is None) != (self.resource_id is None):
            raise ValueError("resource_type and resource_id must be given together")
        return self


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1)
