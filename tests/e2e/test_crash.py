"""Kill -9 under concurrent ingest: every acknowledged event survives, seqs stay gapless,
and the stored Merkle tree equals the tree recomputed from the stored events."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, all_events, wait_checkpoint
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.tiles import TILE_WIDTH, TileNodes, tile_path

pytestmark = pytest.mark.slow


def _writer(
    url: str, token: str, client_no: int, acked: list[str], stop: threading.Event, batch: bool
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    n = 0
    with httpx.Client(base_url=url, headers=headers, timeout=5) as http:
        while not stop.is_set():
            ids = [f"c{client_no}-{n + i}" for i in range(10 if batch else 1)]
            events = [
                {"id": i, "action": "load.test", "actor": {"id": f"c{client_no}"}} for i in ids
            ]
            n += len(ids)
            try:
                if batch:
                    r = http.post("/v1/events/batch", json={"events": events})
                    if r.status_code == 200:
                        acked += [
                            it["id"]
                            for it in r.json()["results"]
                            if it["status"] in ("created", "duplicate")
                        ]
                else:
                    r = http.post("/v1/events", json=events[0])
                    if r.status_code in (200, 201):
                        acked.append(ids[0])
            except httpx.HTTPError:
                return  # the server died under us: whatever was acked is recorded


@pytest.mark.parametrize("round_no", range(2))
def test_sigkill_loses_no_acknowledged_event(
    server: Server, seeded: dict[str, Any], round_no: int
) -> None:
    server.start()
    acked: dict[str, list[str]] = {"a": [], "b": []}
    stop = threading.Event()
    threads = []
    for client_no in range(8):
        tenant = "a" if client_no % 2 == 0 else "b"
        t = threading.Thread(
            target=_writer,
            args=(
                server.url,
                seeded[f"{tenant}_writer"],
                client_no,
                acked[tenant],
                stop,
                client_no % 4 < 2,
            ),
            daemon=True,
        )
        threads.append(t)
        t.start()
    time.sleep(1.0 + round_no * 0.7)
    # A checkpoint signed before the crash, which the log must go on extending.
    before = wait_checkpoint(server.url, seeded["a_reader"], 1)
    time.sleep(0.5)
    server.kill()  # SIGKILL, mid-stream
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert sum(len(v) for v in acked.values()) > 100, "the load never got going"

    server.start()
    for tenant in ("a", "b"):
        stored = all_events(server.url, seeded[f"{tenant}_reader"])
        stored_ids = {e["id"] for e in stored}
        missing = set(acked[tenant]) - stored_ids
        assert not missing, f"{len(missing)} acknowledged events lost in tenant {tenant}"
        seqs = sorted(e["seq"] for e in stored)
        assert seqs == list(range(len(seqs))), "seqs must be gapless from 0"
        assert all(e["tenant_id"] == tenant for e in stored)
        assert len(stored_ids) == len(stored), "no duplicates"
        _assert_tree_matches(server.url, seeded[f"{tenant}_reader"], tenant, stored)
    _assert_extends(server.url, seeded["a_reader"], before)

    # The restarted server continues the sequence where the survivors stopped.
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/v1/events",
            json={"action": "after.restart", "actor": {"id": "x"}},
            headers={"Authorization": f"Bearer {seeded['a_writer']}"},
        )
    assert r.status_code == 201
    assert r.json()["seq"] == len(all_events(server.url, seeded["a_reader"])) - 1


def _get(url: str, token: str, path: str) -> httpx.Response:
    return httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _assert_tree_matches(url: str, token: str, tenant: str, stored: list[dict[str, Any]]) -> None:
    """Stored tiles == tree recomputed from the stored events == the signed checkpoint."""
    events = sorted(stored, key=lambda e: e["seq"])
    recomputed = merkle.root_from_leaf_hashes([merkle.leaf_hash(canonical_json(e)) for e in events])
    size = len(events)

    def tile(level: int, index: int) -> bytes:
        width = min(TILE_WIDTH, (size >> (8 * level)) - index * TILE_WIDTH)
        r = _get(url, token, f"/v1/tenants/{tenant}/log/{tile_path(level, index, width)}")
        assert r.status_code == 200, r.text
        return r.content

    assert merkle.root_from_nodes(size, TileNodes(tile)) == recomputed
    # After the restart the signer catches up: its checkpoint is the recomputed tree.
    checkpoint = wait_checkpoint(url, token, size)
    assert checkpoint["tree_size"] == size
    assert base64.b64decode(checkpoint["root_hash"]) == recomputed


def _assert_extends(url: str, token: str, before: dict[str, Any]) -> None:
    after = wait_checkpoint(url, token, before["tree_size"])
    query = f"from={before['tree_size']}&to={after['tree_size']}"
    r = _get(url, token, f"/v1/proofs/consistency?{query}")
    assert r.status_code == 200, r.text
    proof = [base64.b64decode(h) for h in r.json()["proof"]]
    assert merkle.verify_consistency(
        before["tree_size"],
        after["tree_size"],
        base64.b64decode(before["root_hash"]),
        base64.b64decode(after["root_hash"]),
        proof,
    )
