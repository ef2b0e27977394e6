"""A kill -9 of the server in the middle of an export job: after a restart the job is
taken over once its lease runs out, starts again and finishes with a complete, verifying
archive; nothing half-written is ever presented as done."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.e2e.server import Server
from trailkeep.cli import app as cli_app

pytestmark = pytest.mark.slow

EVENTS = 30_000
_ENV = {"TRAILKEEP_EXPORT_LEASE_SECONDS": "2", "TRAILKEEP_EXPORT_POLL_SECONDS": "0.2"}


def _fill(http: httpx.Client) -> None:
    for start in range(0, EVENTS, 1000):
        events = [
            {
                "id": f"e{i}",
                "action": "document.update",
                "actor": {"id": f"u{i % 50}", "name": "Ada Lovelace", "email": "ada@example.com"},
                "context": {"ip_address": "203.0.113.9", "user_agent": "Agent/1"},
                "message": f"document {i} changed",
            }
            for i in range(start, start + 1000)
        ]
        r = http.post("/v1/events/batch", json={"events": events})
        assert r.status_code == 200, r.text


def _job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    r = http.get(f"/v1/exports/{job_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def test_an_export_killed_midway_finishes_after_restart(
    server: Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    server.start(extra_env=_ENV)
    admin = {"Authorization": f"Bearer {seeded['admin']}"}
    r = httpx.post(
        f"{server.url}/v1/tenants/a/api-keys", json={"role": "tenant_admin"}, headers=admin
    )
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        _fill(http)
        job = http.post("/v1/exports", json={"format": "csv"}).json()
        deadline = time.monotonic() + 60
        while (state := _job(http, job["id"]))["progress"]["written"] == 0:
            assert state["state"] in ("queued", "running"), state
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert state["state"] == "running" and state["progress"]["written"] < EVENTS, state
    server.kill()
    work = server.data_dir / "exports" / ".work"
    assert any(work.iterdir())  # the interrupted attempt's folder
    assert not list((server.data_dir / "exports").glob("a/*/*.zip"))  # nothing looks done

    server.start(extra_env=_ENV)
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        deadline = time.monotonic() + 120
        while (state := _job(http, job["id"]))["state"] != "done":
            assert state["state"] in ("queued", "running"), state
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["attempts"] == 2 and state["progress"]["written"] == EVENTS
        r = http.get(f"/v1/exports/{job['id']}/download")
        assert r.status_code == 200
        vkey = http.get("/v1/integrity/key").json()["vkey"]
    archive = tmp_path / "export.zip"
    archive.write_bytes(r.content)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
    result = CliRunner().invoke(cli_app, ["verify", str(archive), "--key", vkey, "--json"])
    assert result.exit_code == 0, result.stdout
    assert f'"rows": {EVENTS}' in result.stdout
    assert not any(work.iterdir())  # the leftovers of the killed attempt are gone
