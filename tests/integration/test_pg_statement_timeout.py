"""No statement holds PostgreSQL for long: a write stuck behind a lock is cancelled by
the statement timeout and answered 503 (Retry-After), nothing of it is stored, reads go
on meanwhile, and writes work again once the lock is gone."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import backends
from tests.conftest import World, event, make_settings
from trailkeep.app import create_app

pytestmark = pytest.mark.postgres_only


def test_a_write_stuck_behind_a_lock_times_out_with_503(world: World, tmp_path: Path) -> None:
    assert world.post("acme", event("before.lock", id="kept")).status_code == 201
    assert backends.current_url is not None
    settings = make_settings(tmp_path / "short", pg_statement_timeout_ms=300)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        writer, reader = world.h("acme", "writer"), world.h("acme", "reader")
        with psycopg.connect(backends.current_url) as blocker:
            # Another session holds acme's seq counter, as a stuck writer would.
            blocker.execute("SELECT * FROM tenant_seqs WHERE tenant_id = 'acme' FOR UPDATE")
            began = time.monotonic()
            r = client.post("/v1/events", json=event("stuck.write", id="stuck"), headers=writer)
            took = time.monotonic() - began
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert "statement timeout" in r.json()["error"]["message"]
            assert took < 3.0
            # Reads and other tenants' writes are not held up by acme's lock.
            assert client.get("/v1/events", headers=reader).status_code == 200
            globex = client.post(
                "/v1/events", json=event("other.tenant"), headers=world.h("globex", "writer")
            )
            assert globex.status_code == 201
            world.globex_ids.append(globex.json()["id"])
            blocker.rollback()
        r = client.post("/v1/events", json=event("after.lock", id="after"), headers=writer)
        assert r.status_code == 201, r.text
        assert r.json()["seq"] == 1  # the cancelled write consumed no seq
    assert [e["id"] for e in world.all_events("acme")] == ["after", "kept"]
