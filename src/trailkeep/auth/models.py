"""API shapes of API keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trailkeep.auth.principal import Role
from trailkeep.kit.text import check_text


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "writer", "name": "backend"}]}
    )
    role: Role = Field(description="tenant_admin, writer, reader or auditor")
    name: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)] = (
        "unnamed"
    )


_KEY_EXAMPLE: dict[str, Any] = {
    "id": "3f9c2a7d1e5b8c04",
    "tenant_id": "acme",
    "role": "writer",
    "name": "backend",
    "created_at": "2026-11-02T09:30:00.000000Z",
    "revoked_at": None,
    "last_used_at": "2026-11-02T10:01:12.000000Z",
}


class KeyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})
    id: str
    tenant_id: str | None
    role: str
    name: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


class KeyCreated(KeyOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_KEY_EXAMPLE,
                    "last_used_at": None,
                    "token": "tk_3f9c2a7d1e5b8c04_<43 characters shown once>",
                }
            ]
        }
    )
    token: str = Field(description="The secret; shown only in this response")


class KeyList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"data": [_KEY_EXAMPLE]}]})
    data: list[KeyOut]
