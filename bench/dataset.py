"""The kept data set of bench/query.py and bench/proofs.py: one big tenant and a few small.

``--events`` in the measured tenant (``org-00``), ``--other-events`` in each other
tenant, loaded straight into the database (workload.py events, with the tenants'
Merkle tiles, see trees.py) and described by metadata stored beside it, so that a later
run can reuse it: a SQLite ``--db`` file is reused when it exists; a PostgreSQL database
with ``--reuse-db``. Events a benchmark appends through the service later are counted
in the metadata too (``appended``).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Database, create_tenants, progress
from pg_load import PgDatabase
from rowgen import LoadPlan
from sqlite_load import SqliteDatabase
from trailkeep.kit.timeutil import now_us
from workload import DAY_US, WORKLOAD_VERSION, EventFactory

BUILDERS = "bench/query.py or bench/proofs.py"


def add_dataset_args(
    p: argparse.ArgumentParser, other_events: int, events: int = 1_000_000
) -> None:
    p.add_argument("--events", type=int, default=events, help="events of the measured tenant")
    p.add_argument(
        "--other-events", type=int, default=other_events, help="events of each other tenant"
    )
    p.add_argument("--tenants", type=int, default=10)
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite database file: reused when it exists, else built there and kept",
    )
    p.add_argument(
        "--reuse-db",
        action="store_true",
        help=f"PostgreSQL: reuse the database of --database-url when {BUILDERS} built it "
        "(default: drop it and build it again)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temp dir (SQLite without --db; logs)"
    )
    p.add_argument(
        "--load-workers",
        type=int,
        default=None,
        help="processes making the rows while the loader writes them (default: CPUs - 1, "
        "at most 3; 0: the loader makes them itself)",
    )


def check_dataset_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.pg_url is not None and args.db is not None:
        p.error("--db names a SQLite file; it does not go with --database-url postgresql://...")
    if args.pg_url is None and args.reuse_db:
        p.error("--reuse-db is for --database-url postgresql://... (a SQLite --db is reused)")
    if args.tenants < 1 or args.events < 1 or args.other_events < 0:
        p.error("--tenants and --events must be at least 1, --other-events at least 0")


@dataclass
class Dataset:
    db: Database
    measured: str
    counts: dict[str, int]  # as built
    end_us: int
    span_us: int
    seed: int
    built_now: bool = False
    workload: int = 1  # workload.WORKLOAD_VERSION of the events (1: before it was recorded)
    build: dict[str, Any] = field(default_factory=dict)
    appended: dict[str, int] = field(default_factory=dict)  # through the service, later

    def meta(self) -> dict[str, Any]:
        return {
            "measured": self.measured,
            "counts": self.counts,
            "end_us": self.end_us,
            "span_us": self.span_us,
            "seed": self.seed,
            "workload": self.workload,
            "build": self.build,
            "appended": self.appended,
        }

    def stored(self) -> dict[str, int]:
        """Events per tenant now: as built plus appended."""
        return {t: n + self.appended.get(t, 0) for t, n in self.counts.items()}

    @property
    def total(self) -> int:
        return sum(self.stored().values())

    def note_appended(self, added: dict[str, int]) -> None:
        for tenant, n in added.items():
            self.appended[tenant] = self.appended.get(tenant, 0) + n
        self.db.write_meta(self.meta())


def load_dataset(db: Database, args: argparse.Namespace) -> Dataset:
    meta = db.read_meta()
    if meta is None:
        redo = "leave out --reuse-db" if args.pg_url else "delete it or choose another --db"
        raise SystemExit(
            f"error: {db.label} exists but holds no metadata of {BUILDERS}: it was not "
            f"built by either ({redo})"
        )
    data = Dataset(
        db,
        meta["measured"],
        meta["counts"],
        meta["end_us"],
        meta["span_us"],
        meta["seed"],
        workload=meta.get("workload", 1),
        build=meta.get("build", {}),
        appended=meta.get("appended", {}),
    )
    wanted = (args.events, args.other_events, args.tenants, args.seed)
    have = (data.counts[data.measured], min(data.counts.values()), len(data.counts), data.seed)
    if wanted != have:
        progress.print(
            f"[yellow]note:[/yellow] reusing {db.label} as built (events={have[0]:,}, "
            f"other-events={have[1]:,}, tenants={have[2]}, seed={have[3]}); "
            "--events/--other-events/--tenants/--seed are ignored"
        )
    progress.print(f"reusing {db.label} ({data.total:,} events)")
    return data


def build_dataset(db: Database, args: argparse.Namespace) -> Dataset:
    tenants = [f"org-{i:02d}" for i in range(args.tenants)]
    counts = {t: (args.events if i == 0 else args.other_events) for i, t in enumerate(tenants)}
    data = Dataset(
        db,
        tenants[0],
        counts,
        now_us() - 3_600_000_000,
        90 * DAY_US,
        args.seed,
        built_now=True,
        workload=WORKLOAD_VERSION,
    )
    progress.print(
        f"building {db.label}: {sum(counts.values()):,} events, {len(tenants)} tenants "
        f"(measured: {data.measured}, {args.events:,} events) ..."
    )
    db.recreate()
    create_tenants(db, tenants)
    plan = LoadPlan(counts, data.end_us, data.span_us, data.seed, workers=args.load_workers)
    data.build = db.bulk_load(plan, EventFactory(data.seed), "build")
    progress.print(
        f"  built in {data.build['seconds']:.0f} s ({data.build['events_per_s']:,.0f} events/s)"
    )
    db.write_meta(data.meta())
    return data


def open_dataset(db: Database, args: argparse.Namespace) -> Dataset:
    """Reuse the data set when allowed and present, else build it; check it either way."""
    reuse = db.exists() and (args.pg_url is None or args.reuse_db)
    data = load_dataset(db, args) if reuse else build_dataset(db, args)
    total = db.count_events()
    if total != data.total:
        raise SystemExit(
            f"error: {db.label} holds {total:,} events, its metadata says {data.total:,};"
            " rebuild it"
        )
    if reuse:
        problems = db.tree_problems()
        if problems:
            raise SystemExit(
                f"error: {db.label}: the Merkle tiles do not match the events (built before "
                f"preloads stored tiles?): {'; '.join(problems[:3])}; rebuild it"
            )
    return data


@dataclass
class Place:
    """Where a run's database and server logs live, and the temp dir to remove after."""

    db: Database
    log_dir: Path
    tmp: Path | None


def choose_place(args: argparse.Namespace, prefix: str) -> Place:
    if args.pg_url is not None:
        tmp = Path(tempfile.mkdtemp(prefix=prefix))  # the server's log
        return Place(PgDatabase.from_url(args.pg_url), tmp, tmp)
    if args.db is None:
        tmp = Path(tempfile.mkdtemp(prefix=prefix))
        return Place(SqliteDatabase(tmp / "trailkeep.db"), tmp, tmp)
    path = args.db.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return Place(SqliteDatabase(path), path.parent, None)
