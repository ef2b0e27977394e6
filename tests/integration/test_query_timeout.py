"""A read that runs past TRAILKEEP_QUERY_TIMEOUT_MS is stopped by the database (SQLite:
a progress handler; PostgreSQL: statement_timeout of read connections) and becomes a
400 query_timeout, after which the store serves reads as before."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import World
from trailkeep.errors import QueryTimeout

# Counts to a billion: minutes on either database, unless stopped.
SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000)"
    " SELECT COUNT(*) FROM n"
)


@pytest.mark.settings(query_timeout_ms=200)
def test_a_slow_read_is_stopped_and_the_store_goes_on(world: World) -> None:
    store: Any = world.client.app.state.services.store  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 200 ms"):
        world.client.portal.call(store._read, lambda conn: conn.execute(SLOW).fetchone())  # type: ignore[union-attr]
    assert time.monotonic() - started < 5
    r = world.list("globex", q="secret")
    assert r.status_code == 200
    assert QueryTimeout.status == 400 and QueryTimeout.code == "query_timeout"
