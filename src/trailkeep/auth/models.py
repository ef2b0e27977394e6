"""API shapes of API keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trailkeep.auth.principal import Role
from trailkeep.kit.text import check_text


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "writer", "name": "backend"}]}
    )
    role: Role = Field(description="tenant_admin, writer or reader")
    name: Annotated[str, Field(min_length=1, max_length=256), AfterValidator(check_text)] = (
        "unnamed"
    )


class KeyOut(BaseModel):
    id: str
    tenant_id: str | None
    role: str
    name: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


class KeyCreated(KeyOut):
    token: str = Field(description="The secret; shown only in this response")


class KeyList(BaseModel):
    data: list[KeyOut]
