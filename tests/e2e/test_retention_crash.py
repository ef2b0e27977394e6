"""A retention run killed with SIGKILL at each of its steps (segment written, stored,
recorded, rows being deleted, segment pruned), next to a live server: after every kill
each event of the tenant is either still stored or pruned into a recorded archive
segment that verifies, nothing is lost; the next run finishes the interrupted work.
Then the CLI's archive commands (list, query, restore), and a server restarted after
pruning the newest events hands out no seq twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.e2e.server import Server, all_events, cli_in_process, wait_checkpoint

pytestmark = pytest.mark.slow

EVENTS = 3_000
STEPS = ("segment written", "segment stored", "segment recorded", "deleted", "segment pruned")
_RUN_ENV = {
    "TRAILKEEP_RETENTION_SEGMENT_ROWS": "500",
    "TRAILKEEP_RETENTION_BATCH_ROWS": "150",
    "TRAILKEEP_RETENTION_LEASE_SECONDS": "1",
}
_SERVER_ENV = {
    "TRAILKEEP_RETENTION_INTERVAL_SECONDS": "0",
    "TRAILKEEP_CHECKPOINT_INTERVAL_SECONDS": "0.2",
}


def _due(i: int) -> bool:
    return i % 2 == 1  # odd seqs: old DEBUG; the last event (odd) is due too


def _fill(http: httpx.Client) -> None:
    for start in range(0, EVENTS, 1000):
        events = [
            {
                "id": f"e{i}",
                "action": "document.update",
                "actor": {"id": f"u{i % 9}"},
                "severity": "DEBUG" if _due(i) else "INFO",
                "occurred_at": "2021-05-01T00:00:00Z",
                "message": f"document {i} changed",
                "targets": [{"type": "document", "id": f"d{i % 5}"}],
            }
            for i in range(start, start + 1000)
        ]
        r = http.post("/v1/events/batch", json={"events": events})
        assert r.status_code == 200, r.text


def _run_until(server: Server, step: str | None) -> str:
    """``trailkeep retention run --tenant a`` as a process; SIGKILL it as soon as it
    reports ``step`` (None: let it finish). Returns its stderr."""
    env = {**os.environ, "TRAILKEEP_DATA_DIR": str(server.data_dir), **_RUN_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trailkeep.cli", "retention", "run", "--tenant", "a"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if step is not None and line.startswith(f"retention a: {step} "):
            proc.kill()
            break
    proc.wait(timeout=60)
    if step is None:
        assert proc.returncode == 0, "".join(seen)
    else:
        assert proc.returncode == -9, f"{step!r} never reported: {''.join(seen)}"
    return "".join(seen)


def _check_no_loss(http: httpx.Client, token: str, vkey: str, archive_dir: Path) -> int:
    """Every event is stored or in a recorded segment that verifies; returns how many
    are pruned. Pruned events answer 410 naming their segment (a sample is asked)."""
    stored = {e["seq"] for e in all_events(str(http.base_url), token)}
    segments = http.get("/v1/archives").json()["data"]
    archived: dict[int, str] = {}
    for seg in segments:
        folder = archive_dir / seg["location"]
        out = cli_in_process("verify", str(folder), "--key", vkey, "--json")
        assert out["ok"] and out["sparse"], out
        seqs = pq.read_table(folder / "events.parquet", columns=["seq"]).column("seq")
        archived |= dict.fromkeys(seqs.to_pylist(), seg["id"])
    pruned = set(range(EVENTS)) - stored
    assert pruned <= archived.keys(), f"lost: {sorted(pruned - archived.keys())[:10]}"
    assert all(_due(seq) for seq in pruned)
    for seq in sorted(pruned)[:: max(1, len(pruned) // 20)]:
        r = http.get(f"/v1/events/e{seq}")
        assert r.status_code == 410 and r.json()["archive_segment"] in [s["id"] for s in segments]
    return len(pruned)


def test_a_run_killed_at_every_step_loses_nothing(
    server: Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    server.start(extra_env=_SERVER_ENV)
    admin = {"Authorization": f"Bearer {seeded['admin']}"}
    r = httpx.post(
        f"{server.url}/v1/tenants/a/api-keys", json={"role": "tenant_admin"}, headers=admin
    )
    token = r.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    archive_dir = server.data_dir / "archives"
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        _fill(http)
        wait_checkpoint(server.url, token, EVENTS)
        deadline = time.monotonic() + 30  # a run prunes only what the stats have counted
        while (
            int(http.get("/v1/stats?group_by=action").headers["Trailkeep-Indexed-To-Seq"]) < EVENTS
        ):
            assert time.monotonic() < deadline, "the indexer did not catch up"
            time.sleep(0.1)
        r = http.patch("/v1/tenants/a", json={"retention": {"by_severity": {"DEBUG": 30}}})
        assert r.status_code == 200, r.text
        vkey = http.get("/v1/integrity/key").json()["vkey"]
        pruned = 0
        for step in STEPS:
            _run_until(server, step)
            now = _check_no_loss(http, token, vkey, archive_dir)
            assert now >= pruned  # never undone
            pruned = now
            time.sleep(1.1)  # the killed run's lease runs out
        _run_until(server, None)
        assert _check_no_loss(http, token, vkey, archive_dir) == EVENTS // 2
        runs = http.get("/v1/retention/runs").json()["data"]
        assert runs[0]["state"] == "done"
        assert sum(x["state"] == "failed" for x in runs) == len(STEPS)  # each kill, recorded

    # The archive commands: list, query over Parquet in place, restore one segment.
    env = {"TRAILKEEP_DATA_DIR": str(server.data_dir)}
    listed = cli_in_process("archive", "list", "--tenant", "a", "--json", env=env)
    assert sum(s["rows"] for s in listed) >= EVENTS // 2
    found = cli_in_process(
        "archive", "query", "--tenant", "a", "--q", '"document 2001"', env=env
    ).stdout.splitlines()
    assert len(found) == 1 and '"e2001"' in found[0]
    first = listed[0]
    restored = cli_in_process("archive", "restore", first["id"], "--tenant", "a", "--json", env=env)
    assert restored["restored"] == first["rows"]
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        back = http.get(f"/v1/events/e{first['from_seq']}")
        assert back.status_code == 200 and back.json()["seq"] == first["from_seq"]
        assert http.get(f"/v1/events/e{first['from_seq']}/proof").status_code == 200
        assert http.get("/v1/events", params={"q": f'"document {first["from_seq"]}"'}).json()[
            "data"
        ]

    # The newest event (seq EVENTS-1) was pruned: a restarted server must not reuse it.
    server.kill()
    server.start(extra_env=_SERVER_ENV)
    r = httpx.post(
        f"{server.url}/v1/events",
        json={"action": "after.restart", "actor": {"id": "u1"}},
        headers={"Authorization": f"Bearer {seeded['a_writer']}"},
    )
    assert r.status_code == 201 and r.json()["seq"] == EVENTS, r.text
    b = httpx.get(
        f"{server.url}/v1/events", headers={"Authorization": f"Bearer {seeded['b_reader']}"}
    )
    assert b.json()["data"] == []  # tenant b: no policy, no events, nothing touched
