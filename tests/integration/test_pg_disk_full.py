"""A full disk under PostgreSQL: ingest answers 503 naming the problem (never a 500,
never a hang), every acknowledged event stays readable, nothing is half-written, and
ingest resumes by itself once there is space again.

The disk is real: a small tmpfs mounted for the test, holding a tablespace that a
database of the test's own lives in. Mounting needs root; elsewhere the test skips
(this is not about a missing server, so it skips even under CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests import backends
from tests.conftest import auth, make_settings, seed_keys
from trailkeep.app import create_app
from trailkeep.store.migrations.runner import upgrade
from trailkeep.store.urls import parse_database_url

pytestmark = pytest.mark.postgres_only


def _mount(directory: Path, size_mb: int, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={size_mb}m"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True)


@pytest.fixture
def small_disk_url(pg_database: backends.PgTestDatabase) -> Iterator[tuple[str, Path]]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    base = Path(tempfile.mkdtemp(prefix="trailkeep-diskfull-"))
    base.chmod(0o755)  # the PostgreSQL server (user postgres) must reach it
    space = base / "space"
    space.mkdir()
    try:
        _mount(space, 24)
    except subprocess.CalledProcessError:
        shutil.rmtree(base)
        pytest.skip("this machine does not allow mounting a tmpfs")
    shutil.chown(space, "postgres", "postgres")
    tag = uuid.uuid4().hex[:8]
    tablespace, database = f"trailkeep_small_{tag}", f"trailkeep_full_{tag}"
    with psycopg.connect(backends.ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{space}'")
        admin.execute(f"CREATE DATABASE {database} TABLESPACE {tablespace}")
    url = backends.url_with_database(backends.ADMIN_URL, database)
    try:
        upgrade(parse_database_url(url))
        yield url, space
    finally:
        with psycopg.connect(backends.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
        subprocess.run(["umount", str(space)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _batch(n: int, start: int) -> dict[str, Any]:
    # Random text: PostgreSQL compresses long values, and repeated text would not fill much.
    return {
        "events": [
            {
                "id": f"fill-{start + i}",
                "action": "disk.fill",
                "actor": {"id": "filler"},
                "message": os.urandom(3000).hex(),
            }
            for i in range(n)
        ]
    }


def test_full_disk_is_503_and_loses_nothing(
    small_disk_url: tuple[str, Path], tmp_path: Path
) -> None:
    url, space = small_disk_url
    settings = make_settings(tmp_path, database_url=url)
    keys = seed_keys(settings)
    writer, reader = auth(keys["acme"]["writer"]), auth(keys["acme"]["reader"])
    acked: list[str] = []
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        full = None
        for round_no in range(60):
            r = client.post("/v1/events/batch", json=_batch(200, round_no * 200), headers=writer)
            if r.status_code == 200:
                acked += [item["id"] for item in r.json()["results"]]
                continue
            full = r
            break
        assert full is not None, "the disk never filled up"
        assert full.status_code == 503, full.text
        assert full.headers["retry-after"] == "1"
        assert "disk is full" in full.json()["error"]["message"]
        assert len(acked) > 0

        # Reads still work, and everything acknowledged is there, in gapless seqs.
        stored: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/events", params=params, headers=reader)
            assert page.status_code == 200, page.text
            stored += page.json()["data"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
        assert sorted(e["id"] for e in stored) == sorted(acked)
        assert sorted(e["seq"] for e in stored) == list(range(len(acked)))

        _mount(space, 256, remount=True)
        r = client.post("/v1/events/batch", json=_batch(10, 100_000), headers=writer)
        assert r.status_code == 200, r.text
        assert [item["seq"] for item in r.json()["results"]] == list(
            range(len(acked), len(acked) + 10)
        )
