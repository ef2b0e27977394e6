"""Response shapes for the OpenAPI document (responses are streamed from stored JSON)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trailkeep.events.schema import EXAMPLE_EVENT

# What the example event of the ingest schema looks like once stored.
_EXAMPLE: dict[str, Any] = {
    **EXAMPLE_EVENT,
    "tenant_id": "acme",
    "seq": 41,
    "occurred_at": "2026-11-02T09:30:00.000000Z",
    "received_at": "2026-11-02T09:30:00.012345Z",
}


class StoredEvent(BaseModel):
    """An event as stored: exactly the JSON object kept in the log."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})
    id: str
    tenant_id: str
    seq: int
    occurred_at: str
    received_at: str
    action: str
    actor: dict[str, Any]
    targets: list[dict[str, Any]]
    outcome: Literal["success", "failure"]
    severity: str
    message: str | None = None
    context: dict[str, Any] | None = None
    changes: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class EventPage(BaseModel):
    data: list[StoredEvent]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


class BatchItemResult(BaseModel):
    index: int
    status: Literal["created", "duplicate", "conflict", "rejected"]
    id: str | None = None
    seq: int | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "status": "created", "id": "evt-1", "seq": 7},
                        {
                            "index": 1,
                            "status": "rejected",
                            "error": {"code": "validation_error", "message": "...", "details": []},
                        },
                    ],
                }
            ]
        }
    )
    created: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]
