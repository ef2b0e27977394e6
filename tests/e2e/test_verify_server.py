"""``trailkeep verify`` against a real trailkeep server: the monitor and an audited export.

The server signs checkpoints every 50 ms here; each test ingests events, waits for the
checkpoint that covers them, and runs the CLI the way an auditor would, with the verifier
key the server publishes (GET /v1/integrity/key): its typer app in this process (a
process costs about a second a run), and a real process for the monitor's first use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.server import CliRun, Server, all_events, run_in_process, wait_checkpoint
from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import generate_signer, parse_signer
from trailkeep.integrity.signing_keys import LogKey

FAST_CHECKPOINTS = {"TRAILKEEP_CHECKPOINT_INTERVAL_SECONDS": "0.05"}


def ingest(server: Server, token: str, count: int) -> None:
    events = [
        {"action": "user.login", "actor": {"id": f"u_{i}", "type": "user"}, "metadata": {"i": i}}
        for i in range(count)
    ]
    headers = {"Authorization": f"Bearer {token}"}
    for first in range(0, count, 100):
        batch = {"events": events[first : first + 100]}
        r = httpx.post(f"{server.url}/v1/events/batch", json=batch, headers=headers)
        assert r.status_code == 200, r.text


def wait_for_checkpoint(server: Server, token: str, size: int) -> str:
    """The signed note of the checkpoint of exactly ``size`` events."""
    checkpoint = wait_checkpoint(server.url, token, size)
    assert checkpoint["tree_size"] == size, checkpoint
    note: str = checkpoint["note"]
    return note


def vkey_of(server: Server, token: str, path: Path) -> Path:
    r = httpx.get(f"{server.url}/v1/integrity/key", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    path.write_text(r.json()["vkey"] + "\n")
    return path


def verify(
    *args: str, token: str | None = None, process: bool = False
) -> CliRun | subprocess.CompletedProcess[str]:
    """``trailkeep verify ARGS`` with TRAILKEEP_API_KEY set to ``token`` (else unset): in
    this process, or with ``process`` as a subprocess, as installed."""
    if not process:
        run = run_in_process("verify", *args, env={"TRAILKEEP_API_KEY": token or None})
        assert "Traceback" not in run.stdout + run.stderr, run.stderr
        return run
    env = {k: v for k, v in os.environ.items() if k != "TRAILKEEP_API_KEY"}
    if token:
        env["TRAILKEEP_API_KEY"] = token
    command = [sys.executable, "-m", "trailkeep.cli", "verify", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def test_the_monitor_follows_a_growing_log(
    server: Server, seeded: dict[str, str], tmp_path: Path
) -> None:
    server.start(extra_env=FAST_CHECKPOINTS)
    reader = seeded["a_reader"]
    ingest(server, seeded["a_writer"], 30)
    wait_for_checkpoint(server, reader, 30)
    key = vkey_of(server, reader, tmp_path / "a.vkey")
    since = tmp_path / "saved.txt"
    watch = ("--server", server.url, "--since", str(since), "--key", str(key))

    first = verify(*watch, token=reader)
    assert first.returncode == 1 and "--init" in first.stderr
    init = verify(*watch, "--init", token=reader, process=True)
    assert init.returncode == 0 and "trusted on first use" in init.stdout
    assert since.read_text().split("\n")[1] == "30"

    ingest(server, seeded["a_writer"], 20)
    wait_for_checkpoint(server, reader, 50)
    grown = verify(*watch, "--update", "--json", token=reader)
    assert grown.returncode == 0, grown.stdout + grown.stderr
    report = orjson.loads(grown.stdout)
    assert report["status"] == "ok" and report["updated"] is True
    assert (report["old"]["size"], report["new"]["size"]) == (30, 50)
    assert since.read_text().split("\n")[1] == "50"

    admin = verify(*watch, "--tenant", "a", token=seeded["admin"])
    assert admin.returncode == 0 and "unchanged at size 50" in admin.stdout
    unauthenticated = verify(*watch)
    assert unauthenticated.returncode == 1 and "HTTP 401" in unauthenticated.stderr


def test_the_monitor_refuses_other_logs_and_forks(
    server: Server, seeded: dict[str, str], tmp_path: Path
) -> None:
    server.start(extra_env=FAST_CHECKPOINTS)
    ingest(server, seeded["a_writer"], 10)
    ingest(server, seeded["b_writer"], 10)
    note_a = wait_for_checkpoint(server, seeded["a_reader"], 10)
    note_b = wait_for_checkpoint(server, seeded["b_reader"], 10)
    key_a = vkey_of(server, seeded["a_reader"], tmp_path / "a.vkey")
    key_b = vkey_of(server, seeded["b_reader"], tmp_path / "b.vkey")
    since = tmp_path / "saved.txt"

    def watch(key: Path, token: str) -> Any:
        args = ("--server", server.url, "--since", str(since), "--key", str(key))
        return verify(*args, token=token)

    since.write_text(note_b)  # tenant b's checkpoint, with tenant a's key
    wrong_log = watch(key_a, seeded["a_reader"])
    assert wrong_log.returncode == 1 and "is not signed by key localhost/t/a" in wrong_log.stderr
    # b's own key and checkpoint, but the server answers with a's log (a's credential).
    assert watch(key_b, seeded["a_reader"]).returncode == 1

    skey, vkey = generate_signer("localhost/t/a")  # an impostor's key for the same origin
    impostor = tmp_path / "impostor.vkey"
    impostor.write_text(vkey)
    forged = sign_checkpoint(Checkpoint("localhost/t/a", 10, b"\1" * 32), parse_signer(skey))
    since.write_text(forged)
    assert watch(impostor, seeded["a_reader"]).returncode == 1  # the server's note fails

    # A fork signed with the log's real key (as a compromised or lying server would
    # show one auditor): same size, another root.
    log_key = LogKey(parse_signer((server.data_dir / "signing.key").read_text().strip()))
    fork = Checkpoint("localhost/t/a", 10, b"\2" * 32)
    since.write_text(sign_checkpoint(fork, log_key.signer_for("a")))
    forked = watch(key_a, seeded["a_reader"])
    assert forked.returncode == 1 and "forked" in forked.stdout
    smaller = Checkpoint("localhost/t/a", 7, b"\3" * 32)  # a history the log never had
    since.write_text(sign_checkpoint(smaller, log_key.signer_for("a")))
    rewritten = watch(key_a, seeded["a_reader"])
    assert rewritten.returncode == 1 and "does not extend" in rewritten.stdout
    since.write_text(note_a)
    assert watch(key_a, seeded["a_reader"]).returncode == 0


def test_an_export_of_a_real_server_verifies_and_tiles_locate_a_change(
    server: Server, seeded: dict[str, str], tmp_path: Path
) -> None:
    server.start(extra_env=FAST_CHECKPOINTS)
    reader = seeded["a_reader"]
    ingest(server, seeded["a_writer"], 300)  # one full level-0 tile and a partial one
    (tmp_path / "checkpoint.txt").write_text(wait_for_checkpoint(server, reader, 300))
    key = vkey_of(server, reader, tmp_path / "a.vkey")
    events = sorted(all_events(server.url, reader), key=lambda e: e["seq"])
    export = tmp_path / "events.jsonl"
    export.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    offline = (str(export), "--checkpoint", str(tmp_path / "checkpoint.txt"), "--key", str(key))
    tiles = ("--tiles", f"{server.url}/v1/tenants/a/log/")

    ok = verify(*offline)
    assert ok.returncode == 0 and "OK: all 300 events" in ok.stdout
    assert verify(*offline, *tiles, token=reader).returncode == 0

    events[100]["metadata"]["i"] = -1
    export.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    located = verify(*offline, *tiles, "--json", token=reader)
    assert located.returncode == 1
    report = orjson.loads(located.stdout)
    assert report["tiles"]["status"] == "verified"
    assert report["modified"]["items"] == [{"line": 101, "seq": 100}]
    denied = verify(*offline, *tiles, token=seeded["b_reader"])
    assert denied.returncode == 1 and "unavailable" in denied.stdout


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's httpx must reach 127.0.0.1 directly, whatever proxy the machine sets.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.mark.sqlite_only  # the tamper goes through the database file
def test_the_monitor_samples_stored_events_and_warns_when_signing_stops(
    server: Server, seeded: dict[str, str], tmp_path: Path
) -> None:
    import sqlite3
    import time

    server.start(extra_env={**FAST_CHECKPOINTS, "TRAILKEEP_SCRUB_EVENTS_PER_SECOND": "5000"})
    reader = seeded["a_reader"]
    ingest(server, seeded["a_writer"], 20)
    wait_for_checkpoint(server, reader, 20)
    key = vkey_of(server, reader, tmp_path / "a.vkey")
    since = tmp_path / "saved.txt"
    watch = ("--server", server.url, "--since", str(since), "--key", str(key))
    assert verify(*watch, "--init", token=reader).returncode == 0
    clean = verify(*watch, "--sample", "10", "--json", token=reader)
    report = orjson.loads(clean.stdout)
    assert clean.returncode == 0 and report["sampled"] == 10 and report["warnings"] == []
    # someone edits a stored body in the database: the tree and checkpoints are unchanged
    db = sqlite3.connect(server.data_dir / "trailkeep.db")
    (body,) = db.execute("SELECT body FROM events WHERE tenant_id = 'a' AND seq = 17").fetchone()
    db.execute(
        "UPDATE events SET body = ? WHERE tenant_id = 'a' AND seq = 17",
        (bytes(body).replace(b'"u_17"', b'"u_99"'),),
    )
    db.commit()
    db.close()
    tampered = verify(*watch, "--sample", "10", "--json", token=reader)
    report = orjson.loads(tampered.stdout)
    assert tampered.returncode == 1 and report["status"] == "tampered", report
    assert "seq 17" in report["message"]
    # the server's own scrub finds it too and stops signing: the monitor warns
    deadline = time.monotonic() + 15
    while True:
        run = verify(*watch, "--json", token=reader)
        warnings = orjson.loads(run.stdout)["warnings"]
        if warnings or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert warnings and "stopped signing" in warnings[0] and "17" in warnings[0], warnings
