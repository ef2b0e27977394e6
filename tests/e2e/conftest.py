from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server, cli_in_process, free_port
from trailkeep.app import build_store
from trailkeep.auth.principal import Role
from trailkeep.auth.service import AuthService
from trailkeep.config import Settings
from trailkeep.tenants.models import TenantCreate
from trailkeep.tenants.service import TenantService


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


async def _tenants_and_keys(data_dir: Path) -> dict[str, str]:
    settings = Settings(data_dir=data_dir)  # the database URL comes from the environment
    store = build_store(settings)
    await store.start()
    try:
        auth, tenants = AuthService(store, settings), TenantService(store)
        out: dict[str, str] = {}
        for tenant in ("a", "b"):
            await tenants.create(TenantCreate(id=tenant))
            for role in (Role.WRITER, Role.READER):
                out[f"{tenant}_{role.value}"] = (await auth.create_key(tenant, role, "e2e")).token
        return out
    finally:
        await store.close()


@pytest.fixture
def seeded(tmp_path: Path) -> dict[str, Any]:
    """A data dir with the platform admin key, tenants a and b and a writer/reader each.

    `trailkeep init` runs as a user runs it, its typer app in this process (a process
    costs about a second per test; tests/e2e/test_cli.py runs the commands); the tenants
    and keys are made through the services.
    """
    made = cli_in_process("init", "--data-dir", str(tmp_path), "--json")
    out: dict[str, Any] = {"admin": made["admin_key"]}
    out.update(asyncio.run(_tenants_and_keys(tmp_path)))
    return out
