"""Query benchmark: latency of GET /v1/events on a tenant holding a million events.

It builds a database (rows written straight in, no server, with the service's schema
and its own INSERT (SQLite) or COPY (PostgreSQL) code, in a few minutes; tenants via the
CLI) with --tenants tenants (10): the measured tenant holds --events events (1,000,000),
the others --other-events each (100,000). Distributions: 50 actions in 7 prefixes
(user.* ~41%), 5,000 actors (mildly skewed), severities skewed to INFO (ERROR or worse
7%), 5% failures, occurred_at spread over 90 days, 1-2 targets per event. Then it
starts a real server (``trailkeep serve``, own process, free 127.0.0.1 port), creates a
reader key with the CLI, and measures sequential requests (one at a time, one
keep-alive connection), first page of --page-size (50) rows, p50/p95/p99 over
--repeats (100) requests with varying values, for: no filter; action exact; actor_id;
action prefix user.*; target_type+target_id; severity>=ERROR; outcome=failure; one-day
time range; action+outcome.

For the filters with enough matches it also follows the cursor --deep-page (500)
pages deep: the walk is timed on its own; then pages 495..505 are requested again with
their saved cursors --deep-repeats (5) times, and only those requests make the deep
p50/p95/p99. Every page is checked: every row matches the filter and belongs to the
tenant, rows are newest first, and no row repeats along a walk.

Building 1.9M rows takes a few minutes (progress is printed) and ~2.3 GB, so keep the
database:

    .venv/bin/python bench/query.py --db bench/results/query.db           # builds, then runs
    .venv/bin/python bench/query.py --db bench/results/query.db           # reuses it
    .venv/bin/python bench/query.py --db bench/results/query.db --json --out \\
        bench/results/query.json
    .venv/bin/python bench/query.py --events 50000 --other-events 5000 --deep-page 50  # smoke

On PostgreSQL, --database-url postgresql://USER@HOST:PORT/trailkeep_bench... names a
database the script drops, re-creates, migrates and loads (by COPY, then VACUUM
(ANALYZE)); only names starting with trailkeep_bench are accepted. The dataset's
metadata is kept as the comment of the database, so --reuse-db can reuse it:

    .venv/bin/python bench/query.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/trailkeep_bench   # builds, runs
    .venv/bin/python bench/query.py --reuse-db \\
        --database-url postgresql://postgres@127.0.0.1:5432/trailkeep_bench   # reuses it
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from common import (
    Connection,
    Database,
    Server,
    add_output_args,
    build_request,
    check_database_url,
    create_keys,
    emit_json,
    fmt_ms,
    latency_summary,
    machine_info,
    progress,
    remove_tree,
    result_console,
    run_async,
)
from dataset import (
    Dataset,
    add_dataset_args,
    check_dataset_args,
    choose_place,
    open_dataset,
)
from trailkeep.events.schema import SEVERITY_RANK
from workload import DAY_US, EventFactory, rfc3339_us

Params = dict[str, str]
TOP_ACTIONS = ("user.login", "document.viewed", "document.updated", "user.logout")


# -- arguments -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep query benchmark (see the docstring of bench/query.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataset_args(p, other_events=100_000)
    p.add_argument("--repeats", type=int, default=100, help="measured requests per query")
    p.add_argument("--warmup-requests", type=int, default=5, help="unmeasured, per query")
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--deep-page", type=int, default=500, help="page reached by the cursor walk")
    p.add_argument("--deep-window", type=int, default=5, help="pages measured either side")
    p.add_argument("--deep-repeats", type=int, default=5)
    p.add_argument("--no-deep", action="store_true", help="skip the cursor walks")
    p.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds at most per query's samples and per cursor walk",
    )
    p.add_argument("--only", default=None, help="comma-separated query names (see the table)")
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    check_dataset_args(p, args)
    if args.page_size < 1 or args.repeats < 1:
        p.error("--page-size and --repeats must be at least 1")
    if args.deep_page <= args.deep_window:
        p.error("--deep-page must be larger than --deep-window")
    return args


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    params: Callable[[random.Random], Params]
    deep: Params | None = None  # fixed filter for the cursor walk, when it is deep enough


def make_queries(data: Dataset, factory: EventFactory) -> list[Query]:
    actors = factory.actors
    day_starts = data.end_us - data.span_us + DAY_US

    def one_day(rng: random.Random) -> Params:
        start = day_starts + rng.randrange(88) * DAY_US
        return {"occurred_after": rfc3339_us(start), "occurred_before": rfc3339_us(start + DAY_US)}

    return [
        Query("no filter", lambda rng: {}, deep={}),
        Query(
            "action exact",
            lambda rng: {"action": rng.choice(TOP_ACTIONS)},
            deep={"action": "document.viewed"},
        ),
        Query("actor_id", lambda rng: {"actor_id": rng.choice(actors).id}),
        Query("action prefix user.*", lambda rng: {"action": "user.*"}, deep={"action": "user.*"}),
        Query(
            "target type+id",
            lambda rng: {
                "target_type": "document",
                "target_id": f"doc_{rng.randrange(50_000):06d}",
            },
        ),
        Query("severity>=ERROR", lambda rng: {"severity": "ERROR"}, deep={"severity": "ERROR"}),
        Query("outcome=failure", lambda rng: {"outcome": "failure"}, deep={"outcome": "failure"}),
        Query("time range 1 day", one_day),
        Query(
            "action+outcome", lambda rng: {"action": rng.choice(TOP_ACTIONS), "outcome": "failure"}
        ),
    ]


# -- checking a page -----------------------------------------------------------------------


def row_problem(row: dict[str, Any], params: Params, tenant: str) -> str | None:
    """Why ``row`` should not be in the answer to ``params`` (None when it should)."""
    if row["tenant_id"] != tenant:
        return f"row of tenant {row['tenant_id']}"
    action = params.get("action")
    if action is not None:
        ok = (
            row["action"].startswith(action[:-1])
            if action.endswith("*")
            else (row["action"] == action)
        )
        if not ok:
            return f"action {row['action']} for filter {action}"
    if "actor_id" in params and row["actor"].get("id") != params["actor_id"]:
        return f"actor {row['actor'].get('id')}"
    if "outcome" in params and row["outcome"] != params["outcome"]:
        return f"outcome {row['outcome']}"
    if "severity" in params and SEVERITY_RANK[row["severity"]] < SEVERITY_RANK[params["severity"]]:
        return f"severity {row['severity']}"
    if "target_type" in params:
        pairs = {(t["type"], t["id"]) for t in row["targets"]}
        kinds = {t["type"] for t in row["targets"]}
        want = (params["target_type"], params.get("target_id"))
        if (want[1] is not None and want not in pairs) or want[0] not in kinds:
            return f"targets {row['targets']}"
    if "occurred_after" in params and not (
        params["occurred_after"] <= row["occurred_at"] < params["occurred_before"]
    ):
        return f"occurred_at {row['occurred_at']}"
    return None


def page_problems(rows: list[dict[str, Any]], params: Params, tenant: str) -> list[str]:
    problems = [p for p in (row_problem(r, params, tenant) for r in rows) if p]
    keys = [(r["occurred_at"], r["seq"]) for r in rows]
    if any(a <= b for a, b in itertools.pairwise(keys)):
        problems.append("rows not newest first")
    return problems


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Client:
    """One keep-alive connection, one request at a time."""

    conn: Connection
    port: int
    token: str
    tenant: str
    page_size: int
    problems: list[str] = field(default_factory=list)
    non_200: int = 0

    async def page(self, params: Params, cursor: str | None = None) -> tuple[float, dict[str, Any]]:
        query = {**params, "limit": str(self.page_size)}
        if cursor is not None:
            query["cursor"] = cursor
        raw = build_request(
            "GET", "/v1/events?" + urllib.parse.urlencode(query), self.port, self.token
        )
        began = time.perf_counter()
        status, body = await self.conn.request(raw)
        elapsed = time.perf_counter() - began
        if status != 200:
            self.non_200 += 1
            self.note(f"HTTP {status} for {query}: {body[:200]!r}")
            return elapsed, {"data": [], "next_cursor": None}
        page: dict[str, Any] = orjson.loads(body)
        for problem in page_problems(page["data"], params, self.tenant)[:1]:
            self.note(f"{params}: {problem}")
        return elapsed, page

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


async def sample_query(client: Client, query: Query, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(f"{args.seed}:{query.name}")
    for _ in range(args.warmup_requests):
        await client.page(query.params(rng))
    latencies: list[float] = []
    rows = 0
    deadline = time.perf_counter() + args.budget
    for _ in range(args.repeats):
        elapsed, page = await client.page(query.params(rng))
        latencies.append(elapsed)
        rows += len(page["data"])
        if time.perf_counter() > deadline:
            break
    return {
        "name": query.name,
        "samples": len(latencies),
        "rows_per_page": rows / len(latencies),
        **latency_summary(latencies),
    }


async def walk(client: Client, params: Params, args: argparse.Namespace) -> dict[str, Any]:
    """Follow next_cursor; keep the cursors of the pages of the measured window."""
    first, last = args.deep_page - args.deep_window, args.deep_page + args.deep_window
    cursors: dict[int, str] = {}
    seen: set[int] = set()
    cursor: str | None = None
    page_no = 0
    began = time.perf_counter()
    while page_no < last - 1 and time.perf_counter() - began < args.budget:
        page_no += 1
        _, page = await client.page(params, cursor)
        for row in page["data"]:
            if row["seq"] in seen:
                client.note(f"walk {params}: seq {row['seq']} seen twice")
            seen.add(row["seq"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if page_no + 1 >= first:
            cursors[page_no + 1] = cursor
    seconds = time.perf_counter() - began
    return {
        "pages_walked": page_no,
        "walk_s": round(seconds, 3),
        "walk_ms_per_page": seconds / max(1, page_no) * 1000,
        "cursors": cursors,
        "complete": page_no >= last - 1 or cursor is None,
    }


async def deep_query(client: Client, query: Query, args: argparse.Namespace) -> dict[str, Any]:
    assert query.deep is not None
    walked = await walk(client, query.deep, args)
    cursors: dict[int, str] = walked.pop("cursors")
    latencies: list[float] = []
    for _ in range(args.deep_repeats):
        for _page, cursor in sorted(cursors.items()):
            elapsed, _ = await client.page(query.deep, cursor)
            latencies.append(elapsed)
    pages = sorted(cursors)
    window = f"{pages[0]}..{pages[-1]}" if pages else f"only {walked['pages_walked']} pages"
    return {
        "name": query.name,
        "filter": query.deep,
        "pages": window,
        "samples": len(latencies),
        **walked,
        **latency_summary(latencies),
    }


async def measure(
    port: int, token: str, data: Dataset, args: argparse.Namespace, queries: list[Query]
) -> dict[str, Any]:
    conn = await Connection.open(port)
    client = Client(conn, port, token, data.measured, args.page_size)
    results: dict[str, Any] = {"queries": [], "deep": []}
    try:
        for query in queries:
            progress.print(f"query {query.name} ...")
            results["queries"].append(await sample_query(client, query, args))
        for query in queries:
            if query.deep is None or args.no_deep:
                continue
            progress.print(f"deep {query.name}: walking to page {args.deep_page} ...")
            results["deep"].append(await deep_query(client, query, args))
    finally:
        await conn.close()
    results["problems"] = client.problems
    results["non_200"] = client.non_200
    return results


# -- report ----------------------------------------------------------------------------------


def render(
    results: dict[str, Any], data: Dataset, args: argparse.Namespace, console: Console
) -> None:
    title = (
        f"GET /v1/events, first page of {args.page_size}, sequential, tenant "
        f"{data.measured} with {data.stored()[data.measured]:,} events "
        f"({data.total:,} in the database)"
    )
    table = Table(title=title, title_justify="left")
    for col in ("query", "samples", "rows/page", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col == "query" else "right")
    for r in results["queries"]:
        table.add_row(
            r["name"],
            str(r["samples"]),
            f"{r['rows_per_page']:.1f}",
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
            fmt_ms(r["max_ms"]),
        )
    console.print(table)
    if results["deep"]:
        render_deep(results["deep"], args, console)
    ok = not results["problems"] and results["non_200"] == 0
    console.print(
        f"checks: {'ok' if ok else 'FAILED'} ({results['non_200']} non-200 answers, "
        f"{len(results['problems'])} wrong rows or orderings)"
    )
    for problem in results["problems"][:5]:
        console.print(f"  {problem}")


def render_deep(deep: list[dict[str, Any]], args: argparse.Namespace, console: Console) -> None:
    lo, hi = args.deep_page - args.deep_window, args.deep_page + args.deep_window
    title = (
        f"Deep pages: cursor walk to page {args.deep_page} (timed apart), then pages "
        f"{lo}..{hi} x{args.deep_repeats}"
    )
    table = Table(title=title, title_justify="left")
    for col in (
        "query",
        "pages walked",
        "walk s",
        "walk ms/page",
        "measured pages",
        "samples",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    ):
        table.add_column(col, justify="left" if col == "query" else "right")
    for r in deep:
        table.add_row(
            r["name"],
            str(r["pages_walked"]),
            f"{r['walk_s']:.1f}",
            fmt_ms(r["walk_ms_per_page"]),
            r["pages"],
            str(r["samples"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
        )
    console.print(table)


def summary(results: dict[str, Any], data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "query",
        "config": {
            "page_size": args.page_size,
            "repeats": args.repeats,
            "deep_page": args.deep_page,
            "deep_window": args.deep_window,
            "deep_repeats": args.deep_repeats,
            "database": data.db.label,
        },
        "machine": machine_info(),
        "database": data.db.describe(),
        "dataset": {**data.meta(), "built_now": data.built_now},
        **results,
        "ok": not results["problems"] and results["non_200"] == 0,
    }


# -- main ----------------------------------------------------------------------------------


def select(queries: list[Query], only: str | None) -> list[Query]:
    if only is None:
        return queries
    names = {n.strip() for n in only.split(",")}
    unknown = names - {q.name for q in queries}
    if unknown:
        raise SystemExit(
            f"error: unknown queries {sorted(unknown)}; known: {', '.join(q.name for q in queries)}"
        )
    return [q for q in queries if q.name in names]


def run(args: argparse.Namespace, db: Database, log_dir: Path) -> tuple[dict[str, Any], Dataset]:
    data = open_dataset(db, args)
    token = create_keys(db, [data.measured], "reader")[data.measured]
    queries = select(make_queries(data, EventFactory(data.seed)), args.only)
    with Server(db, log_dir / "query-server.log") as server:
        results: dict[str, Any] = run_async(measure(server.port, token, data, args, queries))
    return results, data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    place = choose_place(args, "trailkeep-query-")
    try:
        results, data = run(args, place.db, place.log_dir)
    finally:
        if place.tmp is not None and not args.keep:
            remove_tree(place.tmp)
        elif place.tmp is not None:
            progress.print(f"kept {place.tmp}")
    render(results, data, args, result_console(args.json))
    out = summary(results, data, args)
    emit_json(out, args.json, args.out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
