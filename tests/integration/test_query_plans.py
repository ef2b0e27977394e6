"""Every filter walks an index in order: no query sorts the tenant's matching rows.

The SQL that list_events runs is captured and each statement's EXPLAIN QUERY PLAN is
checked: a single-branch page must not use a temporary B-tree for ORDER BY (that would
mean reading and sorting every match), and must search, not scan, its table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trailkeep.kit.query_ast import TextMatch, TextValue
from trailkeep.query.filter import EventFilter
from trailkeep.store.migrations.runner import upgrade
from trailkeep.store.models import PageKey
from trailkeep.store.reads.events import list_events
from trailkeep.store.sqlite.connection import open_connection
from trailkeep.store.sqlite.store import SQLITE
from trailkeep.store.urls import parse_database_url

# SQLite's planner, read through EXPLAIN QUERY PLAN; PostgreSQL's: test_pg_query_plans.py.
pytestmark = pytest.mark.sqlite_only

FILTERS = {
    "none": {},
    "actor": {"actor_id": "u1"},
    "action": {"action": "user.login"},
    "prefix": {"action_prefix": "user."},
    "severity": {"min_severity": 3},
    "outcome": {"outcome": "failure"},
    "target type": {"target_type": "document"},
    "target id": {"target_type": "document", "target_id": "d1"},
    "time range": {"occurred_from": 10, "occurred_to": 10_000},
    "action and outcome": {"action": "user.login", "outcome": "failure"},
    "prefix and severity": {"action_prefix": "user.", "min_severity": 2},
    "severity and outcome": {"min_severity": 4, "outcome": "failure"},
}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "plans.db"
    upgrade(parse_database_url(f"sqlite:///{path}"))
    db = open_connection(path)
    rows = []
    targets = []
    for seq in range(300):
        action = ("user.login", "user.logout", "document.update")[seq % 3]
        rows.append(
            (
                "acme",
                seq,
                f"e{seq}",
                seq * 10,
                seq * 10,
                action,
                f"u{seq % 7}",
                "service" if seq % 11 == 0 else "user",
                seq % 6,
                "failure" if seq % 5 == 0 else "success",
                b"h" * 16,
                b"{}",
            )
        )
        targets.append(("acme", seq, "document", f"d{seq % 4}", seq * 10))
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany(
        "INSERT INTO event_targets (tenant_id, seq, target_type, target_id, occurred_at)"
        " VALUES (?,?,?,?,?)",
        targets,
    )
    db.execute("ANALYZE")
    return db


def _plans(conn: sqlite3.Connection, flt: EventFilter, after: PageKey | None) -> list[str]:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        list_events(conn, SQLITE, flt, after, 50)
    finally:
        conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if not sql.lstrip().upper().startswith("SELECT") or "ORDER BY" not in sql:
            continue
        detail = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        plans.append(" | ".join(row[3] for row in detail) + "  <<  " + sql)
    return plans


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("deep", [False, True])
def test_pages_walk_an_index_in_order(conn: sqlite3.Connection, name: str, deep: bool) -> None:
    flt = EventFilter(tenant_id="acme", **FILTERS[name])  # type: ignore[arg-type]
    after = PageKey(2000, 200) if deep else None
    plans = _plans(conn, flt, after)
    assert plans, "no page query ran"
    for plan in plans:
        detail = plan.split("  <<  ")[0]
        assert "SCAN e" not in detail and "SCAN t" not in detail, plan
        if "UNION ALL" in plan:
            # Branches are merged with a sort of at most (branches x page) keys.
            assert detail.count("SEARCH") >= 2, plan
        elif "ORDER BY action LIMIT 1" not in plan:
            assert "TEMP B-TREE" not in detail, plan


def test_the_results_match_the_filters(conn: sqlite3.Connection) -> None:
    flt = EventFilter(tenant_id="acme", action_prefix="user.", min_severity=2)
    rows = list_events(conn, SQLITE, flt, None, 1000)
    expected = [seq for seq in range(299, -1, -1) if seq % 3 in (0, 1) and seq % 6 >= 2]
    assert [r.seq for r in rows] == expected


def test_a_prefix_no_action_has_is_an_empty_page(conn: sqlite3.Connection) -> None:
    for prefix in ("nothing.", "zzz", "user.x"):
        flt = EventFilter(tenant_id="acme", action_prefix=prefix)
        assert list_events(conn, SQLITE, flt, None, 50) == []


def test_actor_type_is_checked_on_the_time_index(conn: sqlite3.Connection) -> None:
    """The time index holds actor_type (migration 0005): a page of one actor type reads
    its keys from the index alone, not a table row per rejected event."""
    service = TextMatch("actor.type", (TextValue("service"),))
    flt = EventFilter(tenant_id="acme", conditions=(service,))
    plans = _plans(conn, flt, None)
    assert plans and all("COVERING INDEX ix_events_time" in p for p in plans), plans
    rows = list_events(conn, SQLITE, flt, None, 10)
    assert [r.seq for r in rows] == [seq for seq in range(299, -1, -1) if seq % 11 == 0][:10]
    # With a filter on the body too: keys from the index, the rest checked on the rows.
    odd = TextMatch("action", (TextValue("user.logout"),), negated=True)
    flt = EventFilter(tenant_id="acme", conditions=(service, odd))
    want = [seq for seq in range(299, -1, -1) if seq % 11 == 0 and seq % 3 != 1]
    assert [r.seq for r in list_events(conn, SQLITE, flt, None, 1000)] == want
