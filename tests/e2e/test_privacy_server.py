"""Privacy with a real server, on both backends: the master key `trailkeep init` makes,
the start-up refusals (no key, a wrong key), and `trailkeep subject show|erase`.

The start-up refusals are real ``trailkeep serve`` processes, and so is the erasure a
"n" on stdin refuses; the other commands run their typer app in this process
(cli_in_process: a process costs about a second each)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.server import Server, cli, cli_in_process
from trailkeep.privacy.key_provider import new_master_key_text

EMAIL = "ada@example.com"


def _serve_fails(data_dir: Path, env: dict[str, str]) -> str:
    """Start `trailkeep serve` expecting it to refuse: its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "trailkeep.cli", "serve", "--port", "0"],
        env={**env, "TRAILKEEP_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_init_key_start_refusals_and_subject_cli(server: Server, tmp_path: Path) -> None:
    import os

    made = cli_in_process("init", "--data-dir", str(tmp_path), "--demo", "--json")
    key_file = tmp_path / "privacy.key"
    assert made["privacy_key_file"] == str(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    demo = made["demo"]
    server.start()
    h = {"Authorization": f"Bearer {demo['writer']}"}
    for i in range(3):
        event = {"action": "user.login", "actor": {"id": "u_ada", "email": EMAIL}, "id": f"e{i}"}
        assert httpx.post(f"{server.url}/v1/events", json=event, headers=h).status_code == 201
    auditor = {"Authorization": f"Bearer {demo['auditor']}"}
    got = httpx.get(f"{server.url}/v1/events/e0", headers=auditor).json()
    assert got["actor"]["email"] == EMAIL

    base = ["--server", server.url, "--api-key", demo["tenant_admin"]]
    deadline = time.monotonic() + 15
    while True:  # the subject's counts follow the log
        shown = cli_in_process("subject", "show", "u_ada", *base)
        report = json.loads(shown.stdout)
        if report["events"] == 3:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.1)
    assert "actor.email" in report["fields_held"]
    refused = cli("subject", "erase", "u_ada", *base, input_text="n\n", check=False)
    assert refused.returncode != 0
    erased = json.loads(cli_in_process("subject", "erase", "u_ada", *base, "--yes").stdout)
    assert erased["keys_erased"] == 1 and erased["events_affected"] == 3
    got = httpx.get(f"{server.url}/v1/events/e0", headers=auditor).json()
    assert got["actor"]["email"] == "[erased]"
    unknown = cli_in_process("subject", "erase", "nobody", *base, "--yes", check=False)
    assert unknown.returncode == 1 and "404" in unknown.stderr
    server.stop()

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILKEEP_PRIVACY")}
    wrong = _serve_fails(tmp_path, {**env, "TRAILKEEP_PRIVACY_KEY": new_master_key_text()})
    assert "does not open the keys stored in this database" in wrong
    key_file.rename(tmp_path / "privacy.key.bak")
    missing = _serve_fails(tmp_path, env)
    assert "no privacy key" in missing and "trailkeep init" in missing
    (tmp_path / "privacy.key.bak").rename(key_file)
    server.start()
    got = httpx.get(f"{server.url}/v1/events/e1", headers=auditor).json()
    assert got["actor"]["email"] == "[erased]" and got["actor"]["id"] == "u_ada"
