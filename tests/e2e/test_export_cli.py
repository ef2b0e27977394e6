"""``trailkeep export`` against a real server: start, follow, download and unpack an
export that ``trailkeep verify`` accepts; list, status, download, cancel; errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.e2e.server import Server
from trailkeep.cli import app as cli_app

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]  # a client of the API: any backend


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli_app, list(args))


def test_export_cli_round_trip(server: Server, seeded: dict[str, Any], tmp_path: Path) -> None:
    server.start()
    admin = {"Authorization": f"Bearer {seeded['admin']}"}
    r = httpx.post(f"{server.url}/v1/tenants/a/api-keys", json={"role": "auditor"}, headers=admin)
    token = r.json()["token"]
    events = [
        {"action": f"user.{'login' if i % 2 else 'logout'}", "actor": {"id": f"u{i}"}}
        for i in range(50)
    ]
    writer = {"Authorization": f"Bearer {seeded['a_writer']}"}
    assert (
        httpx.post(
            f"{server.url}/v1/events/batch", json={"events": events}, headers=writer
        ).status_code
        == 200
    )
    common = ["--server", server.url, "--api-key", token]
    out = tmp_path / "out"
    result = _run(
        "export",
        "--q",
        "action:user.login",
        "--format",
        "parquet",
        "--out",
        str(out),
        "--quiet",
        *common,
    )
    assert result.exit_code == 0, result.output
    assert "exported 25 events" in result.output
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    reader_h = {"Authorization": f"Bearer {seeded['a_reader']}"}
    vkey = httpx.get(f"{server.url}/v1/integrity/key", headers=reader_h).json()["vkey"]
    verified = _run("verify", str(folder), "--key", vkey)
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output

    listed = _run("export", *common, "list", "--json")
    assert listed.exit_code == 0, listed.output
    (job,) = json.loads(listed.output)["data"]
    assert job["state"] == "done" and job["request"]["q"] == "action:user.login"
    status = _run("export", *common, "status", job["id"])
    assert json.loads(status.output)["progress"]["written"] == 25
    again = _run("export", *common, "download", job["id"], "--out", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / folder.name / "events.parquet").read_bytes() == (
        folder / "events.parquet"
    ).read_bytes()
    cancelled = _run("export", *common, "cancel", job["id"])
    assert cancelled.exit_code == 1 and "already ended" in cancelled.output

    bad = _run("export", "--format", "xlsx", "--out", str(tmp_path / "x"), *common)
    assert bad.exit_code == 1 and "format" in bad.output
    assert _run("export", *common).exit_code == 2  # no --out, no command
    reader = ["--server", server.url, "--api-key", seeded["a_reader"]]
    denied = _run("export", "--out", str(tmp_path / "y"), *reader)
    assert denied.exit_code == 1 and "403" in denied.output
