"""PostgreSQL keeps one row per seq and one per id across every monthly partition
(issue 14 item 4): a row written straight into the database with a taken seq or a taken
id is refused, so a page of events can never end early on a duplicate."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import World, event

pytestmark = pytest.mark.postgres_only

MONTH_US = 32 * 86_400 * 1_000_000  # next month: a partition made ahead of time


def _row(conn: psycopg.Connection[Any], seq: int) -> tuple[Any, ...]:
    found = conn.execute(
        "SELECT tenant_id, seq, id, occurred_at, received_at, action, actor_id, actor_type,"
        " severity, outcome, request_hash, body FROM events WHERE tenant_id = 'acme'"
        " AND seq = %s",
        (seq,),
    ).fetchone()
    assert found is not None
    return tuple(found)


def _insert(conn: psycopg.Connection[Any], row: tuple[Any, ...]) -> None:
    conn.execute(
        "INSERT INTO events (tenant_id, seq, id, occurred_at, received_at, action, actor_id,"
        " actor_type, severity, outcome, request_hash, body)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        row,
    )


def test_a_second_row_for_a_seq_or_an_id_is_refused(world: World) -> None:
    for i in range(3):
        assert world.post("acme", event(id=f"e{i}")).status_code == 201
    url = world.settings.database_url
    assert url is not None
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:  # each block its own transaction
        original = _row(conn, 1)
        # the same seq, another month (so another partition, where the primary key of
        # (tenant_id, occurred_at, seq) cannot see the first row)
        moved = list(original)
        moved[3] = original[3] + MONTH_US
        # without the constraint this row goes in (its own partition takes it)
        with conn.transaction():
            conn.execute("SET CONSTRAINTS fk_events_event_ids IMMEDIATE")
            conn.execute("ALTER TABLE events DROP CONSTRAINT fk_events_event_ids")
            _insert(conn, tuple(moved))
            raise_rollback = psycopg.Rollback()
            raise raise_rollback
        for row, also_ids in ((moved, False), (moved, True)):
            with pytest.raises(psycopg.errors.IntegrityError), conn.transaction():
                _insert(conn, tuple(row))
                if also_ids:
                    conn.execute(
                        "INSERT INTO event_ids (tenant_id, seq, id, occurred_at)"
                        " VALUES (%s, %s, %s, %s)",
                        (row[0], row[1], row[2], row[3]),
                    )
        # a taken id under a new seq
        renumbered = list(original)
        renumbered[1] = 99
        with pytest.raises(psycopg.errors.IntegrityError), conn.transaction():
            _insert(conn, tuple(renumbered))
            conn.execute(
                "INSERT INTO event_ids (tenant_id, seq, id, occurred_at) VALUES (%s, %s, %s, %s)",
                (renumbered[0], 99, renumbered[2], renumbered[3]),
            )
    page = world.client.get("/v1/events", params={"limit": 2}, headers=world.h("acme", "reader"))
    assert [e["seq"] for e in page.json()["data"]] == [2, 1]
    rest = world.client.get(
        "/v1/events",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=world.h("acme", "reader"),
    )
    assert [e["seq"] for e in rest.json()["data"]] == [0]
