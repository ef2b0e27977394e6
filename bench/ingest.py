"""Ingest benchmark: how many events per second Trailkeep acknowledges, durably.

It starts a real server (``trailkeep serve`` in its own process, on a free 127.0.0.1
port, TRAILKEEP_BENCH_ENDPOINTS=true, TRAILKEEP_ACCESS_LOG=false), creates tenants and
writer keys with the CLI, and drives it from this process with a minimal asyncio
HTTP/1.1 keep-alive client (uvloop; one connection per virtual client). Phases:

  empty      POST /v1/events/batch, 100 events each, --concurrency-batch clients (16),
             into an empty database: events/s acknowledged, latency p50/p95/p99.
  preloaded  the same into a database already holding --preload events (1,000,000 over
             10 tenants, built straight in SQLite with the service's schema and INSERT
             statements before the server starts).
  single     POST /v1/events (one event each), --concurrency-single clients (64), and in
             the same run POST /v1/_bench/validate with the same bodies (auth + read +
             validate, stores nothing): events/s, requests/s and their ratio.
  raw        with the server stopped, on the same (preloaded) database file after the
             service phases: pre-built rows through the service's own INSERT code, in
             transactions of 100 rows (one per client batch) and of 1,000 rows,
             synchronous=FULL + WAL through the
             service's own open_connection: rows/s, and the service's batch rate as a
             ratio to both.

Every phase runs for --duration seconds (after --warmup) and stops by itself. Non-2xx
answers and connection errors are counted (they must be 0), and the events stored are
counted in SQLite before and after each phase: they must equal the events acknowledged.
The exit status is 1 when a check fails.

Run it (full scale, takes a few minutes; ~1.2 KB of disk per event, ~1.5 GB in all):

    .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --json --out bench/results/ingest.json
    .venv/bin/python bench/ingest.py --only single --preload 0 --duration 5   # one phase
    .venv/bin/python bench/ingest.py --preload 20000 --duration 3             # smoke test
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from common import (
    EventFactory,
    LoadPlan,
    LoadSpec,
    Server,
    add_output_args,
    build_request,
    bulk_load,
    check_database_url,
    copy_database,
    count_events,
    create_keys,
    create_tenants,
    emit_json,
    fmt_int,
    fmt_ms,
    gapless_problems,
    latency_summary,
    machine_info,
    next_seqs,
    progress,
    remove_tree,
    result_console,
    run_load,
    service_settings,
    summarize_tally,
)
from trailkeep.kit.timeutil import now_us
from trailkeep.store.sqlite.connection import open_connection
from trailkeep.store.sqlite.event_writes import insert_stored_rows

PHASES = ("empty", "preloaded", "single", "raw")
ALIASES = {"batch": ("empty", "preloaded"), "all": PHASES}
BATCH_SIZE = 100
BODIES_PER_CLIENT = 8


# -- arguments ------------------------------------------------------------------------------


def parse_phases(value: str) -> tuple[str, ...]:
    chosen: list[str] = []
    for name in (part.strip() for part in value.split(",") if part.strip()):
        if name in ALIASES:
            chosen.extend(ALIASES[name])
        elif name in PHASES:
            chosen.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown phase {name!r}; choose from {', '.join((*PHASES, *ALIASES))}"
            )
    return tuple(p for p in PHASES if p in chosen)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep ingest benchmark (see the docstring of bench/ingest.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--concurrency-batch", type=int, default=16, help="batch clients")
    p.add_argument("--concurrency-single", type=int, default=64, help="single-event clients")
    p.add_argument("--preload", type=int, default=1_000_000, help="events before phase b")
    p.add_argument("--tenants", type=int, default=10, help="tenants (preload and clients)")
    p.add_argument(
        "--raw-rows",
        type=int,
        default=200_000,
        help="rows pre-built per raw run (a raw run also stops at --duration)",
    )
    p.add_argument(
        "--only",
        type=parse_phases,
        default=PHASES,
        help="comma-separated: empty, preloaded, single, raw, batch (= empty,preloaded), all",
    )
    p.add_argument(
        "--client-procs",
        type=int,
        default=1,
        help="load-generator processes (1 is enough: see 'client CPU')",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where to put the databases (kept); default a temp dir, removed",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    add_output_args(p)
    args = p.parse_args(argv)
    check_database_url(args.database_url)
    if not args.only:
        p.error("--only selected no phase")
    if args.tenants < 1 or args.concurrency_batch < 1 or args.concurrency_single < 1:
        p.error("--tenants and the concurrencies must be at least 1")
    return args


# -- state of one run --------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    root: Path
    tenants: list[str]
    tokens: dict[str, str] = field(default_factory=dict)
    factory: EventFactory = field(default_factory=EventFactory)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def template_db(self) -> Path:
        return self.root / "template" / "trailkeep.db"

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
        progress.print(f"  check {name}: {mark} ({detail})")


def prepare_root(args: argparse.Namespace) -> Path:
    if args.data_dir is None:
        return Path(tempfile.mkdtemp(prefix="trailkeep-bench-"))
    root: Path = args.data_dir
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"error: --data-dir {root} is not empty; give a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    return root


def prepare_template(run: Run) -> None:
    """Tenants and writer keys, made once with the CLI and copied into each database."""
    progress.print(f"creating {len(run.tenants)} tenants and writer keys with the CLI ...")
    began = time.perf_counter()
    create_tenants(run.template_db, run.tenants)
    run.tokens = create_keys(run.template_db, run.tenants, "writer")
    progress.print(f"  done in {time.perf_counter() - began:.1f} s")


# -- request pools -----------------------------------------------------------------------


def client_tenant(run: Run, client: int) -> str:
    return run.tenants[client % len(run.tenants)]


def batch_pools(run: Run, port: int, clients: int) -> list[list[bytes]]:
    """Per client, a few distinct 100-event batches for its tenant (server-assigned ids)."""
    pools = []
    for c in range(clients):
        token = run.tokens[client_tenant(run, c)]
        pool = []
        for _ in range(BODIES_PER_CLIENT):
            now = now_us()
            events = [
                run.factory.client_event(now - run.factory.rng.randrange(60_000_000))
                for _ in range(BATCH_SIZE)
            ]
            body = _dumps({"events": events})
            pool.append(build_request("POST", "/v1/events/batch", port, token, body))
        pools.append(pool)
    return pools


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
    run: Run, server: Server, name: str, mode: str, pools: list[list[bytes]], per_request: int
) -> dict[str, Any]:
    args = run.args
    progress.print(
        f"phase {name}: {len(pools)} clients, {args.warmup:g} s warm-up + {args.duration:g} s ..."
    )
    stored_before = count_events(server.db_path)
    cpu_before = server.cpu_seconds()
    wall_before = time.perf_counter()
    spec = LoadSpec(server.port, mode, pools, args.warmup, args.duration)
    tally = run_load(spec, args.client_procs)
    wall = time.perf_counter() - wall_before
    server_cpu = server.cpu_seconds() - cpu_before
    stored = count_events(server.db_path) - stored_before
    result = summarize_tally(tally, per_request)
    result.update(
        name=name,
        mode=mode,
        clients=len(pools),
        events_per_request=per_request,
        server_cpu_pct=100.0 * server_cpu / wall if wall else math.nan,
        stored_events=stored,
    )
    verify_phase(run, name, result)
    run.phases[name] = result
    return result


def verify_phase(run: Run, name: str, result: dict[str, Any]) -> None:
    failures = result["non_2xx_total"] + result["connection_errors"]
    detail = f"{result['non_2xx_total']} non-2xx, {result['connection_errors']} errors"
    if result["error_samples"]:
        detail += f"; first: {result['error_samples'][0]}"
    run.check(f"{name}: every answer 2xx", failures == 0, detail)
    acked, stored = result["acked_events"], result["stored_events"]
    run.check(
        f"{name}: stored == acknowledged",
        acked == stored,
        f"{stored:,} stored, {acked:,} acknowledged",
    )


# -- phases ----------------------------------------------------------------------------------


def phase_empty(run: Run) -> None:
    db = run.root / "empty" / "trailkeep.db"
    copy_database(run.template_db, db)
    with Server(db, db.parent / "server.log") as server:
        pools = batch_pools(run, server.port, run.args.concurrency_batch)
        http_phase(run, server, "empty", "batch", pools, BATCH_SIZE)
    final_checks(run, db, expected=run.phases["empty"]["acked_events"], label="empty")


def preload(run: Run, db: Path) -> int:
    copy_database(run.template_db, db)
    n: int = run.args.preload
    if n <= 0:
        return 0
    per = n // len(run.tenants)
    counts = {t: per + (1 if i < n % len(run.tenants) else 0) for i, t in enumerate(run.tenants)}
    progress.print(f"preloading {n:,} events over {len(run.tenants)} tenants into {db} ...")
    plan = LoadPlan(counts, end_us=now_us() - 3_600_000_000, seed=run.args.seed)
    stats = bulk_load(db, plan, run.factory, "preload")
    run.info["preload"] = stats
    progress.print(
        f"  preloaded {stats['events']:,} events in {stats['seconds']:.1f} s "
        f"({stats['events_per_s']:,.0f}/s)"
    )
    return n


def phase_service_preloaded(run: Run, db: Path, preloaded: int) -> None:
    chosen = run.args.only
    with Server(db, db.parent / "server.log") as server:
        if "preloaded" in chosen:
            pools = batch_pools(run, server.port, run.args.concurrency_batch)
            http_phase(run, server, "preloaded", "batch", pools, BATCH_SIZE)
        if "single" in chosen:
            bodies = single_bodies(run, run.args.concurrency_single)
            single = single_pools(run, server.port, "/v1/events", bodies)
            http_phase(run, server, "single", "single", single, 1)
            validate = single_pools(run, server.port, "/v1/_bench/validate", bodies)
            http_phase(run, server, "validate", "validate", validate, 0)
    acked = sum(run.phases[p]["acked_events"] for p in ("preloaded", "single") if p in run.phases)
    final_checks(run, db, expected=preloaded + acked, label="preloaded")


def final_checks(run: Run, db: Path, expected: int, label: str) -> None:
    total = count_events(db)
    run.check(
        f"{label} database: total events",
        total == expected,
        f"{total:,} stored, {expected:,} expected (preload + acknowledged)",
    )
    problems = gapless_problems(db)
    run.check(
        f"{label} database: seqs gapless per tenant",
        not problems,
        "; ".join(problems[:3]) or "every tenant 0..n-1",
    )


# -- raw SQLite ----------------------------------------------------------------------------

Txn = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def build_transactions(run: Run, db: Path, rows: int, size: int) -> list[Txn]:
    """Rows like the service writes, one tenant per transaction (round robin)."""
    conn = open_connection(db, readonly=True)
    try:
        seqs = next_seqs(conn, run.tenants)
    finally:
        conn.close()
    txns: list[Txn] = []
    factory = run.factory
    for k in range(max(1, rows // size)):
        tenant = run.tenants[k % len(run.tenants)]
        events, targets = [], []
        for _ in range(size):
            seq = seqs[tenant]
            seqs[tenant] = seq + 1
            received = now_us()
            row, trows = factory.stored_row(tenant, seq, received - 1_000_000, received)
            events.append(row)
            targets.extend(trows)
        txns.append((events, targets))
    return txns


def insert_transactions(db: Path, txns: list[Txn], limit_s: float) -> dict[str, Any]:
    settings = service_settings()
    conn = open_connection(
        db, synchronous=settings.sqlite_synchronous, cache_mb=settings.sqlite_cache_mb
    )
    latencies: list[float] = []
    rows = 0
    try:
        began = time.perf_counter()
        deadline = began + limit_s
        for events, targets in txns:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            insert_stored_rows(conn, events, targets)
            conn.execute("COMMIT")
            done = time.perf_counter()
            latencies.append(done - t0)
            rows += len(events)
            if done >= deadline:
                break
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    return {
        "rows": rows,
        "transactions": len(latencies),
        "seconds": round(elapsed, 3),
        "rows_per_s": rows / elapsed,
        **latency_summary(latencies),
    }


def phase_raw(run: Run, db: Path) -> None:
    settings = service_settings()
    for size in (BATCH_SIZE, 1000):
        progress.print(f"phase raw-{size}: building {run.args.raw_rows:,} rows (not timed) ...")
        txns = build_transactions(run, db, run.args.raw_rows, size)
        progress.print(
            f"phase raw-{size}: inserting, transactions of {size} rows, "
            f"synchronous={settings.sqlite_synchronous} ..."
        )
        result = insert_transactions(db, txns, run.args.duration)
        result.update(name=f"raw-{size}", transaction_rows=size)
        run.phases[f"raw-{size}"] = result
        del txns
    problems = gapless_problems(db)
    run.check(
        "raw database: seqs gapless per tenant",
        not problems,
        "; ".join(problems[:3]) or "every tenant 0..n-1",
    )


# -- report ----------------------------------------------------------------------------------


def ratios(run: Run) -> dict[str, float]:
    out: dict[str, float] = {}
    ph = run.phases
    batch = ph.get("preloaded") or ph.get("empty")
    if batch is not None:
        for size in (BATCH_SIZE, 1000):
            raw = ph.get(f"raw-{size}")
            if raw is not None:
                out[f"{batch['name']}_batch_vs_raw_{size}"] = (
                    batch["events_per_s"] / raw["rows_per_s"]
                )
    if "single" in ph and "validate" in ph:
        out["single_vs_validate"] = ph["single"]["events_per_s"] / ph["validate"]["requests_per_s"]
    return out


def render(run: Run, console: Console) -> None:
    table = Table(title="Trailkeep ingest benchmark", title_justify="left")
    for col in (
        "phase",
        "clients",
        "requests",
        "events/s",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "non-2xx",
        "errors",
        "client CPU",
        "server CPU",
    ):
        table.add_column(col, justify="left" if col == "phase" else "right")
    http = {n: r for n, r in run.phases.items() if not n.startswith("raw-")}
    for name, r in http.items():
        table.add_row(
            name,
            str(r["clients"]),
            f"{r['requests']:,}",
            fmt_int(r["events_per_s"]) if r["events_per_request"] else "-",
            fmt_int(r["requests_per_s"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
            fmt_ms(r["max_ms"]),
            str(r["non_2xx_total"]),
            str(r["connection_errors"]),
            f"{r['client_cpu_pct']:.0f}%",
            f"{r['server_cpu_pct']:.0f}%",
        )
    if http:
        console.print(table)
    render_raw(run, console)
    for key, value in ratios(run).items():
        console.print(f"ratio {key}: {value:.2f}")
    failed = [c for c in run.checks if not c["ok"]]
    console.print(
        f"checks: {len(run.checks) - len(failed)}/{len(run.checks)} passed"
        + ("" if not failed else " — FAILED: " + "; ".join(c["check"] for c in failed))
    )


def render_raw(run: Run, console: Console) -> None:
    raws = [r for n, r in run.phases.items() if n.startswith("raw-")]
    if not raws:
        return
    table = Table(title=f"Raw SQLite (server stopped; {raw_database(run)})", title_justify="left")
    for col in ("run", "rows", "transactions", "rows/s", "commit p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in raws:
        table.add_row(
            r["name"],
            f"{r['rows']:,}",
            f"{r['transactions']:,}",
            fmt_int(r["rows_per_s"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
        )
    console.print(table)


def raw_database(run: Run) -> str:
    if {"preloaded", "single"} & set(run.args.only):
        return "the same database file, after the service phases ran on it"
    return "the preloaded database file (no service phase ran on it)"


def summary(run: Run) -> dict[str, Any]:
    args = run.args
    return {
        "benchmark": "ingest",
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency_batch": args.concurrency_batch,
            "concurrency_single": args.concurrency_single,
            "batch_size": BATCH_SIZE,
            "preload": args.preload,
            "tenants": args.tenants,
            "raw_rows": args.raw_rows,
            "phases": list(args.only),
            "client_procs": args.client_procs,
            "sqlite_synchronous": service_settings().sqlite_synchronous,
            "raw_database": raw_database(run),
        },
        "machine": machine_info(),
        **run.info,
        "phases": run.phases,
        "ratios": ratios(run),
        "checks": run.checks,
        "ok": all(c["ok"] for c in run.checks),
    }


# -- main ----------------------------------------------------------------------------------


def execute(run: Run) -> None:
    chosen = run.args.only
    prepare_template(run)
    if "empty" in chosen:
        phase_empty(run)
    if {"preloaded", "single", "raw"} & set(chosen):
        db = run.root / "preloaded" / "trailkeep.db"
        preloaded = preload(run, db)
        if {"preloaded", "single"} & set(chosen):
            phase_service_preloaded(run, db, preloaded)
        if "raw" in chosen:
            phase_raw(run, db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = prepare_root(args)
    tenants = [f"bench-{i:02d}" for i in range(args.tenants)]
    run = Run(args, root, tenants, factory=EventFactory(args.seed))
    progress.print(f"data directory: {root}")
    try:
        execute(run)
    finally:
        if args.data_dir is None and not args.keep:
            remove_tree(root)
        else:
            progress.print(f"kept {root}")
    render(run, result_console(args.json))
    emit_json(summary(run), args.json, args.out)
    return 0 if all(c["ok"] for c in run.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
