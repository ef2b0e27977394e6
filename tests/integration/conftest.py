"""Every integration test runs on both backends (see tests/backends.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> str:
    return backend
