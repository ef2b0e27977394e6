from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server, cli, free_port


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every end-to-end test runs on both backends; the processes it starts inherit the
    database URL from the environment (SQLite: the data dir's own file)."""
    from tests import backends

    if backends.current_url is not None:
        monkeypatch.setenv("TRAILKEEP_DATABASE_URL", backends.current_url)
    return backend


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, free_port())
    yield srv
    srv.stop()


@pytest.fixture
def seeded(tmp_path: Path) -> dict[str, Any]:
    """A data dir with the platform admin key, tenants a and b and a writer/reader each."""
    out: dict[str, Any] = {"admin": cli("init", "--data-dir", str(tmp_path), "--json")["admin_key"]}
    for tenant in ("a", "b"):
        cli("tenant", "create", tenant, "--data-dir", str(tmp_path), "--json")
        for role in ("writer", "reader"):
            key = cli(
                "key",
                "create",
                "--role",
                role,
                "--tenant",
                tenant,
                "--data-dir",
                str(tmp_path),
                "--json",
            )
            out[f"{tenant}_{role}"] = key["token"]
    return out
