"""The raw baselines of bench/ingest.py (phase "raw"): with the server stopped, pre-built
rows written straight into the database in transactions of 100 and of 1,000 rows, first
the bare log (its tiles checked), then the old baseline (log + derived rows)."""

from __future__ import annotations

from common import Database, progress
from ingest_checks import gapless_check, tree_checks
from ingest_run import RAW_KINDS, RAW_SIZES, Run, raw_key, raw_label
from trailkeep.kit.timeutil import now_us
from workload import Txn


def build_transactions(run: Run, db: Database, rows: int, size: int) -> list[Txn]:
    """Rows like the service writes, one tenant per transaction (round robin)."""
    seqs = db.next_seqs(run.tenants)
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


def phase_raw(run: Run, db: Database) -> None:
    """The bare log first (its tiles are checked), then the old baseline (log + derived,
    no tiles: after it the trees no longer hold every event, and no server runs)."""
    for kind, derived in RAW_KINDS:
        for size in RAW_SIZES:
            name = raw_label(db, kind, size)
            progress.print(f"phase {name}: building {run.args.raw_rows:,} rows (not timed) ...")
            txns = build_transactions(run, db, run.args.raw_rows, size)
            progress.print(
                f"phase {name}: {db.raw_write}, transactions of {size} rows, {db.raw_settings} ..."
            )
            result = db.write_transactions(txns, run.args.duration, derived)
            key = raw_key(kind, size)
            result.update(name=key, label=name, kind=kind, transaction_rows=size)
            run.phases[key] = result
            del txns
        if not derived:
            tree_checks(run, db, "raw (bare log)")
    gapless_check(run, db, "raw")
