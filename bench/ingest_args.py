"""The command line of bench/ingest.py: its options, their defaults and checks, and the
phase names ``--only`` takes (PHASES, and the ALIASES that stand for several)."""

from __future__ import annotations

import argparse
from pathlib import Path

from common import add_output_args, check_database_url
from ingest_run import BATCH_SIZE, NO_INTEGRITY

PHASES = ("empty", NO_INTEGRITY, "preloaded", "single", "raw", "grown", "grown-single")
ALIASES = {
    "batch": ("empty", "preloaded"),
    "integrity": ("empty", NO_INTEGRITY),
    "grow": ("grown", "grown-single"),
    "all": PHASES,
}


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
        help=f"comma-separated: empty, {NO_INTEGRITY}, preloaded, single, raw, grown,"
        f" grown-single, batch (= empty,preloaded), integrity (= empty,{NO_INTEGRITY}),"
        " grow (= grown,grown-single), all",
    )
    p.add_argument(
        "--grow-events",
        type=int,
        default=300_000,
        help="events the grown phase sends into an empty database (batches of 100)",
    )
    p.add_argument(
        "--grow-max-seconds",
        type=float,
        default=300.0,
        help="the grown phase also stops after this many seconds",
    )
    p.add_argument(
        "--grow-slice",
        type=int,
        default=None,
        help="events per reported slice of the grown phase (default 50,000, or a fifth of"
        " --grow-events when that is less)",
    )
    p.add_argument(
        "--lag-interval",
        type=float,
        default=0.25,
        help="seconds between lag probes (one event each) during the batch phases",
    )
    p.add_argument(
        "--catch-up-timeout",
        type=float,
        default=300.0,
        help="seconds the indexer may take to catch up after a phase",
    )
    p.add_argument(
        "--check-derived",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after each server, recompute full text and stats from the events and compare"
        " (trailkeep.store.derived.check; skipped above --check-derived-max events)",
    )
    p.add_argument(
        "--check-derived-max",
        type=int,
        default=2_000_000,
        help="events in a database above which --check-derived skips it (with a note)",
    )
    p.add_argument(
        "--integrity-rounds",
        type=int,
        default=1,
        help=f"runs of the pair empty + {NO_INTEGRITY}, alternating which goes first",
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
        help="where to put the SQLite databases and the server logs (kept); default a "
        "temp dir, removed",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    if not args.only:
        p.error("--only selected no phase")
    if args.tenants < 1 or args.concurrency_batch < 1 or args.concurrency_single < 1:
        p.error("--tenants and the concurrencies must be at least 1")
    if args.integrity_rounds < 1:
        p.error("--integrity-rounds must be at least 1")
    if args.grow_events < BATCH_SIZE or (args.grow_slice is not None and args.grow_slice < 1):
        p.error(f"--grow-events must be at least {BATCH_SIZE} and --grow-slice at least 1")
    return args
