"""What an export job is asked to do (the body of ``POST /v1/exports``), and the plan a
job runs from: the request resolved once, when it is accepted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trailkeep.auth.principal import Principal, Role

Format = Literal["jsonl", "csv", "parquet"]


class ExportIn(BaseModel):
    """``POST /v1/exports``. Seqs are half-open: ``from_seq`` inclusive, ``to_seq``
    exclusive; times filter ``occurred_at`` (inclusive, exclusive)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=4096, description="Query language; empty: every event")
    format: Format = "jsonl"
    from_seq: int | None = Field(None, ge=0, description="First seq (default 0)")
    to_seq: int | None = Field(
        None, ge=1, description="One past the last seq (default: the log's size now)"
    )
    from_time: AwareDatetime | None = Field(None, description="occurred_at from (inclusive)")
    to_time: AwareDatetime | None = Field(None, description="occurred_at before (exclusive)")
    destination: Literal["local", "s3"] | None = Field(
        None, description="Where the archive is kept; default: the server's setting"
    )
    compression: Literal["deflate", "none"] = Field(
        "deflate", description="Of the zip archive's text files (Parquet is zstd inside)"
    )
    tenant_id: str | None = Field(None, description="Platform admins only")


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """A job's resolved parameters, stored with it (JSON) so that any worker, in any
    process, after any restart, runs exactly the same export."""

    format: str
    q: str
    from_seq: int
    to_seq: int
    occurred_from: int | None
    occurred_to: int | None
    resolved_at: int  # relative times in ``q`` mean the same on every attempt
    filtered: bool  # a query or a time window: membership proofs, not completeness
    destination: str
    compression: str
    viewer_subject: str
    viewer_tenant: str | None
    viewer_roles: tuple[str, ...]
    viewer_key_id: str | None

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ExportPlan:
        data: dict[str, Any] = orjson.loads(text)
        data["viewer_roles"] = tuple(data["viewer_roles"])
        return cls(**data)

    def viewer(self) -> Principal:
        """Who the export is made for: the masking function shows what they may see."""
        roles = frozenset(Role(r) for r in self.viewer_roles)
        return Principal(self.viewer_subject, self.viewer_tenant, roles, self.viewer_key_id)

    def describe(self) -> dict[str, Any]:
        """The request as the API shows it."""
        return {
            "format": self.format,
            "q": self.q,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "occurred_from": self.occurred_from,
            "occurred_to": self.occurred_to,
            "filtered": self.filtered,
            "destination": self.destination,
            "compression": self.compression,
        }
