"""Restoring an older backup (issue 14 item 6): the signer remembers, beside its signing
key, the largest tree it signed per tenant, and refuses to sign over an older database
copy that the database's own checkpoints would accept. SQLite only: the memory is a
file of the data directory, the same for both backends; restoring is simplest here."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import auth, event, make_settings, seed_keys
from trailkeep.app import create_app
from trailkeep.config import Settings

pytestmark = pytest.mark.sqlite_only


def _size(client: TestClient, token: str, at_least: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = client.get("/v1/checkpoint", headers=auth(token))
        if r.status_code == 200 and r.json()["tree_size"] >= at_least:
            return int(r.json()["tree_size"])
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of {at_least}")


def _post(client: TestClient, token: str, ids: range) -> None:
    for i in ids:
        assert (
            client.post("/v1/events", json=event(id=f"e{i}"), headers=auth(token)).status_code
            == 201
        )


def _backup(settings: Settings, to: Path) -> None:
    src = sqlite3.connect(settings.database().sqlite_path)
    dst = sqlite3.connect(to)
    src.backup(dst)
    dst.close()
    src.close()


def test_an_older_backup_is_not_signed_over(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    keys = seed_keys(settings)
    writer, reader = keys["acme"]["writer"], keys["acme"]["reader"]
    with TestClient(create_app(settings)) as client:
        _post(client, writer, range(5))
        assert _size(client, reader, 5) == 5
    _backup(settings, tmp_path / "backup.db")
    with TestClient(create_app(settings)) as client:
        _post(client, writer, range(5, 10))
        assert _size(client, reader, 10) == 10
    # the older copy comes back, with its own (older, consistent) checkpoints
    db = settings.database().sqlite_path
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    (tmp_path / "backup.db").replace(db)
    app = create_app(settings)
    with TestClient(app) as client:
        _post(client, writer, range(20, 22))  # a tree of 7, extending the restored 5
        deadline = time.monotonic() + 10
        while "acme" not in app.state.signer.faults and time.monotonic() < deadline:
            time.sleep(0.05)
        fault = app.state.signer.faults["acme"]
        assert "fewer than the 10 this signer already signed" in fault
        assert "backup" in fault
        r = client.get("/v1/checkpoint", headers=auth(reader))
        assert r.json()["tree_size"] == 5  # nothing signed over the older tree
        # the other tenant is not held up
        _post(client, keys["globex"]["writer"], range(3))
        assert _size(client, keys["globex"]["reader"], 3) == 3
