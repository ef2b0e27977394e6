"""Query benchmark: the query language, full-text search and stats on a real server.

Data set (bench/dataset.py, kept and reused): --tenants (10) tenants, the measured one
(org-00) with --events (2,000,000) events and each other with --other-events (333,334):
5,000,000 events in all, written straight into the database by the service's own
insert code (``insert_stored_rows``: rows, full-text index, stats rollups) with the
tenants' Merkle tiles, while a worker process makes the rows (progress is printed).
Events (bench/workload.py): 50 actions in 7 prefixes, 5,000 actors (100 services),
severities skewed to INFO, 5% failures, 1-2 named targets, metadata.plan and .region,
occurred_at over 90 days ending an hour before the build; messages from a fixed
vocabulary of known frequencies (bench/vocabulary.py: "session" and "user" in a quarter
of all events, mid words in ~1%, rare words in ~1 in 100,000, "disk full" in 0.5%).

Then a real server (``trailkeep serve``, own process, 127.0.0.1), a reader key, and
sequential requests on one keep-alive connection, --repeats (100) per query after
--warmup-requests (5), each value of the query's pool in turn (bench/query_mix.py):

- baseline/filtered/fulltext: ``GET /v1/events?q=QUERY&limit=50``, the first page;
- stats: ``GET /v1/stats?q=occurred:D1..D2[ outcome:failure]&group_by=G&interval=I
  &top=10``: 30 whole days ending with the data set's last full day (or 1-4 days
  earlier), absolute dates so a reused data set answers the same on a later day.

Every answer is checked: each row against its query (action, actor, severity, outcome,
targets, time, words in message, actor name, target names and metadata values), the
tenant, newest first; then with DuckDB (bench/duck_baseline.py, over a Parquet export
of the measured tenant) each distinct request's first page must be exactly the
expected one, and each stats answer must have exactly DuckDB's numbers (total, top keys
and counts, every bucket). DuckDB also times the same stats, warm, in process: the
ratio API p95 / DuckDB p95 is reported. Targets: filtered p95 <= 10 ms, fulltext p95
<= 50 ms, stats p95 <= 20 ms and below DuckDB's. A few queries are also followed
--deep-page (500) pages deep with the cursor (pages 495..505 measured; --no-deep).

Needs the bench extra (``pip install -e '.[dev,bench]'``, as ``make bench`` does).
Building 5,000,000 events takes a while (on this 2-core machine ~5,000 events/s on
SQLite, ~3,000 on PostgreSQL: the service's insert code, tokenizing included, is the
bottleneck; the progress lines say how much of the time went to waiting for rows) and
room (~1.5 KB per event on SQLite, ~2.4 KB on PostgreSQL), so keep the data set and the
Parquet export (~50 bytes per event, ~1 minute to make for 2,000,000 events):

    .venv/bin/python bench/query.py --db bench/results/query.db \\
        --out bench/results/query.json                       # builds, then runs
    .venv/bin/python bench/query.py --db bench/results/query.db   # reuses both
    .venv/bin/python bench/query.py --database-url \\
        postgresql://postgres@127.0.0.1:5432/trailkeep_bench_q \\
        --parquet bench/results/query-pg.parquet --out bench/results/query-pg.json
    .venv/bin/python bench/query.py --reuse-db --database-url \\
        postgresql://postgres@127.0.0.1:5432/trailkeep_bench_q \\
        --parquet bench/results/query-pg.parquet             # reuses both
    .venv/bin/python bench/query.py --events 20000 --other-events 2000 --tenants 3  # smoke

On PostgreSQL the database named by --database-url is dropped, re-created, migrated
and loaded (only names starting with trailkeep_bench are accepted); --reuse-db reuses
it when this script built it. --only NAME,... runs some queries (names in the table).
"""

from __future__ import annotations

import argparse
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from common import (
    Connection,
    Database,
    Server,
    add_output_args,
    build_request,
    check_database_url,
    create_keys,
    emit_json,
    latency_summary,
    progress,
    remove_tree,
    result_console,
    run_async,
)
from dataset import Dataset, add_dataset_args, check_dataset_args, choose_place, open_dataset
from query_mix import (
    EventQuery,
    StatsQuery,
    Term,
    Timeline,
    event_queries,
    page_problems,
    query_text,
    request_cycle,
    stats_queries,
)
from query_report import render, summary
from workload import WORKLOAD_VERSION, EventFactory

