"""PostgreSQL's plans for every filter of GET /v1/events: each page is read from an
index in order (no sequential scan, no sort of a tenant's matching rows), only the
partitions a time range touches are read, and deep pages cost what first pages cost.

Each statement list_events runs is re-run under EXPLAIN (ANALYZE, FORMAT JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests import backends
from tests.integration.test_query_plans import FILTERS
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import PageKey
from trailkeep.store.postgres.connect import PgOptions
from trailkeep.store.postgres.event_writes import insert_stored_rows
from trailkeep.store.postgres.partitions import PartitionManager, month_of, month_start_us
from trailkeep.store.postgres.qmark import QmarkConnection
from trailkeep.store.postgres.store import POSTGRES
from trailkeep.store.reads.events import list_events
from trailkeep.store.urls import parse_database_url

pytestmark = pytest.mark.postgres_only

N = 20_000
START = month_start_us(2026 * 12)  # 2026-01-01
STEP = 90 * 86_400_000_000 // N  # three months of events
# A time range within one month: only that month's partitions may be read.
FEBRUARY = {
    "occurred_from": month_start_us(2026 * 12 + 1),
    "occurred_to": month_start_us(2026 * 12 + 1) + 14 * 86_400_000_000,
}


def _rows(tenant: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    events, targets = [], []
    for seq in range(N):
        at = START + seq * STEP
        action = ("user.login", "user.logout", "document.update", "user.mfa.enable")[seq % 4]
        outcome = "failure" if seq % 5 == 0 else "success"
        actor = f"u{seq % 50}"
        row = (tenant, seq, f"e{seq}", at, at, action, actor, "user", seq % 6, outcome)
        events.append((*row, b"h" * 16, b'{"x":1}'))
        targets.append((tenant, seq, ("document", "folder")[seq % 2], f"d{seq % 39}", at))
    return events, targets


class _Explaining:
    """The qmark connection, plus the analyzed plan of every SELECT that runs."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.inner = QmarkConnection(conn)
        self.plans: list[tuple[str, dict[str, Any]]] = []

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            explained = self.inner.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, parameters)
            self.plans.append((sql, explained.fetchone()[0][0]["Plan"]))
        return self.inner.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:
        return self.inner.executemany(sql, parameters)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.fixture(scope="module")
def loaded(pg_database: backends.PgTestDatabase) -> Iterator[psycopg.Connection[Any]]:
    # A database of its own: the per-test reset empties the shared one.
    db = backends.PgTestDatabase()
    db.create()
    # Connected as the service's read pool is: prepared statements with generic plans.
    kwargs = PgOptions(parse_database_url(db.url)).connect_kwargs(reads=True)
    with psycopg.connect(db.url, **kwargs) as conn:
        months = {month_of(START + i * STEP) for i in range(0, N, 1000)} | {2026 * 12 + 3}
        PartitionManager(1).ensure(conn, months)
        with conn.transaction():
            for tenant in ("acme", "globex"):
                insert_stored_rows(conn, *_rows(tenant))
        conn.execute("ANALYZE")
        yield conn
    db.drop()


@pytest.mark.parametrize("name", [*FILTERS, "february"])
@pytest.mark.parametrize("deep", [False, True])
def test_pages_walk_an_index_in_order(
    loaded: psycopg.Connection[Any], name: str, deep: bool
) -> None:
    values = FEBRUARY if name == "february" else FILTERS[name]
    if name == "time range":
        values = {"occurred_from": START, "occurred_to": START + 10_000 * STEP}
    flt = EventFilter(tenant_id="acme", **values)  # type: ignore[arg-type]
    after = PageKey(START + 15_000 * STEP, 15_000) if deep else None
    explaining = _Explaining(loaded)
    rows = list_events(explaining, POSTGRES, flt, after, 50)  # type: ignore[arg-type]
    assert rows, "the filter matched nothing: the test data is wrong"
    assert explaining.plans
    for sql, plan in explaining.plans:
        nodes = list(_nodes(plan))
        for node in nodes:
            if node["Node Type"] == "Seq Scan":
                # Planned only for a partition with no rows yet (next month's), and
                # then never run, or run over nothing.
                read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                assert node["Actual Loops"] == 0 or read == 0, sql
            if node["Node Type"] == "Sort":
                # Only merging branches' pages may sort: at most (branches x page) keys.
                assert node["Actual Rows"] <= 12 * 50, sql
            if node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"):
                # Reads about one page per branch, not the tenant's matching rows.
                removed = node.get("Rows Removed by Filter", 0)
                assert node["Actual Rows"] * node["Actual Loops"] + removed <= 2_000, sql
        scanned = {n.get("Relation Name") for n in nodes if n.get("Relation Name")}
        if name == "february":
            assert scanned <= {"events_p202602", "event_targets_p202602"}, sql


def test_results_match_the_filters(loaded: psycopg.Connection[Any]) -> None:
    flt = EventFilter(tenant_id="acme", action_prefix="user.", min_severity=2)
    rows = list_events(QmarkConnection(loaded), POSTGRES, flt, None, 1000)
    expected = [s for s in range(N - 1, -1, -1) if s % 4 != 2 and s % 6 >= 2][:1000]
    assert [r.seq for r in rows] == expected
    flt = EventFilter(tenant_id="acme", target_type="document", target_id="d2")
    rows = list_events(QmarkConnection(loaded), POSTGRES, flt, None, 100)
    expected = [s for s in range(N - 1, -1, -1) if s % 39 == 2 and s % 2 == 0]
    assert [r.seq for r in rows] == expected[:100]


def test_reads_are_never_jit_compiled_nor_parallel(loaded: psycopg.Connection[Any]) -> None:
    """A generic plan prices LIMIT 50 as a tenth of the tenant: with JIT on, every page
    above jit_above_cost was compiled first (~28 ms measured at 2M events), and pages
    got parallel workers (~10 ms to start)."""
    assert loaded.execute("SHOW jit").fetchone()[0] == "off"
    assert loaded.execute("SHOW max_parallel_workers_per_gather").fetchone()[0] == "0"
    loaded.execute("SET jit_above_cost = 0")  # every plan would qualify
    try:
        sql = (
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT e.occurred_at, e.seq, e.body FROM events e"
            " WHERE e.tenant_id = %s ORDER BY e.occurred_at DESC, e.seq DESC LIMIT 50"
        )
        explained = loaded.execute(sql, ("acme",)).fetchone()[0][0]
        assert "JIT" not in explained, explained
    finally:
        loaded.execute("RESET jit_above_cost")
