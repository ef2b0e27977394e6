"""The shapes of the retention and archive endpoints, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

_REPORT: dict[str, Any] = {
    "tenant_id": "acme",
    "dry_run": False,
    "legal_hold": False,
    "checkpoint_size": 2000000,
    "scanned": 2000000,
    "due": 1000000,
    "deleted": 1000000,
    "archived": 1000000,
    "by_rule": {"severity:DEBUG": 1000000},
    "by_severity": {"DEBUG": 1000000},
    "segments": ["01939a4e-7c1f-7b2a-9a35-3c0e9d1f5b21"],
    "resumed_segments": [],
    "policy": {"default_days": 365, "by_severity": {"DEBUG": 7}, "by_action": {}, "archive": True},
}
_RUN: dict[str, Any] = {
    "id": "ret_01939a4e7c1f7b2a9a353c0e9d1f5b21",
    "tenant_id": "acme",
    "state": "done",
    "requested_by": "key:3f9c2a7d1e5b8c04",
    "created_at": "2026-12-04T03:00:00.000000Z",
    "finished_at": "2026-12-04T03:00:31.200000Z",
    "report": _REPORT,
    "error": None,
}
_SEGMENT: dict[str, Any] = {
    "id": "01939a4e-7c1f-7b2a-9a35-3c0e9d1f5b21",
    "tenant_id": "acme",
    "run_id": "ret_01939a4e7c1f7b2a9a353c0e9d1f5b21",
    "state": "pruned",
    "from_seq": 0,
    "to_seq": 1999998,
    "rows": 1000000,
    "destination": "local",
    "location": "acme/01939a4e-7c1f-7b2a-9a35-3c0e9d1f5b21",
    "created_at": "2026-12-04T03:00:20.000000Z",
    "files": [{"name": "events.parquet", "sha256": "9f2c…", "bytes": 52103340}],
    "by_rule": {"severity:DEBUG=7d": 1000000},
    "checkpoint_size": 2000000,
}


class RetentionReport(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_REPORT]})
    tenant_id: str
    dry_run: bool
    legal_hold: bool
    due: int
    deleted: int
    by_rule: dict[str, int]
    by_severity: dict[str, int]


class RetentionRunOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_RUN]})
    id: str
    tenant_id: str
    state: str
    report: dict[str, Any] | None
    error: str | None


class RetentionRunList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"data": [_RUN]}]})
    data: list[RetentionRunOut]


class SegmentOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_SEGMENT]})
    id: str
    tenant_id: str
    state: str
    from_seq: int
    to_seq: int
    rows: int


class SegmentList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [_SEGMENT], "next_cursor": None}]}
    )
    data: list[SegmentOut]
    next_cursor: str | None
