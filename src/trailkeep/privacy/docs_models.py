"""API shapes of the subject endpoints, for the OpenAPI document (answers are built
as plain JSON by privacy/subjects.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

_KEY: dict[str, Any] = {
    "key_id": "5f0c2e8a9b1d4c3e8f7a6b5c4d3e2f10",
    "created_at": "2026-11-02T09:30:00.000000Z",
    "erased_at": None,
    "erased_by": None,
}


class SubjectKeyOut(BaseModel):
    key_id: str
    created_at: str
    erased_at: str | None
    erased_by: str | None


class SubjectReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "u_ada",
                    "events": 30,
                    "first_seen": "2026-11-02T09:30:00.000000Z",
                    "last_seen": "2026-11-30T17:02:11.000000Z",
                    "first_seq": 0,
                    "last_seq": 41,
                    "counted_through_seq": 42,
                    "fields_held": ["actor.email", "actor.name", "context.ip_address"],
                    "erased": False,
                    "keys": [_KEY],
                }
            ]
        }
    )
    subject_id: str
    events: int
    first_seen: str | None
    last_seen: str | None
    first_seq: int | None
    last_seq: int | None
    counted_through_seq: int
    fields_held: list[str]
    erased: bool
    keys: list[SubjectKeyOut]


_ERASURE: dict[str, Any] = {
    "subject_id": "u_ada",
    "erased": True,
    "already_erased": False,
    "keys_erased": 1,
    "events_affected": 30,
    "counted_through_seq": 42,
    "erased_at": "2026-12-01T10:00:00.000000Z",
    "event_seq": 42,
}


class ErasureOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ERASURE]})
    subject_id: str
    erased: bool
    already_erased: bool
    keys_erased: int
    events_affected: int
    counted_through_seq: int
    erased_at: str
    event_seq: int | None = None
