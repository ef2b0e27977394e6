"""The shapes of the export endpoints, for the OpenAPI document (with examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

_JOB: dict[str, Any] = {
    "id": "exp_01a23eae9b237eaea70657d8bd11d321",
    "tenant_id": "acme",
    "state": "done",
    "request": {
        "format": "parquet",
        "q": "action:user.*",
        "from_seq": 0,
        "to_seq": 120000,
        "occurred_from": None,
        "occurred_to": None,
        "filtered": True,
        "destination": "local",
        "compression": "deflate",
    },
    "created_by": "key:3f9c2a7d1e5b8c04",
    "created_at": "2026-12-04T09:30:00.000000Z",
    "started_at": "2026-12-04T09:30:00.200000Z",
    "finished_at": "2026-12-04T09:30:04.100000Z",
    "attempts": 1,
    "progress": {"written": 40211, "total": None, "scanned_to_seq": 120000, "fraction": 1.0},
    "error": None,
    "files": [
        {"name": "events.parquet", "sha256": "9f2c…", "bytes": 5210334},
        {"name": "checkpoint.txt", "sha256": "1a0b…", "bytes": 181},
        {"name": "proofs.jsonl", "sha256": "77de…", "bytes": 33102211},
    ],
    "archive": {
        "name": "trailkeep-export-exp_01a23eae9b237eaea70657d8bd11d321.zip",
        "bytes": 38120077,
        "sha256": "c0ff…",
        "destination": "local",
    },
    "view": "decrypted",
}


class ExportOut(BaseModel):
    """An export job: its request, state, progress and, once done, its files."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_JOB]})

    id: str
    tenant_id: str
    state: str
    request: dict[str, Any]
    progress: dict[str, Any]
    error: str | None


class ExportList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [_JOB], "next_cursor": None}]}
    )

    data: list[ExportOut]
    next_cursor: str | None


ZIP_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The zip archive: trailkeep-export-<id>/ with the data and its bundle",
        "content": {"application/zip": {"example": "(binary zip archive)"}},
    },
    307: {"description": "A short-lived presigned link to the archive in S3"},
}
