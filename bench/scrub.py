"""The integrity scrub's cost to ingest (issue 14: at most 5% of the rate while it runs).

One database (SQLite by default) filled raw with --events realistic events (bench/export.py's
fill: the service's own privacy code, rows and tiles, server stopped), then one server per
phase on it, each taking batches of 100 from --ingest-clients clients for --ingest-seconds:
the scrub off (``TRAILKEEP_SCRUB_EVENTS_PER_SECOND=0``), at its default (12 a second), at
--fast events a second (a pass over the fill in a few minutes), and off again. The
baseline is the mean of the two "off" phases, so the database growing between phases
does not favour either side; the ratio of each scrubbing phase is against it.

    .venv/bin/python bench/scrub.py --out bench/results/scrub.json      # ~7 min
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Server, add_output_args, emit_json, machine_info, remove_tree
from export import fill, ingest_phase, ingest_pools, say, set_up
from privacy import Api
from sqlite_load import SqliteDatabase
from workload import EventFactory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--events", type=int, default=300_000, help="events filled before")
    p.add_argument("--fast", type=float, default=2_000.0, help="scrub rate of the fast phase")
    p.add_argument("--ingest-seconds", type=float, default=15.0, help="measured s per phase")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured s before each")
    p.add_argument("--ingest-clients", type=int, default=4, help="batch clients")
    add_output_args(p)
    args = p.parse_args(argv)
    args.plain_events = 1  # bench/export.py's fill also makes a (here tiny) plain tenant
    args.job_timeout = 60.0
    return args


def phase(
    args: argparse.Namespace, db: SqliteDatabase, root: Path, tokens: dict[str, str], rate: float
) -> dict[str, Any]:
    name = "scrub off" if rate == 0 else f"scrub at {rate:g} ev/s"
    log = root / f"server-{len(list(root.glob('server-*.log')))}.log"
    env = {"TRAILKEEP_SCRUB_EVENTS_PER_SECOND": str(rate)}
    with Server(db=db, log_path=log, extra_env=env) as server:
        api = Api(server.port, tokens)
        factory = EventFactory(args.seed + int(time.time()) % 1000)
        pools = ingest_pools(server.port, tokens["writer-ingest"], factory, args.ingest_clients)
        result = ingest_phase(args, api, server, db, pools, name, False)
        scrub = api.json("GET", "/readyz", "admin")["integrity"]["scrub"]
    result["scrub"] = scrub
    say(f"  scrub checked {scrub['checked']:,} events, alarms {scrub['alarms'] or 'none'}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="trailkeep-scrub-bench-"))
    db = SqliteDatabase(root / "db" / "trailkeep.db")
    try:
        tokens = set_up(db)
        results: dict[str, Any] = {"machine": machine_info(), "fill": fill(args, db)}
        phases = [phase(args, db, root, tokens, r) for r in (0.0, 12.0, args.fast, 0.0)]
    finally:
        remove_tree(root)
    baseline = (phases[0]["events_per_s"] + phases[3]["events_per_s"]) / 2
    results["phases"] = phases
    results["baseline_events_per_s"] = baseline
    for result in phases[1:3]:
        result["ratio"] = result["events_per_s"] / baseline
        say(
            f"{result['name']}: {result['events_per_s']:,.0f} ev/s, {result['ratio']:.3f} of the"
            f" baseline {baseline:,.0f} (cost {100 * (1 - result['ratio']):.1f}%; target ≤ 5%)"
        )
    emit_json(results, args.json, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
