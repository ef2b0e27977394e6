"""Ingest benchmark: how many events per second Trailkeep acknowledges, durably.

It starts a real server (``trailkeep serve`` in its own process, on a free 127.0.0.1
port, TRAILKEEP_BENCH_ENDPOINTS=true, TRAILKEEP_ACCESS_LOG=false), creates tenants,
writer keys and a reader key with the CLI, and drives it from this process with a
minimal asyncio HTTP/1.1 keep-alive client (uvloop; one connection per virtual client).
Phases:

  empty      POST /v1/events/batch, 100 events each, --concurrency-batch clients (16),
             into an empty database: events/s acknowledged, latency p50/p95/p99.
  empty-nointegrity
             the same, on the same kind of database (a fresh copy of the same template;
             PostgreSQL: the same database emptied again), with the same request bodies,
             into a server started with TRAILKEEP_BENCH_WITHOUT_INTEGRITY=true: no
             canonical-form walk, no leaf hashes, no tiles, no checkpoints. The ratio
             "batch empty (with integrity) ÷ batch empty without integrity" is the cost
             of integrity (target: at least 0.80). --integrity-rounds N runs both N times,
             alternating which goes first, and compares their mean rates.
  preloaded  the same into a database already holding --preload events (1,000,000 over
             10 tenants, loaded before the server starts straight into the database
             with the service's schema and its own INSERT (SQLite) or COPY (PostgreSQL)
             code, derived rows included, the indexer's positions past them).
  single     POST /v1/events (one event each), --concurrency-single clients (64), and in
             the same run POST /v1/_bench/validate with the same bodies (auth + read +
             validate, stores nothing): events/s, requests/s and their ratio.
  raw        with the server stopped, on the same (preloaded) database after the service
             phases: pre-built rows written straight into the database, in transactions
             of 100 rows (one per client batch) and of 1,000 rows, one connection,
             durably (SQLite: the service's open_connection, synchronous=FULL + WAL, its
             INSERTs, "raw INSERT"; PostgreSQL: its COPY, synchronous_commit=on, "raw
             COPY"). First the bare log ("raw INSERT bare log"): insert_log_rows
             (the events with every index the schema gives them, event_targets, on
             PostgreSQL event_ids and the tsvector) and the rows' Merkle tiles appended
             with the writer's TreeAppender, nothing derived; its tiles are checked.
             Then the old baseline ("raw INSERT + derived"): insert_stored_rows,
             the log and its derived rows (full text, the 13 rollups), no tiles. The
             service's batch rate as a ratio to each (targets: at least 0.50 of the bare
             log on both backends; old baseline 0.50 on SQLite, 0.40 on PostgreSQL).
  grown      an empty database grown through the API under sustained load: batches of
             100, --concurrency-batch clients, until --grow-events (300,000) are
             acknowledged or --grow-max-seconds (300) passed, no warm-up: the rate and
             latency per slice of --grow-slice events (50,000), and of the last slice,
             so that a rate falling as the database grows (WAL, checkpoints, the indexer
             following) shows.
  grown-single
             single events and the do-nothing endpoint as in "single", on the grown
             database (same server).

Besides the load, in every HTTP phase:

  lag        (batch phases: empty, empty-nointegrity, preloaded, grown) a sampler in a
             thread of this process posts ONE event every --lag-interval s (0.25) to
             the first tenant, with a word of its own in its message (lagprobe + 12
             random letters), and from its acknowledgement polls every 10 ms, as a
             reader, full text until the event is found (q=lagprobe, a word every probe
             carries, for all pending probes in one request, then q=WORD to confirm)
             and GET /v1/stats?group_by=action&q=WORD until its Trailkeep-Indexed-To-Seq
             header is past the event's seq. A sample is the time from acknowledgement
             until both hold: p50/p95/p99/max per phase (target p99 ≤ 1 s). Probes
             overlap when the lag exceeds the interval; their events count as
             acknowledged. See bench/ingest_watch.py.
  memory     the server's VmRSS (/proc/PID/status) every 0.1 s: the peak over the phase
             (target ≤ 512 MB), and VmHWM in the JSON summary.
  catch-up   after the load of a phase that stores events, each tenant's stats answer is
             polled (as the platform admin) until its indexed_to_seq is the tenant's
             event count: the seconds from the end of the load ("indexed after s").

Every phase runs for --duration seconds (after --warmup) and stops by itself (grown: see
above). Non-2xx answers and connection errors are counted (they must be 0), and the
events stored are counted in the database before and after each phase: they must equal
the events acknowledged. With integrity, each tenant's Merkle tiles must form a tree of
exactly its events, and its signed checkpoint (the run's own key) must have the size and
root recomputed from the stored bodies; without, no tile and no checkpoint may be
written. Every lag probe must be found and indexed within 60 s, and the indexer must
catch up within --catch-up-timeout. With --check-derived (the default) every database
the service wrote is checked once its server stopped: each tenant's full text and stats
recomputed from its events (trailkeep.store.derived.check) must equal what is stored,
and no event may have been skipped (log_skips); a database above --check-derived-max
events (2,000,000) is skipped with a note. The exit status is 1 when a check fails.
Preloads store the tenants' tiles too (bench/trees.py), as the service's writer would.

With --database-url postgresql://USER@HOST:PORT/trailkeep_bench... the run drops and
re-creates that database (only names starting with trailkeep_bench are accepted),
migrates it, and runs every phase against it (TRAILKEEP_DATABASE_URL of the servers):
the "empty" phases first, each on the database emptied of events, tiles, checkpoints
and indexer positions (TRUNCATE, then CHECKPOINT), then the preload into the emptied
database, the raw phases on it, and the grown phase on the database emptied again. The
database is left as the run ends; --data-dir then holds only the server logs. On both
backends the OS page cache is flushed (sync) before each server starts, so that no
phase pays for the writes of the one before.

The code: this file sets up the run and drives the phases; bench/ingest_args.py reads the
command line, bench/ingest_checks.py makes the checks, bench/ingest_raw.py writes the raw
baselines, bench/ingest_run.py holds the run's state and its report, and
bench/ingest_watch.py what is watched besides the load.

Run it (full scale, takes several minutes; ~1.2 KB of disk per event, ~2 GB in all):

    .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --json --out bench/results/ingest.json
    .venv/bin/python bench/ingest.py --only single --preload 0 --duration 5   # one phase
    .venv/bin/python bench/ingest.py --only integrity --integrity-rounds 2    # its cost
    .venv/bin/python bench/ingest.py --only grow --grow-events 100000         # grown only
    .venv/bin/python bench/ingest.py --preload 20000 --duration 3 \\
        --raw-rows 20000 --grow-events 20000                                  # smoke test
    .venv/bin/python bench/ingest.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/trailkeep_bench   # PostgreSQL
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from common import (
    Database,
    Server,
    build_request,
    create_admin_key,
    create_keys,
    create_tenants,
    emit_json,
    progress,
    remove_tree,
    result_console,
)
from ingest_args import parse_args
from ingest_checks import checkpoint_checks, derived_checks, final_checks, tree_checks, verify_phase
from ingest_raw import phase_raw
from ingest_run import (
    BATCH_SIZE,
    NO_INTEGRITY,
    Run,
    acked_total,
    grow_slice,
    render,
    round_name,
    summary,
)
from ingest_watch import LagSampler, RssSampler, last_full, slices, wait_indexed
from loadgen import LoadSpec, run_load, summarize_tally
from pg_load import PgDatabase
from rowgen import LoadPlan
from sqlite_load import SqliteDatabase
from trailkeep.kit.timeutil import now_us
from workload import EventFactory

BODIES_PER_CLIENT = 8
# Seconds from run_load's call to its start line (loadgen._drive): 0.3 in this process,
# 2.0 with worker processes. The lag sampler starts when the measurement does.
LOAD_LEAD_S = {True: 2.0, False: 0.3}


# -- set-up ----------------------------------------------------------------------------


def prepare_root(args: argparse.Namespace) -> Path:
    if args.data_dir is None:
        return Path(tempfile.mkdtemp(prefix="trailkeep-bench-"))
    root: Path = args.data_dir
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"error: --data-dir {root} is not empty; give a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    return root


def prepare_template(run: Run) -> None:
    """A migrated database with tenants, writer keys, a reader key (the lag probes'
    tenant) and one admin key, made with the CLI."""
    run.template.recreate()
    progress.print(f"creating {len(run.tenants)} tenants and their keys with the CLI ...")
    began = time.perf_counter()
    create_tenants(run.template, run.tenants)
    run.tokens = create_keys(run.template, run.tenants, "writer")
    # Writers cannot read: the lag probes read with a reader key of their tenant.
    run.reader_tokens = create_keys(run.template, run.tenants[:1], "reader")
    run.admin_token = create_admin_key(run.template)  # checkpoints, indexer catch-up
    run.probe_event = run.factory.client_event(now_us())
    run.info["database"] = run.template.describe()
    progress.print(f"  done in {time.perf_counter() - began:.1f} s")


def settle_disk() -> None:
    """Flush what earlier phases left in the page cache, so no phase pays for another."""
    os.sync()


# -- request pools -----------------------------------------------------------------------


def client_tenant(run: Run, client: int) -> str:
    return run.tenants[client % len(run.tenants)]


def batch_bodies(run: Run) -> list[list[bytes]]:
    """Per client, a few distinct 100-event batches (server-assigned ids): made once, so
    that every batch phase of the run sends the same bodies."""
    if not run.batch_bodies:
        now = now_us()
        rng = run.factory.rng
        run.batch_bodies = [
            [
                _dumps(
                    {
                        "events": [
                            run.factory.client_event(now - rng.randrange(60_000_000))
                            for _ in range(BATCH_SIZE)
                        ]
                    }
                )
                for _ in range(BODIES_PER_CLIENT)
            ]
            for _ in range(run.args.concurrency_batch)
        ]
    return run.batch_bodies


def batch_pools(run: Run, port: int) -> list[list[bytes]]:
    """Per client, its batches as requests to its tenant."""
    return [
        [
            build_request("POST", "/v1/events/batch", port, run.tokens[client_tenant(run, c)], b)
            for b in bodies
        ]
        for c, bodies in enumerate(batch_bodies(run))
    ]


def single_bodies(run: Run, clients: int, per_client: int = 16) -> list[list[bytes]]:
    now = now_us()
    return [
        [
            _dumps(run.factory.client_event(now - run.factory.rng.randrange(60_000_000)))
            for _ in range(per_client)
        ]
        for _ in range(clients)
    ]


def single_pools(run: Run, port: int, path: str, bodies: list[list[bytes]]) -> list[list[bytes]]:
    return [
        [build_request("POST", path, port, run.tokens[client_tenant(run, c)], b) for b in pool]
        for c, pool in enumerate(bodies)
    ]


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# -- one HTTP phase ----------------------------------------------------------------------


def http_phase(
    run: Run,
    server: Server,
    name: str,
    mode: str,
    pools: list[list[bytes]],
    per_request: int,
    *,
    lag: bool = False,
    warmup: float | None = None,
    duration: float | None = None,
    max_requests: int | None = None,
    timeline: bool = False,
) -> dict[str, Any]:
    """One load phase; around it the server's RSS, with ``lag`` the lag probes (one
    tenant), and after it (phases that store events) the wait for the indexer."""
    args = run.args
    warmup = args.warmup if warmup is None else warmup
    duration = args.duration if duration is None else duration
    until = f"{duration:g} s" if max_requests is None else f"{max_requests:,} requests each"
    progress.print(f"phase {name}: {len(pools)} clients, {warmup:g} s warm-up + {until} ...")
    stored_before = server.db.count_events()
    rss = RssSampler(server.pid)
    rss.start()
    sampler = None
    if lag:
        tenant = run.tenants[0]
        sampler = LagSampler(
            server.port,
            run.tokens[tenant],
            run.reader_tokens[tenant],
            {**run.probe_event},
            start_delay=LOAD_LEAD_S[args.client_procs > 1] + warmup,
            interval=args.lag_interval,
        )
        sampler.start()
    cpu_before = server.cpu_seconds()
    wall_before = time.perf_counter()
    spec = LoadSpec(server.port, mode, pools, warmup, duration, max_requests, timeline)
    try:
        tally = run_load(spec, args.client_procs)
        load_end = time.perf_counter()
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        if sampler is not None:
            sampler.stop()  # follows the probes in flight to the end
    wall = load_end - wall_before
    counts = server.db.tenant_counts()
    stored = sum(counts.values()) - stored_before
    result = summarize_tally(tally, per_request)
    result.update(
        name=name,
        mode=mode,
        clients=len(pools),
        events_per_request=per_request,
        server_cpu_pct=100.0 * server_cpu / wall if wall else math.nan,
        stored_events=stored,
        probe_events=0,
    )
    if sampler is not None:
        result["lag"] = sampler.summary()
        result["probe_events"] = sampler.acked
    if max_requests is not None:
        all_sent = tally.sent_requests >= max_requests * len(pools)
        result["stopped_by"] = "event count" if all_sent else f"time cap ({duration:g} s)"
    if timeline:
        size = grow_slice(args)
        parts = slices(tally.timeline, tally.measure_from, size)
        result["slice_events"] = size
        result["slices"] = parts
        result["last_slice"] = last_full(parts)
    if per_request:
        catch_up(run, server, name, result, counts, load_end)
    rss.stop()
    result.update(rss.summary())
    verify_phase(run, name, result)
    run.phases[name] = result
    return result


def catch_up(
    run: Run,
    server: Server,
    name: str,
    result: dict[str, Any],
    counts: dict[str, int],
    load_end: float,
) -> None:
    """Wait until every tenant's indexed_to_seq is its event count (``counts``, read
    once the load ended): seconds after the load ended."""
    seconds, behind = wait_indexed(
        server.port, run.admin_token, counts, load_end, run.args.catch_up_timeout
    )
    result["catch_up_s"] = seconds
    total = sum(counts.values())
    run.check(
        f"{name}: indexer caught up",
        not behind,
        f"{total:,} events over {len(counts)} tenants searchable and counted"
        f" {seconds:.2f} s after the load ended"
        if not behind
        else f"after {run.args.catch_up_timeout:g} s: "
        + ", ".join(f"{t} indexed to {at:,} of {n:,}" for t, (at, n) in list(behind.items())[:3]),
    )


# -- phases ----------------------------------------------------------------------------------


def phase_empty(run: Run, name: str, integrity: bool) -> None:
    """Batches into an empty database, with integrity or (bench switch) without."""
    work_dir = run.root / name
    db = run.template.fresh_copy(work_dir)
    env = {} if integrity else {"TRAILKEEP_BENCH_WITHOUT_INTEGRITY": "true"}
    settle_disk()
    with Server(db, work_dir / "server.log", extra_env=env) as server:
        pools = batch_pools(run, server.port)
        http_phase(run, server, name, "batch", pools, BATCH_SIZE, lag=True)
        if integrity:
            checkpoint_checks(run, server, db, name)
    final_checks(run, db, expected=acked_total(run.phases[name]), label=name)
    derived_checks(run, db, name)
    if integrity:
        tree_checks(run, db, name)
    else:
        tiles, checkpoints = db.integrity_rows()
        run.check(
            f"{name}: integrity really off",
            tiles == 0 and checkpoints == 0,
            f"{tiles} tiles, {checkpoints} checkpoints written",
        )


def integrity_rounds(run: Run) -> None:
    """The pair empty / empty-nointegrity, --integrity-rounds times, alternating order."""
    chosen = run.args.only
    for number in range(1, run.args.integrity_rounds + 1):
        pair = [("empty", True), (NO_INTEGRITY, False)]
        if number % 2 == 0:
            pair.reverse()
        for phase, integrity in pair:
            if phase in chosen:
                phase_empty(run, round_name(phase, number), integrity)


def preload(run: Run, work_dir: Path) -> tuple[Database, int]:
    db = run.template.fresh_copy(work_dir)
    n: int = run.args.preload
    if n <= 0:
        return db, 0
    per = n // len(run.tenants)
    counts = {t: per + (1 if i < n % len(run.tenants) else 0) for i, t in enumerate(run.tenants)}
    progress.print(f"preloading {n:,} events over {len(run.tenants)} tenants into {db.label} ...")
    plan = LoadPlan(counts, end_us=now_us() - 3_600_000_000, seed=run.args.seed)
    stats = db.bulk_load(plan, run.factory, "preload")
    run.info["preload"] = stats
    progress.print(
        f"  preloaded {stats['events']:,} events in {stats['seconds']:.1f} s "
        f"({stats['events_per_s']:,.0f}/s)"
    )
    return db, n


def phase_service_preloaded(run: Run, db: Database, work_dir: Path, preloaded: int) -> None:
    chosen = run.args.only
    settle_disk()
    with Server(db, work_dir / "server.log") as server:
        if "preloaded" in chosen:
            pools = batch_pools(run, server.port)
            http_phase(run, server, "preloaded", "batch", pools, BATCH_SIZE, lag=True)
        if "single" in chosen:
            single_phases(run, server, "single", "validate")
        # The writer appended to the preloaded trees: each tenant's signed checkpoint.
        checkpoint_checks(run, server, db, "preloaded")
    acked = sum(acked_total(run.phases[p]) for p in ("preloaded", "single") if p in run.phases)
    final_checks(run, db, expected=preloaded + acked, label="preloaded")
    derived_checks(run, db, "preloaded")
    tree_checks(run, db, "preloaded")


def single_phases(run: Run, server: Server, name: str, validate_name: str) -> None:
    """Single events, then the do-nothing endpoint with the same bodies."""
    bodies = single_bodies(run, run.args.concurrency_single)
    single = single_pools(run, server.port, "/v1/events", bodies)
    http_phase(run, server, name, "single", single, 1)
    validate = single_pools(run, server.port, "/v1/_bench/validate", bodies)
    http_phase(run, server, validate_name, "validate", validate, 0)


def phase_grown(run: Run) -> None:
    """An empty database grown through the API: --grow-events in batches of 100 (16
    clients; also stops at --grow-max-seconds), rates per slice, lag probes; then
    (grown-single) single events and the do-nothing endpoint on the grown database."""
    args = run.args
    work_dir = run.root / "grown"
    db = run.template.fresh_copy(work_dir)
    per_client = math.ceil(args.grow_events / (BATCH_SIZE * args.concurrency_batch))
    settle_disk()
    with Server(db, work_dir / "server.log") as server:
        names = []
        if "grown" in args.only:
            http_phase(
                run,
                server,
                "grown",
                "batch",
                batch_pools(run, server.port),
                BATCH_SIZE,
                lag=True,
                warmup=0.0,
                duration=args.grow_max_seconds,
                max_requests=per_client,
                timeline=True,
            )
            names.append("grown")
        if "grown-single" in args.only:
            single_phases(run, server, "grown-single", "grown-validate")
            names.append("grown-single")
        checkpoint_checks(run, server, db, "grown")
    expected = sum(acked_total(run.phases[n]) for n in names)
    final_checks(run, db, expected=expected, label="grown")
    derived_checks(run, db, "grown")
    tree_checks(run, db, "grown")


# -- main ----------------------------------------------------------------------------------


def execute(run: Run) -> None:
    chosen = run.args.only
    prepare_template(run)
    if {"empty", NO_INTEGRITY} & set(chosen):
        integrity_rounds(run)
    if {"preloaded", "single", "raw"} & set(chosen):
        work_dir = run.root / "preloaded"
        db, preloaded = preload(run, work_dir)
        if {"preloaded", "single"} & set(chosen):
            phase_service_preloaded(run, db, work_dir, preloaded)
        if "raw" in chosen:
            phase_raw(run, db)
    if {"grown", "grown-single"} & set(chosen):
        phase_grown(run)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pg = PgDatabase.from_url(args.pg_url) if args.pg_url else None
    root = prepare_root(args)
    template: Database = pg or SqliteDatabase(root / "template" / "trailkeep.db")
    tenants = [f"bench-{i:02d}" for i in range(args.tenants)]
    run = Run(args, root, tenants, template, factory=EventFactory(args.seed))
    progress.print(f"data directory: {root}" + (f"; database: {pg.label}" if pg else ""))
    try:
        execute(run)
    finally:
        if args.data_dir is None and not args.keep:
            remove_tree(root)
        else:
            progress.print(f"kept {root}")
        if pg is not None:
            progress.print(f"the database {pg.label} is left as the run ended")
    render(run, result_console(args.json))
    emit_json(summary(run), args.json, args.out)
    return 0 if all(c["ok"] for c in run.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
