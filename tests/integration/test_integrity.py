"""Tamper evidence through the API, on both backends: the leaf of an event is the hash of
exactly what GET returns, checkpoints are signed and verifiable with the served key,
proofs and tiles check out against them with the pure reference (kit/merkle.py), and
bad requests are 4xx naming the problem.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import pytest

from tests.conftest import World, event
from trailkeep.integrity.checkpoint import Checkpoint, open_checkpoint
from trailkeep.integrity.note import parse_verifier
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.tiles import TILE_WIDTH, TileNodes, tile_path

ORIGIN = "trailkeep.test/t/acme"


def b64d(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def ingest(world: World, tenant: str, count: int, start: int = 0) -> list[str]:
    ids = []
    for first in range(start, start + count, 500):
        batch = [
            event(
                "doc.update",
                f"u{i % 7}",
                id=f"{tenant}-{i}",
                message=f"édité n°{i} ✓",
                metadata={"n": i, "ratio": i / 4, "big": 4.5e15, "tiny": 1e-7, "deep": {"x": [i]}},
            )
            for i in range(first, min(start + count, first + 500))
        ]
        r = world.client.post(
            "/v1/events/batch", json={"events": batch}, headers=world.h(tenant, "writer")
        )
        assert r.status_code == 200 and r.json()["created"] == len(batch), r.text
        ids += [e["id"] for e in batch]
    return ids


def wait_checkpoint(world: World, size: int, tenant: str = "acme") -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = world.client.get("/v1/checkpoint", headers=world.h(tenant, "reader"))
        if r.status_code == 200 and r.json()["tree_size"] >= size:
            body: dict[str, Any] = r.json()
            return body
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of size {size}: {r.status_code} {r.text}")


def verifier(world: World, tenant: str = "acme") -> Any:
    r = world.client.get("/v1/integrity/key", headers=world.h(tenant, "reader"))
    assert r.status_code == 200, r.text
    assert r.json()["origin"] == r.json()["key_name"] == f"trailkeep.test/t/{tenant}"
    return parse_verifier(r.json()["vkey"])


def opened(world: World, note: str) -> Checkpoint:
    return open_checkpoint(note, [verifier(world)], origin=ORIGIN)


async def _get_bodies(app: Any, paths: list[str], headers: dict[str, str]) -> list[bytes]:
    """The body of a GET of each path from the app, answered 200, a few at a time."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        gate = asyncio.Semaphore(4)  # fewer than the PostgreSQL pool's connections

        async def get(path: str) -> bytes:
            async with gate:
                r = await http.get(path, headers=headers)
            assert r.status_code == 200, r.text
            return r.content

        return list(await asyncio.gather(*map(get, paths)))


def stored_leaves(world: World) -> list[bytes]:
    """Leaf hashes recomputed from the raw bytes GET /v1/events/{id} returns.

    The GETs (up to 900 a call) go to the same app on its own event loop, a few at a
    time, not one by one through the TestClient's hop between threads (~3 ms each)."""
    events = sorted(world.all_events("acme"), key=lambda e: e["seq"])
    paths = [f"/v1/events/{e['id']}" for e in events]
    assert world.client.portal is not None
    app, headers = world.client.app, world.h("acme", "reader")
    bodies = world.client.portal.call(_get_bodies, app, paths, headers)
    leaves = []
    for e, raw in zip(events, bodies, strict=True):
        # The body served is exactly the RFC 8785 form of the object it holds.
        assert raw == canonical_json(e)
        leaves.append(merkle.leaf_hash(raw))
    return leaves


