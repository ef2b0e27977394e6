"""Reading many tiles at once: an archive segment's leaves span more tiles than SQLite
allows terms in one compound SELECT (500), so get_tiles reads them in bounded chunks."""

from __future__ import annotations

from tests.conftest import World
from trailkeep.kit.tiles import TileId
from trailkeep.store.tree import tiles_sql


def test_more_tiles_than_one_query_can_name(world: World) -> None:
    for start in range(0, 2000, 1000):
        events = [
            {"action": "a.b", "actor": {"id": "u"}, "id": f"e{i}"}
            for i in range(start, start + 1000)
        ]
        r = world.client.post(
            "/v1/events/batch", json={"events": events}, headers=world.h("acme", "writer")
        )
        assert r.status_code == 200
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    wanted: list[TileId] = [(0, i) for i in range(1200)]  # 8 exist (the last partial)

    async def read() -> dict[TileId, bytes]:
        return await store._read(lambda conn: tiles_sql.get_tiles(conn, "acme", wanted))

    assert world.client.portal is not None
    found = world.client.portal.call(read)
    assert sorted(found) == [(0, i) for i in range(8)]
    assert all(len(found[(0, i)]) == 256 * 32 for i in range(7))
    assert len(found[(0, 7)]) == (2000 - 7 * 256) * 32
