"""When the database refuses a write, or the writer is overloaded, clients get a 503
with Retry-After, nothing half-written is stored, and no seq is consumed.

The failure is a real database error (a trigger that aborts the insert, in SQLite or in
PostgreSQL), not a mock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import backends
from tests.conftest import World, auth, event, make_settings, seed_keys
from trailkeep.app import create_app


def _world(tmp_path: Path, **overrides: Any) -> Iterator[World]:
    settings = make_settings(tmp_path, **overrides)
    keys = seed_keys(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield World(client, settings, keys)


_PG_BOOM = """
CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.action = 'boom.now' THEN RAISE EXCEPTION 'simulated storage failure'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION boom();
"""


@pytest.fixture
def failing_world(tmp_path: Path) -> Iterator[World]:
    """A database whose inserts of action 'boom.now' fail inside the database."""
    world_iter = _world(tmp_path)
    world = next(world_iter)
    if backends.current_url is None:
        db = sqlite3.connect(tmp_path / "trailkeep.db")
        db.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.action = 'boom.now'"
            " BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END"
        )
        db.commit()
        db.close()
        yield world
    else:
        with psycopg.connect(backends.current_url, autocommit=True) as pg:
            pg.execute(_PG_BOOM)
            try:
                yield world
            finally:
                pg.execute("DROP TRIGGER boom ON events; DROP FUNCTION boom()")
    next(world_iter, None)


def test_a_failed_transaction_is_503_and_stores_nothing(failing_world: World) -> None:
    w = failing_world
    r = w.post("acme", event("boom.now", id="doomed"))
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "store_unavailable"
    batch = {"events": [event("ok.first"), event("boom.now"), event("ok.last")]}
    r = w.client.post("/v1/events/batch", json=batch, headers=w.h("acme", "writer"))
    assert r.status_code == 503, r.text
    assert w.all_events("acme") == []  # not even the valid items of the failed batch
    r = w.post("acme", event("ok.after"))
    assert r.status_code == 201
    assert r.json()["seq"] == 0  # the failed writes consumed no seq
    assert w.client.get("/readyz").status_code == 200  # the writer lives on


def test_one_failing_request_does_not_fail_its_neighbours(failing_world: World) -> None:
    """Requests grouped into one transaction with a failing one are retried alone."""
    w = failing_world
    results: dict[str, int] = {}

    def send(name: str, action: str) -> None:
        r = w.client.post("/v1/events", json=event(action, id=name), headers=w.h("acme", "writer"))
        results[name] = r.status_code

    threads = [
        threading.Thread(target=send, args=(f"e{i}", "boom.now" if i % 4 == 0 else "ok.x"))
        for i in range(24)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = {n for n, code in results.items() if code == 503}
    stored = {e["id"] for e in w.all_events("acme")}
    assert failed == {f"e{i}" for i in range(0, 24, 4)}
    assert stored == {f"e{i}" for i in range(24) if i % 4}
    seqs = sorted(e["seq"] for e in w.all_events("acme"))
    assert seqs == list(range(len(seqs)))


def test_a_full_ingest_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    for world in _world(tmp_path, ingest_queue_max=5):
        r = world.client.post(
            "/v1/events/batch",
            json={"events": [event() for _ in range(6)]},
            headers=auth(world.keys["acme"]["writer"]),
        )
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert "queue is full" in r.json()["error"]["message"]
        r = world.client.post(
            "/v1/events/batch",
            json={"events": [event() for _ in range(5)]},
            headers=auth(world.keys["acme"]["writer"]),
        )
        assert r.status_code == 200 and r.json()["created"] == 5
