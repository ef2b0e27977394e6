"""The shape of every error response, for the OpenAPI document (http/responses.py
writes the bodies)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: dict[str, Any] = Field(
        examples=[{"code": "not_found", "message": "event 'x' not found", "details": None}]
    )