def test_checkpoints_proofs_and_tiles_verify(world: World) -> None:
    r = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader"))
    assert r.status_code == 404 and "no checkpoint yet" in r.json()["error"]["message"]
    ids = ingest(world, "acme", 600)
    first = wait_checkpoint(world, 600)
    leaves = stored_leaves(world)
    assert len(leaves) == 600
    cp = opened(world, first["note"])
    assert (cp.size, cp.root_hash) == (600, merkle.root_from_leaf_hashes(leaves))
    assert b64d(first["root_hash"]) == cp.root_hash and first["origin"] == ORIGIN
    # The same note as text, from both addresses.
    for url, headers in [
        ("/v1/checkpoint", {"Accept": "text/plain"}),
        ("/v1/checkpoint?format=note", {}),
        ("/v1/tenants/acme/log/checkpoint", {}),
    ]:
        r = world.client.get(url, headers={**world.h("acme", "reader"), **headers})
        assert r.status_code == 200 and r.text == first["note"], url
        assert r.headers["content-type"].startswith("text/plain")

    # Inclusion proofs against the latest checkpoint and against explicit sizes.
    for seq in (0, 1, 255, 256, 511, 599):
        r = world.client.get(f"/v1/events/{ids[seq]}/proof", headers=world.h("acme", "reader"))
        assert r.status_code == 200, r.text
        p = r.json()
        assert (p["seq"], p["tree_size"], p["checkpoint"]) == (seq, 600, first["note"])
        assert b64d(p["leaf_hash"]) == leaves[seq]
        proof = [b64d(h) for h in p["proof"]]
        assert merkle.verify_inclusion(leaves[seq], seq, 600, proof, cp.root_hash)
        size = seq + 1 + (seq * 7) % (600 - seq)
        r = world.client.get(
            f"/v1/events/{ids[seq]}/proof?size={size}", headers=world.h("acme", "reader")
        )
        p = r.json()
        root = merkle.root_from_leaf_hashes(leaves[:size])
        assert b64d(p["root_hash"]) == root
        assert merkle.verify_inclusion(leaves[seq], seq, size, [b64d(h) for h in p["proof"]], root)

    # More events: a second checkpoint, consistent with the first; both are kept.
    ids += ingest(world, "acme", 300, start=600)
    second = wait_checkpoint(world, 900)
    leaves = stored_leaves(world)
    cp2 = opened(world, second["note"])
    assert cp2.root_hash == merkle.root_from_leaf_hashes(leaves)
    r = world.client.get(
        f"/v1/proofs/consistency?from={cp.size}", headers=world.h("acme", "reader")
    )
    c = r.json()
    assert (c["from"], c["to"], c["checkpoint"]) == (600, cp2.size, second["note"])
    proof = [b64d(h) for h in c["proof"]]
    assert merkle.verify_consistency(600, cp2.size, cp.root_hash, cp2.root_hash, proof)
    assert not merkle.verify_consistency(600, cp2.size, leaves[0], cp2.root_hash, proof)
    r = world.client.get(f"/v1/events/{ids[3]}/proof?size=600", headers=world.h("acme", "reader"))
    assert r.json()["checkpoint"] == first["note"], "old checkpoints stay retrievable"
    for first_size, second_size in [(900, 900), (1, 2), (256, 257), (1, 900)]:
        r = world.client.get(
            f"/v1/proofs/consistency?from={first_size}&to={second_size}",
            headers=world.h("acme", "reader"),
        )
        assert r.status_code == 200, r.text
        c = r.json()
        assert merkle.verify_consistency(
            first_size,
            second_size,
            merkle.root_from_leaf_hashes(leaves[:first_size]),
            merkle.root_from_leaf_hashes(leaves[:second_size]),
            [b64d(h) for h in c["proof"]],
        )

    # tlog-tiles: any client can compute the root (and every proof) from the tiles.
    fetched: dict[tuple[int, int], bytes] = {}

    def get_tile(level: int, index: int) -> bytes:
        entries = cp2.size >> (8 * level)
        width = min(TILE_WIDTH, entries - index * TILE_WIDTH)
        r = world.client.get(
            f"/v1/tenants/acme/log/{tile_path(level, index, width)}",
            headers=world.h("acme", "reader"),
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/octet-stream"
        assert len(r.content) == 32 * width
        fetched[(level, index)] = r.content
        return r.content

    assert merkle.root_from_nodes(cp2.size, TileNodes(get_tile)) == cp2.root_hash
    assert get_tile(0, 0) == b"".join(leaves[:256])
    # A narrower partial tile is a prefix of the full one.
    r = world.client.get("/v1/tenants/acme/log/tile/0/001.p/5", headers=world.h("acme", "reader"))
    assert r.content == b"".join(leaves[256:261])


def test_integrity_requests_are_scoped_to_the_tenant(world: World) -> None:
    ingest(world, "acme", 3)
    wait_checkpoint(world, 3)
    wait_checkpoint(world, 5, tenant="globex")
    acme = world.h("acme", "reader")
    # Another tenant's event, tiles and checkpoint: never visible.
    r = world.client.get("/v1/events/globex-1/proof", headers=acme)
    assert r.status_code == 404
    r = world.client.get("/v1/tenants/globex/log/tile/0/000.p/5", headers=acme)
    assert r.status_code == 403
    r = world.client.get("/v1/tenants/globex/log/checkpoint", headers=acme)
    assert r.status_code == 403
    r = world.client.get("/v1/checkpoint?tenant_id=globex", headers=acme)
    assert r.status_code == 403
    # Each tenant's checkpoints are signed under its own origin, the same key.
    globex = world.client.get("/v1/checkpoint", headers=world.h("globex", "reader")).json()
    assert globex["origin"] == "trailkeep.test/t/globex" and globex["tree_size"] == 5
    with pytest.raises(ValueError):
        opened(world, globex["note"])  # acme's verifier does not accept globex's note
    # A platform admin names the tenant.
    r = world.client.get("/v1/checkpoint", headers=world.admin)
    assert r.status_code == 400 and "tenant_id" in r.text
    r = world.client.get("/v1/checkpoint?tenant_id=acme", headers=world.admin)
    assert r.status_code == 200 and r.json()["tree_size"] == 3
    r = world.client.get("/v1/integrity/key?tenant_id=nobody", headers=world.admin)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/v1/events/acme-0/proof?size=4", 400, "only 3 leaves"),
        ("/v1/events/acme-2/proof?size=2", 400, "seq 2"),
        ("/v1/events/acme-0/proof?size=0", 422, "size"),
        ("/v1/events/acme-0/proof?size=-1", 422, "size"),
        ("/v1/events/acme-0/proof?size=99999999999999999999999", 422, "size"),
        ("/v1/events/acme-0/proof?size=abc", 422, "size"),
        ("/v1/events/nope/proof", 404, "not found"),
        ("/v1/events/%00/proof", 404, "not found"),
        ("/v1/proofs/consistency?from=2&to=1", 400, "never shrinks"),
        ("/v1/proofs/consistency?from=1&to=4", 400, "only 3 leaves"),
        ("/v1/proofs/consistency?from=4", 400, "never shrinks"),
        ("/v1/proofs/consistency?from=-5", 422, "from"),
        ("/v1/proofs/consistency", 422, "from"),
        ("/v1/proofs/consistency?from=1&to=1e3", 422, "to"),
        ("/v1/checkpoint?format=xml", 400, "format"),
        ("/v1/tenants/acme/log/tile/0/000.p/4", 404, "holds 3 hashes"),
        ("/v1/tenants/acme/log/tile/0/000", 404, "not full"),
        ("/v1/tenants/acme/log/tile/0/001.p/1", 404, "holds 0"),
        ("/v1/tenants/acme/log/tile/0/1", 400, "three digits"),
        ("/v1/tenants/acme/log/tile/0/000.p/300", 400, "1 to 255"),
        ("/v1/tenants/acme/log/tile/9/000", 400, "tile level"),
        ("/v1/tenants/acme/log/tile/x/000", 400, "tile level"),
        ("/v1/tenants/acme/log/tile/0/x999/x999/x999/x999/x999/x999/x999/999", 400, "groups"),
        ("/v1/tenants/acme/log/tile/entries/000", 404, "entry bundle 0 is not full"),
        ("/v1/proofs/consistency?from=0", 400, "RFC 9162"),
    ],
)
def test_bad_integrity_requests_are_4xx_naming_the_problem(
    world: World, url: str, status: int, words: str
) -> None:
    ingest(world, "acme", 3)
    wait_checkpoint(world, 3)
    r = world.client.get(url, headers=world.h("acme", "reader"))
    assert r.status_code == status, r.text
    assert words in r.text
    assert r.json()["error"]["code"]


