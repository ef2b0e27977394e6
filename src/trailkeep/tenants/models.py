"""API shapes of tenants."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trailkeep.kit.text import check_text
from trailkeep.privacy.settings import PrivacySettings
from trailkeep.retention.policy import LegalHoldIn, RetentionPolicy

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, description="lowercase slug")]
DisplayName = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)]
RetentionDays = Annotated[int, Field(ge=1, le=36_500)]


class TenantCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "acme", "display_name": "Acme Corp"}]},
    )
    id: TenantId
    display_name: DisplayName | None = None
    # retention_days is the older alias of retention.default_days.
    retention_days: RetentionDays | None = None
    retention: RetentionPolicy | None = None
    # A bare boolean is the older alias of {"on": ..., "reason": null}.
    legal_hold: bool | LegalHoldIn = False
    privacy: PrivacySettings | None = None


class TenantUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"retention_days": 365, "legal_hold": True}]},
    )
    display_name: DisplayName | None = None
    retention_days: RetentionDays | None = None
    # The whole policy: it replaces the current one (docs/retention.md).
    retention: RetentionPolicy | None = None
    legal_hold: bool | LegalHoldIn | None = None
    # Members given replace the current ones; the others stay (docs/privacy.md).
    privacy: PrivacySettings | None = None


_TENANT_EXAMPLE: dict[str, Any] = {
    "id": "acme",
    "display_name": "Acme Corp",
    "retention_days": 365,
    "retention": {
        "default_days": 365,
        "by_severity": {"DEBUG": 7},
        "by_action": {},
        "archive": True,
    },
    "legal_hold": False,
    "legal_hold_info": None,
    "privacy": {
        "redaction": [{"detector": "card", "action": "mask"}],
        "encrypt": ["actor.name", "actor.email", "context.ip_address", "context.user_agent"],
        "reveal_to": ["tenant_admin", "auditor"],
    },
    "created_at": "2026-11-02T09:30:00.000000Z",
    "updated_at": "2026-11-02T09:30:00.000000Z",
}


class TenantOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TENANT_EXAMPLE]})
    id: str
    display_name: str
    retention_days: int | None
    retention: dict[str, Any]  # the effective policy (docs/retention.md)
    legal_hold: bool
    legal_hold_info: dict[str, Any] | None  # reason, set_by, set_at of the current hold
    privacy: dict[str, Any]  # the effective settings, defaults filled in
    created_at: str
    updated_at: str


class TenantList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [_TENANT_EXAMPLE], "next_cursor": None}]}
    )
    data: list[TenantOut]
    next_cursor: str | None
