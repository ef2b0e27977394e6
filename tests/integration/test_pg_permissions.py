"""A database user that may read but not write: writes are a 503 that names the
problem, reads keep working, and nothing is half-written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import backends
from tests.conftest import World, event, make_settings
from trailkeep.app import create_app

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def read_only_url() -> Iterator[str]:
    assert backends.current_url is not None
    role = f"trailkeep_ro_{uuid.uuid4().hex[:8]}"
    database = backends.current_url.rsplit("/", 1)[1]
    with psycopg.connect(backends.current_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    head, _, rest = backends.current_url.partition("://")
    yield f"{head}://{role}@{rest.split('@', 1)[-1]}"
    with psycopg.connect(backends.current_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_writes_without_permission_are_503_and_reads_still_work(
    world: World, read_only_url: str, tmp_path: Path
) -> None:
    assert world.post("acme", event("before.lockdown", id="kept")).status_code == 201
    settings = make_settings(tmp_path / "ro", database_url=read_only_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        writer = world.h("acme", "writer")
        r = client.post("/v1/events", json=event("denied.write", id="x1"), headers=writer)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert "permission" in r.json()["error"]["message"]
        batch = {"events": [event("denied.batch"), event("denied.batch")]}
        assert client.post("/v1/events/batch", json=batch, headers=writer).status_code == 503
        r = client.get("/v1/events", headers=world.h("acme", "reader"))
        assert r.status_code == 200
        assert [e["id"] for e in r.json()["data"]] == ["kept"]
        r = client.post(
            "/v1/tenants", json={"id": "newco", "display_name": "N"}, headers=world.admin
        )
        assert r.status_code == 503 and "permission" in r.json()["error"]["message"]
    # The service with full rights sees exactly what was there before, and goes on.
    assert [e["id"] for e in world.all_events("acme")] == ["kept"]
    assert world.post("acme", event("after.lockdown")).json()["seq"] == 1
