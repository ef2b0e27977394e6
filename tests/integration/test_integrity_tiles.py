"""tlog-tiles to the letter, through the API on both backends: entry bundles a standard
client can check against the level-0 tiles and the signed root, one spelling per tile
path (any other a 400 naming the problem), and proofs for sizes RFC 9162 has no proof
for, or the store cannot hold, a clear 4xx.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, event
from tests.integration.test_integrity import b64d, opened, wait_checkpoint
from trailkeep.kit import merkle
from trailkeep.kit.tiles import TILE_WIDTH, entries_path

BIG = "x009/x223/x372/x036/x854/x775/808"  # 2**63


def ingest(world: World, tenant: str, count: int) -> None:
    """``count`` events ``<tenant>-<i>`` (plain values, so this file depends on no rule
    about numbers)."""
    for first in range(0, count, 500):
        batch = [
            event("doc.update", f"u{i % 7}", id=f"{tenant}-{i}", message=f"édité n°{i} ✓")
            for i in range(first, min(count, first + 500))
        ]
        r = world.client.post(
            "/v1/events/batch", json={"events": batch}, headers=world.h(tenant, "writer")
        )
        assert r.status_code == 200 and r.json()["created"] == len(batch), r.text[:500]


def split_bundle(data: bytes) -> list[bytes]:
    """A C2SP entry bundle: big-endian uint16 length, then the entry, repeated."""
    entries, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 2], "big")
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    assert at == len(data), "the bundle ends inside an entry"
    return entries


def stored_bodies(world: World, tenant: str) -> list[bytes]:
    events = sorted(world.all_events(tenant), key=lambda e: e["seq"])
    headers = world.h(tenant, "reader")
    return [
        world.client.get(f"/v1/events/{e['id']}?form=stored", headers=headers).content
        for e in events
    ]


def test_entry_bundles_hash_to_the_level0_tiles_and_the_signed_root(world: World) -> None:
    ingest(world, "acme", 300)
    cp = opened(world, wait_checkpoint(world, 300)["note"])
    reader = world.h("acme", "reader")
    entries: list[bytes] = []
    for index, width in [(0, TILE_WIDTH), (1, 300 - TILE_WIDTH)]:
        r = world.client.get(f"/v1/tenants/acme/log/{entries_path(index, width)}", headers=reader)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/octet-stream"
        assert "immutable" in r.headers["cache-control"]
        bundle = split_bundle(r.content)
        assert len(bundle) == width
        tile = world.client.get(
            f"/v1/tenants/acme/log/tile/0/00{index}" + ("" if width == 256 else f".p/{width}"),
            headers=reader,
        ).content
        assert b"".join(merkle.leaf_hash(e) for e in bundle) == tile
        entries += bundle
    # The entries are exactly the stored events, and a client rebuilds the signed root.
    assert entries == stored_bodies(world, "acme")
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries]) == cp.root_hash
    # A narrower partial bundle is a prefix.
    r = world.client.get("/v1/tenants/acme/log/tile/entries/001.p/3", headers=reader)
    assert split_bundle(r.content) == entries[256:259]
    # Served gzip-compressed to a client that takes it (the spec's SHOULD), plain else.
    assert r.headers["content-encoding"] == "gzip"
    plain = world.client.get(
        "/v1/tenants/acme/log/tile/entries/001.p/3",
        headers={**reader, "Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers and plain.content == r.content
    # Not there yet: a 404 naming how much exists, as for tiles.
    for path, words in [
        ("tile/entries/001", "not full yet (the log has 44 of its entries)"),
        ("tile/entries/001.p/45", "not 45 entries wide yet"),
        ("tile/entries/002.p/1", "the log has 0 of its entries"),
        ("tile/entries/x036/x028/x797/x018/x963/967", "not full yet"),
    ]:
        r = world.client.get(f"/v1/tenants/acme/log/{path}", headers=reader)
        assert r.status_code == 404 and words in r.json()["error"]["message"], (path, r.text)


def test_entry_bundles_are_scoped_like_tiles(world: World) -> None:
    wait_checkpoint(world, 5, tenant="globex")
    bundle = "/v1/tenants/globex/log/tile/entries/000.p/5"
    tile = "/v1/tenants/globex/log/tile/0/000.p/5"
    served = world.client.get(bundle, headers=world.h("globex", "reader"))
    assert served.status_code == 200 and len(split_bundle(served.content)) == 5
    # Exactly as the tile of the same leaves: another tenant's credential, a role that
    # may not read events, no credential.
    for headers, status in [
        (world.h("acme", "reader"), 403),
        (world.h("acme", "tenant_admin"), 403),
        (world.h("globex", "writer"), 403),
        ({}, 401),
    ]:
        r = world.client.get(bundle, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert world.client.get(tile, headers=headers).status_code == status
    r = world.client.get(bundle, headers=world.admin)
    assert r.status_code == 200 and r.content == served.content
    r = world.client.get("/v1/tenants/nobody/log/tile/entries/000.p/1", headers=world.admin)
    assert r.status_code == 404


def _tamper(world: World, sql: str, *params: Any) -> None:
    store = world.client.app.state.services.store  # type: ignore[attr-defined]

    def run(conn: Any) -> None:
        conn.execute(sql, params)

    world.client.portal.call(store._write, run)  # type: ignore[union-attr]


def test_an_entry_bundle_is_never_served_over_a_tampered_body(world: World) -> None:
    ingest(world, "acme", 10)
    wait_checkpoint(world, 10)
    reader = world.h("acme", "reader")
    body = stored_bodies(world, "acme")[3]
    _tamper(
        world,
        "UPDATE events SET body = ? WHERE tenant_id = ? AND seq = ?",
        body.replace(b"doc.update", b"doc.delete"),
        "acme",
        3,
    )
    r = world.client.get("/v1/tenants/acme/log/tile/entries/000.p/10", headers=reader)
    assert r.status_code == 500
    assert "seq 3 does not hash to its leaf" in r.json()["error"]["message"]
    _tamper(world, "DELETE FROM events WHERE tenant_id = ? AND seq = ?", "acme", 5)
    r = world.client.get("/v1/tenants/acme/log/tile/entries/000.p/10", headers=reader)
    assert r.status_code == 500
    # The bundle before the edits is still fine.
    r = world.client.get("/v1/tenants/acme/log/tile/entries/000.p/3", headers=reader)
    assert r.status_code == 200 and len(split_bundle(r.content)) == 3


NON_CANONICAL = [
    ("tile/00/000", "tile level '00' must be 0 to 7, without leading zeros"),
    ("tile/01/000", "leading zeros"),
    ("tile/8/000", "tile level '8' must be 0 to 7"),
    ("tile/-0/000", "tile level"),
    ("tile/0/x000/001", "superfluous leading group 'x000': its only spelling is '001'"),
    ("tile/0/x000/x001/000", "its only spelling is 'x001/000'"),
    ("tile/1/x000/000", "superfluous"),
    ("tile/entries/x000/001", "superfluous"),
    ("tile/0/01", "three digits"),
    ("tile/0/0001", "three digits"),
    ("tile/0/x01/000", "three digits"),
    ("tile/0/001/002", "three digits ('x'-prefixed but the last)"),
    ("tile/0/x001", "three digits"),
    ("tile/0/000/", "three digits"),
    ("tile/0/%D9%A3%D9%A3%D9%A3", "three digits"),  # Arabic-Indic digits
    ("tile/entries/1", "three digits"),
    ("tile/0/000.p/05", "partial tile width '05' must be 1 to 255, without leading zeros"),
    ("tile/0/000.p/0", "1 to 255"),
    ("tile/0/000.p/256", "1 to 255"),
    ("tile/0/000.p/+5", "1 to 255"),
    ("tile/0/000.p/", "1 to 255"),
    ("tile/entries/000.p/0", "1 to 255"),
    ("tile/entries/000.p/007", "1 to 255"),
    # Indexes no tree of up to 2**63 - 1 leaves has: never a 500 (they overflowed the
    # SQLite integer binding before).
    (f"tile/0/{BIG}", "tile index 9223372036854775808 is beyond any tree this log can hold"),
    (f"tile/0/{BIG}.p/5", "beyond any tree"),
    (f"tile/3/{BIG}", "beyond any tree"),
    (f"tile/7/{BIG}.p/1", "beyond any tree"),
    ("tile/0/x999/x999/x999/x999/x999/x999/999", "beyond any tree"),
    ("tile/0/x036/x028/x797/x018/x963/968", "level 0 tiles go up to index 36028797018963967"),
    ("tile/7/001", "level 7 tiles go up to index 0"),
    (f"tile/entries/{BIG}", "beyond any tree"),
    (f"tile/entries/{BIG}.p/5", "beyond any tree"),
    ("tile/0/x999/x999/x999/x999/x999/x999/x999/999", "1 to 7 groups"),
]


@pytest.mark.parametrize("tenant", ["acme", "globex"])  # empty, and with events
@pytest.mark.parametrize(("path", "words"), NON_CANONICAL)
def test_non_canonical_tile_paths_are_400_naming_the_problem(
    world: World, tenant: str, path: str, words: str
) -> None:
    r = world.client.get(f"/v1/tenants/{tenant}/log/{path}", headers=world.h(tenant, "reader"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    assert words in r.json()["error"]["message"], r.text


def test_the_largest_tile_indexes_are_404_until_the_tree_has_them(world: World) -> None:
    reader = world.h("acme", "reader")
    for path in [
        "tile/0/x036/x028/x797/x018/x963/967",
        "tile/0/x036/x028/x797/x018/x963/967.p/255",
        "tile/6/127",
        "tile/7/000",
        "tile/7/000.p/1",
        "tile/0/000",
    ]:
        r = world.client.get(f"/v1/tenants/acme/log/{path}", headers=reader)
        assert r.status_code == 404 and "holds 0 hashes" in r.text, (path, r.text)


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("from=0", 400, "RFC 9162 defines no consistency proof from the empty tree"),
        ("from=0&to=0", 400, "from the empty tree"),
        ("from=0&to=3", 400, "from >= 1"),
        (f"from={2**63}", 422, "from"),
        (f"from=1&to={2**63}", 422, "to"),
        (f"from={2**64 + 1}", 422, "from"),
        ("from=-1", 422, "from"),
        (f"from=-{2**63}", 422, "from"),
        ("from=1.5", 422, "from"),
        ("from=1e3", 422, "from"),
        ("from=0x10", 422, "from"),
        ("from=" + "9" * 5000, 422, "from"),
        (f"from={2**63 - 1}", 400, "never shrinks"),
        (f"from=1&to={2**63 - 1}", 400, "only 3 leaves"),
        ("from=3&to=3", 200, '"proof":[]'),
    ],
)
def test_consistency_proofs_for_sizes_with_no_proof_are_4xx(
    world: World, query: str, status: int, words: str
) -> None:
    ingest(world, "acme", 3)
    wait_checkpoint(world, 3)
    r = world.client.get(f"/v1/proofs/consistency?{query}", headers=world.h("acme", "reader"))
    assert r.status_code == status, r.text
    assert words in r.text


@pytest.mark.parametrize(
    ("size", "status"),
    [(2**63, 422), (2**63 - 1, 400), (-1, 422), ("1.5", 422), ("9" * 5000, 422), (3, 200)],
)
def test_inclusion_proofs_for_absurd_sizes_are_4xx(
    world: World, size: int | str, status: int
) -> None:
    ingest(world, "acme", 3)
    wait_checkpoint(world, 3)
    r = world.client.get(f"/v1/events/acme-0/proof?size={size}", headers=world.h("acme", "reader"))
    assert r.status_code == status, r.text
    if status != 200:
        assert "size" in r.text and r.json()["error"]["code"]
    else:
        assert b64d(r.json()["leaf_hash"])