def test_an_event_jcs_cannot_hash_exactly_is_refused(world: World) -> None:
    r = world.post("acme", event(metadata={"n": 2**53}))
    assert r.status_code == 422 and "outside ±(2**53-1)" in r.text
    r = world.post("acme", event(metadata={"n": 2**53 - 1, "f": 0.5}))
    assert r.status_code == 201
    assert b'"f":0.5' in r.content and b'"n":9007199254740991' in r.content
    assert len(world.all_events("acme")) == 1


def test_a_deleted_tenants_signed_log_id_is_never_reused(world: World) -> None:
    r = world.client.post("/v1/tenants", json={"id": "gone"}, headers=world.admin)
    assert r.status_code == 201
    r = world.client.post("/v1/tenants", json={"id": "gone2"}, headers=world.admin)
    for tenant in ("gone", "gone2"):
        key = world.client.post(
            f"/v1/tenants/{tenant}/api-keys",
            json={"role": "tenant_admin", "name": "w"},
            headers=world.admin,
        ).json()["token"]
        world.keys[tenant] = {"writer": key, "reader": key}
    ingest(world, "gone", 2)
    wait_checkpoint(world, 2, tenant="gone")
    for tenant in ("gone", "gone2"):
        assert world.client.delete(f"/v1/tenants/{tenant}", headers=world.admin).status_code == 204
    r = world.client.post("/v1/tenants", json={"id": "gone"}, headers=world.admin)
    assert r.status_code == 409 and "never reused" in r.text
    # A deleted tenant that never had a signed log can be created again.
    r = world.client.post("/v1/tenants", json={"id": "gone2"}, headers=world.admin)
    assert r.status_code == 201


