"""Events for any month land: a late import from years ago, next week's clock skew.

On PostgreSQL each lands in a monthly partition of its own month, created on demand
when it did not exist.
"""

from __future__ import annotations

import psycopg

from tests import backends
from tests.conftest import World, event

LATE = "2019-03-05T10:00:00Z"


def test_an_event_for_an_old_month_still_lands(world: World) -> None:
    r = world.post("acme", event("import.legacy", id="from-2019", occurred_at=LATE))
    assert r.status_code == 201, r.text
    assert r.json()["occurred_at"].startswith("2019-03-05T10:00:00")
    now = world.post("acme", event("user.login", id="from-now"))
    assert now.status_code == 201
    got = world.client.get("/v1/events/from-2019", headers=world.h("acme", "reader"))
    assert got.status_code == 200 and got.json()["seq"] == 0
    march = world.list(
        "acme", occurred_after="2019-03-01T00:00:00Z", occurred_before="2019-04-01T00:00:00Z"
    ).json()["data"]
    assert [e["id"] for e in march] == ["from-2019"]
    # Newest first across months: today's event, then the 2019 one.
    assert [e["id"] for e in world.all_events("acme")] == ["from-now", "from-2019"]
    if backends.current_url is not None:
        with psycopg.connect(backends.current_url) as conn:
            found = conn.execute(
                "SELECT tableoid::regclass::text FROM events WHERE id = 'from-2019'"
            ).fetchone()
        assert found == ("events_p201903",)
