"""Every integration test runs on both backends (see tests/backends.py)."""

from __future__ import annotations

import pytest

from tests.integration.search_data import acme  # noqa: F401  (fixture for search tests)


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> str:
    return backend