def test_the_signer_refuses_a_tree_that_does_not_extend_its_checkpoint(world: World) -> None:
    ingest(world, "acme", 300)
    wait_checkpoint(world, 300)
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    signer = world.client.app.state.signer  # type: ignore[attr-defined]

    # Someone with database access rewrites the hash of the first 256 leaves (the
    # level-1 tile), which every later root is computed from.
    def tamper(conn: Any) -> None:
        conn.execute(
            "UPDATE merkle_tiles SET hashes = ? WHERE tenant_id = ? AND level = 1 AND idx = 0",
            (bytes(32), "acme"),
        )

    world.client.portal.call(store._write, tamper)  # type: ignore[union-attr]
    ingest(world, "acme", 2, start=300)
    deadline = time.monotonic() + 10
    while "acme" not in signer.faults and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "does not extend the checkpoint at size 300" in signer.faults["acme"]
    time.sleep(0.2)
    r = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader"))
    assert r.json()["tree_size"] == 300, "nothing inconsistent was signed"


def test_every_checkpoint_is_kept_and_listed_newest_first(world: World) -> None:
    for start, count in [(0, 3), (3, 2), (5, 1)]:
        ingest(world, "acme", count, start=start)
        wait_checkpoint(world, start + count)
    reader = world.h("acme", "reader")
    page = world.client.get("/v1/checkpoints?limit=2", headers=reader).json()
    assert [c["tree_size"] for c in page["data"]] == [6, 5] and page["next_before"] == 5
    rest = world.client.get("/v1/checkpoints?limit=2&before=5", headers=reader).json()
    assert [c["tree_size"] for c in rest["data"]] == [3] and rest["next_before"] is None
    for c in page["data"] + rest["data"]:
        assert opened(world, c["note"]).size == c["tree_size"]
    r = world.client.get("/v1/checkpoints?before=0", headers=reader)
    assert r.status_code == 422
    r = world.client.get("/v1/checkpoints?tenant_id=globex", headers=reader)
    assert r.status_code == 403