Answers = dict[tuple[str, str], dict[str, Any]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep query benchmark (see the docstring of bench/query.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataset_args(p, other_events=333_334, events=2_000_000)
    p.add_argument("--repeats", type=int, default=100, help="measured requests per query")
    p.add_argument("--warmup-requests", type=int, default=5, help="unmeasured, per query")
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--top", type=int, default=10, help="top=N of the stats requests")
    p.add_argument("--deep-page", type=int, default=500, help="page reached by the cursor walk")
    p.add_argument("--deep-window", type=int, default=5, help="pages measured either side")
    p.add_argument("--deep-repeats", type=int, default=5)
    p.add_argument("--no-deep", action="store_true", help="skip the cursor walks")
    p.add_argument(
        "--budget", type=float, default=120.0, help="seconds at most per query and per walk"
    )
    p.add_argument("--only", default=None, help="comma-separated query names (see the table)")
    p.add_argument(
        "--parquet",
        type=Path,
        default=None,
        help="the measured tenant's events for DuckDB: reused when it holds this data set "
        "(default: beside --db, else in the run's temp dir)",
    )
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    check_dataset_args(p, args)
    if args.page_size < 1 or args.repeats < 1 or args.top < 1:
        p.error("--page-size, --repeats and --top must be at least 1")
    if args.deep_page <= args.deep_window:
        p.error("--deep-page must be larger than --deep-window")
    return args


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Client:
    """One keep-alive connection, one request at a time."""

    conn: Connection
    port: int
    token: str
    tenant: str
    problems: list[str] = field(default_factory=list)
    non_200: int = 0
    wrong: dict[str, int] = field(default_factory=dict)  # query name -> wrong answers

    async def get(self, path: str, name: str) -> tuple[float, int, bytes]:
        raw = build_request("GET", path, self.port, self.token)
        began = time.perf_counter()
        status, body = await self.conn.request(raw)
        elapsed = time.perf_counter() - began
        if status != 200:
            self.non_200 += 1
            self.note(name, f"HTTP {status} for GET {path}: {body[:300]!r}")
        return elapsed, status, body

    async def page(
        self, name: str, terms: tuple[Term, ...], limit: int, cursor: str | None = None
    ) -> tuple[float, dict[str, Any]]:
        params = {"q": query_text(terms), "limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor
        path = "/v1/events?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        elapsed, status, body = await self.get(path, name)
        if status != 200:
            return elapsed, {"data": [], "next_cursor": None}
        page: dict[str, Any] = orjson.loads(body)
        for problem in page_problems(page["data"], terms, self.tenant)[:1]:
            self.note(name, f"GET {path}: {problem}")
        return elapsed, page

    def note(self, name: str, problem: str) -> None:
        """Counts a wrong answer; keeps the first two problems of each query."""
        self.wrong[name] = self.wrong.get(name, 0) + 1
        if self.wrong[name] <= 2:
            self.problems.append(problem)


async def sample_events(
    client: Client, query: EventQuery, args: argparse.Namespace, answers: Answers
) -> dict[str, Any]:
    requests = request_cycle(query.pool, args.seed, query.name)
    for _ in range(args.warmup_requests):
        await client.page(query.name, next(requests), args.page_size)
    latencies: list[float] = []
    rows = 0
    deadline = time.perf_counter() + args.budget
    for _ in range(args.repeats):
        terms = next(requests)
        elapsed, page = await client.page(query.name, terms, args.page_size)
        latencies.append(elapsed)
        rows += len(page["data"])
        key = (query.name, query_text(terms))
        if key not in answers:
            seqs = [row.get("seq") for row in page["data"]]
            answers[key] = {"terms": terms, "seqs": seqs}
        if time.perf_counter() > deadline:
            break
    return {
        "name": query.name,
        "class": query.cls,
        "example": query_text(query.pool[0]),
        "values": len(query.pool),
        "samples": len(latencies),
        "rows_per_page": rows / len(latencies),
        "latencies": latencies,
        **latency_summary(latencies),
    }


def stats_path(query: StatsQuery, terms: tuple[Term, ...], top: int) -> str:
    params = query.params(terms, top)
    return "/v1/stats?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


async def sample_stats(
    client: Client, query: StatsQuery, args: argparse.Namespace, answers: Answers
) -> dict[str, Any]:
    requests = request_cycle(query.pool, args.seed, query.name)
    for _ in range(args.warmup_requests):
        await client.get(stats_path(query, next(requests), args.top), query.name)
    latencies: list[float] = []
    sources: set[str] = set()
    deadline = time.perf_counter() + args.budget
    for _ in range(args.repeats):
        terms = next(requests)
        path = stats_path(query, terms, args.top)
        elapsed, status, body = await client.get(path, query.name)
        latencies.append(elapsed)
        if status == 200:
            answer = orjson.loads(body)
            sources.add(str(answer.get("source")))
            answers.setdefault((query.name, path), {"terms": terms, "answer": answer})
        if time.perf_counter() > deadline:
            break
    return {
        "name": query.name,
        "class": "stats",
        "example": f"{query_text(query.pool[0])} | {query.group_by} by {query.interval}",
        "values": len(query.pool),
        "samples": len(latencies),
        "source": ",".join(sorted(sources)) or "-",
        "latencies": latencies,
        **latency_summary(latencies),
    }


async def deep_query(client: Client, query: EventQuery, args: argparse.Namespace) -> dict[str, Any]:
    """Follow next_cursor to --deep-page (timed apart), then time the pages around it."""
    terms = query.pool[0]
    first, last = args.deep_page - args.deep_window, args.deep_page + args.deep_window
    cursors: dict[int, str] = {}
    seen: set[int] = set()
    cursor: str | None = None
    page_no = 0
    began = time.perf_counter()
    while page_no < last - 1 and time.perf_counter() - began < args.budget:
        page_no += 1
        _, page = await client.page(query.name, terms, args.page_size, cursor)
        for row in page["data"]:
            if row["seq"] in seen:
                client.note(query.name, f"walk {query_text(terms)!r}: seq {row['seq']} twice")
            seen.add(row["seq"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if page_no + 1 >= first:
            cursors[page_no + 1] = cursor
    walk_s = time.perf_counter() - began
    latencies: list[float] = []
    for _ in range(args.deep_repeats):
        for _page, saved in sorted(cursors.items()):
            elapsed, _ = await client.page(query.name, terms, args.page_size, saved)
            latencies.append(elapsed)
    pages = sorted(cursors)
    return {
        "name": query.name,
        "query": query_text(terms),
        "pages": f"{pages[0]}..{pages[-1]}" if pages else f"only {page_no} pages",
        "pages_walked": page_no,
        "walk_s": round(walk_s, 3),
        "walk_ms_per_page": walk_s / max(1, page_no) * 1000,
        "samples": len(latencies),
        **latency_summary(latencies),
    }


async def measure(
    port: int,
    token: str,
    data: Dataset,
    args: argparse.Namespace,
    queries: list[EventQuery],
    stats: list[StatsQuery],
) -> tuple[dict[str, Any], Answers, Answers]:
    conn = await Connection.open(port)
    client = Client(conn, port, token, data.measured)
    results: dict[str, Any] = {"queries": [], "deep": []}
    pages: Answers = {}
    charts: Answers = {}
    try:
        for query in queries:
            progress.print(f"{query.cls} {query.name}: {query_text(query.pool[0])!r} ...")
            results["queries"].append(await sample_events(client, query, args, pages))
        for chart in stats:
            progress.print(f"stats {chart.name} ...")
            results["queries"].append(await sample_stats(client, chart, args, charts))
        for query in queries:
            if query.deep and not args.no_deep:
                progress.print(f"deep {query.name}: walking to page {args.deep_page} ...")
                results["deep"].append(await deep_query(client, query, args))
    finally:
        await conn.close()
    results["problems"] = client.problems
    results["non_200"] = client.non_200
    for r in results["queries"]:
        r["wrong_answers"] = client.wrong.get(r["name"], 0)
    return results, pages, charts


# -- checking with DuckDB --------------------------------------------------------------------


def check_and_time_duckdb(
    parquet: Path,
    results: dict[str, Any],
    pages: Answers,
    charts: Answers,
    stats: list[StatsQuery],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Exact checks of every distinct answer, and DuckDB's timings of the stats."""
    from duck_baseline import Duck, stats_problems

    duck = Duck(parquet)
    problems: list[str] = []
    matches: dict[str, list[int]] = {}
    differ: dict[str, int] = {}  # query name -> distinct answers unlike DuckDB's
    try:
        progress.print(f"checking {len(pages)} distinct pages with DuckDB ...")
        for (name, text), got in pages.items():
            want, count = duck.page(got["terms"], args.page_size)
            matches.setdefault(name, []).append(count)
            if got["seqs"] != want:
                differ[name] = differ.get(name, 0) + 1
                if differ[name] > 2:
                    continue
                missing = len(set(want) - set(got["seqs"]))
                problems.append(
                    f"{name} q={text!r}: page of seqs {got['seqs'][:5]}.. ({len(got['seqs'])}"
                    f" rows), expected {want[:5]}.. ({len(want)} rows, {missing} missing;"
                    f" {count:,} events match)"
                )
        progress.print(f"checking {len(charts)} distinct stats answers with DuckDB ...")
        by_name = {s.name: s for s in stats}
        for (name, path), got in charts.items():
            spec, terms = by_name[name], got["terms"]
            found = stats_problems(
                got["answer"],
                spec,
                terms,
                args.top,
                lambda keys, spec=spec, terms=terms: duck.stats_truth(spec, terms, keys),
            )
            if found:
                differ[name] = differ.get(name, 0) + 1
            if found and differ[name] <= 2:
                problems += [f"GET {path}: {p}" for p in found[:3]]
        timings: dict[str, dict[str, Any]] = {}
        memory_s = duck.load_memory() if stats else 0.0
        for spec in stats:
            progress.print(f"DuckDB {spec.name} ...")
            timings[spec.name] = duck.time_stats(
                spec, spec.pool, args.top, args.repeats, args.warmup_requests
            )
            timings[spec.name]["memory"] = duck.time_stats(
                spec, spec.pool, args.top, args.repeats, args.warmup_requests, "evm"
            )
    finally:
        duck.close()
    for r in results["queries"]:
        if r["name"] in matches:
            r["matches"] = sum(matches[r["name"]]) / len(matches[r["name"]])
        if r["name"] in timings:
            r["duckdb"] = timings[r["name"]]
        r["unlike_duckdb"] = differ.get(r["name"], 0)
    return {
        "problems": problems[:40],
        "pages_checked": len(pages),
        "stats_checked": len(charts),
        "memory_load_s": round(memory_s, 2),
    }


# -- main ----------------------------------------------------------------------------------


def select(queries: list[Any], only: str | None) -> list[Any]:
    if only is None:
        return queries
    names = {n.strip() for n in only.split(",")}
    unknown = names - {q.name for q in queries}
    if unknown:
        known = ", ".join(q.name for q in queries)
        raise SystemExit(f"error: unknown queries {sorted(unknown)}; known: {known}")
    return [q for q in queries if q.name in names]


def parquet_path(args: argparse.Namespace, db: Database, log_dir: Path, tenant: str) -> Path:
    if args.parquet is not None:
        return Path(args.parquet)
    if args.db is not None:
        return args.db.resolve().with_name(f"{args.db.name}.{tenant}.parquet")
    return log_dir / f"{tenant}.parquet"


def run(args: argparse.Namespace, db: Database, log_dir: Path) -> tuple[dict[str, Any], Dataset]:
    data = open_dataset(db, args)
    if data.workload != WORKLOAD_VERSION:
        raise SystemExit(
            f"error: {db.label} holds events of an older workload (version {data.workload}, "
            f"now {WORKLOAD_VERSION}: no messages for full-text search); rebuild it"
        )
    from duck_baseline import export_parquet

    key = {k: v for k, v in data.meta().items() if k not in ("build", "appended")}
    parquet = parquet_path(args, db, log_dir, data.measured)
    export = export_parquet(db, data.measured, parquet, {**key, "db": db.label})
    token = create_keys(db, [data.measured], "reader")[data.measured]
    timeline = Timeline.of(data.end_us, data.span_us)
    everything = event_queries(EventFactory(data.seed), timeline, data.seed)
    chosen = select([*everything, *stats_queries(timeline)], args.only)
    queries = [q for q in chosen if isinstance(q, EventQuery)]
    stats = [q for q in chosen if isinstance(q, StatsQuery)]
    with Server(db, log_dir / "query-server.log") as server:
        results, pages, charts = run_async(measure(server.port, token, data, args, queries, stats))
    results["duckdb"] = check_and_time_duckdb(parquet, results, pages, charts, stats, args)
    results["parquet"] = export
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
