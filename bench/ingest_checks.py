"""The checks bench/ingest.py makes after a load or once a server stopped: every answer
2xx, stored == acknowledged, lag probes found; per database its total, gapless seqs,
derived data (full text, stats) and Merkle tiles recomputed from the events, and the
signed checkpoints against the stored events. Each records its verdict with Run.check."""

from __future__ import annotations

import time
from typing import Any

from common import Database, Server, progress
from ingest_run import Run, acked_total
from trees import checkpoint_problems


def verify_phase(run: Run, name: str, result: dict[str, Any]) -> None:
    """After one load: every answer 2xx, stored == acknowledged, every lag probe seen."""
    failures = result["non_2xx_total"] + result["connection_errors"]
    detail = f"{result['non_2xx_total']} non-2xx, {result['connection_errors']} errors"
    if result["error_samples"]:
        detail += f"; first: {result['error_samples'][0]}"
    run.check(f"{name}: every answer 2xx", failures == 0, detail)
    acked, stored = acked_total(result), result["stored_events"]
    probes = f" ({result['probe_events']} of them lag probes)" if result["probe_events"] else ""
    run.check(
        f"{name}: stored == acknowledged",
        acked == stored,
        f"{stored:,} stored, {acked:,} acknowledged{probes}",
    )
    lag = result.get("lag")
    if lag is not None:
        run.check(
            f"{name}: every lag probe found and indexed",
            lag["timeouts"] == 0 and lag["error_count"] == 0,
            f"{lag['samples']} probes, {lag['timeouts']} not within 60 s,"
            f" {lag['error_count']} errors"
            + (f"; first: {lag['errors'][0]}" if lag["errors"] else ""),
        )


def derived_checks(run: Run, db: Database, label: str) -> None:
    """Full text and stats recomputed from the events, per tenant (the server stopped)."""
    if not run.args.check_derived:
        return
    total = db.count_events()
    if total > run.args.check_derived_max:
        note = f"{label}: derived data not checked ({total:,} events > --check-derived-max)"
        progress.print(f"  note: {note}")
        run.info.setdefault("notes", []).append(note)
        return
    began = time.perf_counter()
    problems = db.derived_problems(run.tenants)
    run.check(
        f"{label} database: full text and stats = the events",
        not problems,
        "; ".join(problems[:3])
        or f"{len(run.tenants)} tenants, {total:,} events recomputed,"
        f" {time.perf_counter() - began:.1f} s",
    )


def checkpoint_checks(run: Run, server: Server, db: Database, label: str) -> None:
    """Every tenant's latest checkpoint, once signed, against its stored events."""
    began = time.perf_counter()
    expected = {t: root for t, root in db.stored_roots(run.tenants).items() if root[0]}
    problems = checkpoint_problems(server.port, run.admin_token, expected)
    sizes = sorted({size for size, _ in expected.values()})
    run.check(
        f"{label}: signed checkpoints = trees of the stored events",
        not problems,
        "; ".join(problems[:3])
        or f"{len(expected)} tenants, sizes {sizes[0]:,}..{sizes[-1]:,},"
        f" {time.perf_counter() - began:.1f} s",
    )


def tree_checks(run: Run, db: Database, label: str) -> None:
    """Every tenant's Merkle tiles form a tree of exactly its stored events."""
    problems_check(
        run,
        f"{label} database: Merkle tiles = the events",
        db.tree_problems(),
        "every tenant's tree holds exactly its events",
    )


def final_checks(run: Run, db: Database, expected: int, label: str) -> None:
    """The database holds ``expected`` events (preload + acknowledged), seqs gapless."""
    total = db.count_events()
    run.check(
        f"{label} database: total events",
        total == expected,
        f"{total:,} stored, {expected:,} expected (preload + acknowledged)",
    )
    gapless_check(run, db, label)


def gapless_check(run: Run, db: Database, label: str) -> None:
    """Every tenant's seqs are 0..n-1."""
    problems_check(
        run,
        f"{label} database: seqs gapless per tenant",
        db.gapless_problems(),
        "every tenant 0..n-1",
    )


def problems_check(run: Run, name: str, problems: list[str], fine: str) -> None:
    """Passes without problems (then says ``fine``); else shows the first three."""
    run.check(name, not problems, "; ".join(problems[:3]) or fine)
