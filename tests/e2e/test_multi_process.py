"""Two ``trailkeep serve`` processes on one PostgreSQL database, ingesting into the same
tenant at once: seqs stay unique and gapless, nothing is lost or stored twice, and
idempotency holds across the processes (the same id sent to both at once is stored once).
Both sign checkpoints of the shared tree: every checkpoint either signed is the root of
a prefix of the stored events, so no two are inconsistent.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests import backends
from tests.e2e.server import Server, all_events, free_port, wait_checkpoint
from trailkeep.integrity.checkpoint import open_checkpoint
from trailkeep.integrity.note import parse_verifier
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

ROUNDS = 40
BATCH = 20


def _load(url: str, token: str, prefix: str, acked: list[str], errors: list[str]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(ROUNDS):
            events = [
                {"id": f"{prefix}-{n}-{i}", "action": "load.test", "actor": {"id": prefix}}
                for i in range(BATCH)
            ]
            r = http.post("/v1/events/batch", json={"events": events})
            if r.status_code != 200:
                errors.append(f"{url}: {r.status_code} {r.text[:200]}")
                continue
            acked += [it["id"] for it in r.json()["results"] if it["status"] == "created"]
            one = http.post(
                "/v1/events",
                json={"id": f"{prefix}-single-{n}", "action": "x.y", "actor": {"id": prefix}},
            )
            if one.status_code != 201:
                errors.append(f"{url}: {one.status_code} {one.text[:200]}")
            else:
                acked.append(one.json()["id"])


def _race(urls: list[str], token: str, event_id: str, answers: list[Any]) -> None:
    """Send the same event to both servers at the same moment."""
    barrier = threading.Barrier(len(urls))
    body = {"id": event_id, "action": "race.same_id", "actor": {"id": "racer"}}

    def send(url: str) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            barrier.wait()
            r = http.post("/v1/events", json=body)
            answers.append((r.status_code, r.json().get("seq")))

    threads = [threading.Thread(target=send, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_processes_share_one_tenant_log(tmp_path: Path, seeded: dict[str, Any]) -> None:
    servers = [Server(tmp_path / f"s{i}", free_port()) for i in range(2)]
    for srv in servers:
        srv.data_dir.mkdir()
        srv.start()
    try:
        urls = [s.url for s in servers]
        acked: list[str] = []
        errors: list[str] = []
        loaders = [
            threading.Thread(
                target=_load, args=(urls[i % 2], seeded["a_writer"], f"p{i}", acked, errors)
            )
            for i in range(4)
        ]
        for t in loaders:
            t.start()
        races: dict[str, list[Any]] = {}
        for k in range(30):
            races[f"race-{k}"] = []
            _race(urls, seeded["a_writer"], f"race-{k}", races[f"race-{k}"])
        for t in loaders:
            t.join()
        assert errors == []

        stored = all_events(urls[1], seeded["a_reader"])
        ids = [e["id"] for e in stored]
        assert len(ids) == len(set(ids)), "an event was stored twice"
        assert sorted(e["seq"] for e in stored) == list(range(len(stored))), "seqs not gapless"
        assert set(acked) | set(races) == set(ids)
        assert len(acked) == 4 * ROUNDS * (BATCH + 1)
        by_id = {e["id"]: e for e in stored}
        for event_id, answers in races.items():
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200, 201], (event_id, answers)  # one created, one retry
            assert {seq for _, seq in answers} == {by_id[event_id]["seq"]}
        # The other tenant saw none of it.
        assert all_events(urls[0], seeded["b_reader"]) == []
        _assert_every_checkpoint_is_a_prefix(urls, seeded["a_reader"], stored)
    finally:
        for srv in servers:
            srv.stop()


def _assert_every_checkpoint_is_a_prefix(
    urls: list[str], token: str, stored: list[dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    leaves = [merkle.leaf_hash(canonical_json(e)) for e in sorted(stored, key=lambda e: e["seq"])]
    # Both processes catch up with the whole tree.
    latest = [wait_checkpoint(u, token, len(leaves)) for u in urls]
    assert [c["tree_size"] for c in latest] == [len(leaves)] * 2
    vkey = httpx.get(f"{urls[0]}/v1/integrity/key", headers=headers).json()["vkey"]
    verifier = parse_verifier(vkey)
    with psycopg.connect(backends.current_url or "") as conn:
        notes = conn.execute(
            "SELECT size, note FROM checkpoints WHERE tenant_id = 'a' ORDER BY size"
        ).fetchall()
    assert len(notes) >= 2, "the log grew for seconds: it was signed more than once"
    for size, note in notes:
        checkpoint = open_checkpoint(note, [verifier], origin=verifier.name)
        assert checkpoint.size == size
        assert checkpoint.root_hash == merkle.root_from_leaf_hashes(leaves[:size]), size
    assert base64.b64decode(latest[0]["root_hash"]) == merkle.root_from_leaf_hashes(leaves)
