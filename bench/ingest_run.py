"""The state of one bench/ingest.py run, and its report (tables, ratios, JSON summary)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from common import Database, fmt_int, fmt_ms, machine_info, progress, service_settings
from workload import EventFactory

BATCH_SIZE = 100
RAW_SIZES = (BATCH_SIZE, 1000)
# The service's batch rate as a share of the raw rate of the same run, by backend.
RAW_RATIO_TARGETS = {"SQLite": 0.50, "PostgreSQL": 0.40}
# Batch ingest into an empty database with integrity ÷ the same without (issue 4).
INTEGRITY_RATIO_TARGET = 0.80
NO_INTEGRITY = "empty-nointegrity"


def round_name(phase: str, number: int) -> str:
    """ "empty", "empty-nointegrity" in round 1; "empty.2", ... in later rounds."""
    return phase if number == 1 else f"{phase}.{number}"


# -- state of one run --------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    root: Path  # SQLite files and server logs
    tenants: list[str]
    # Tenants and keys, no events: SQLite copies it per phase, PostgreSQL empties it.
    template: Database
    tokens: dict[str, str] = field(default_factory=dict)
    admin_token: str = ""  # a platform admin key: reads every tenant's checkpoint
    factory: EventFactory = field(default_factory=EventFactory)
    batch_bodies: list[list[bytes]] = field(default_factory=list)  # made once, every phase
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
        progress.print(f"  check {name}: {mark} ({detail})")


# -- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    key: str  # in the JSON summary
    label: str
    value: float
    target: float | None = None

    def line(self) -> str:
        text = f"ratio {self.label}: {self.value:.2f}"
        if self.target is not None:
            verdict = "met" if self.value >= self.target else "missed"
            text += f" (target ≥ {self.target:.2f}: {verdict})"
        return text


def batch_phase(run: Run) -> dict[str, Any] | None:
    """The service's batch rate that the raw rates are compared with."""
    return run.phases.get("preloaded") or run.phases.get("empty")


def ratio_list(run: Run) -> list[Ratio]:
    out: list[Ratio] = []
    ph = run.phases
    batch = batch_phase(run)
    if batch is not None:
        for size in RAW_SIZES:
            raw = ph.get(f"raw-{size}")
            if raw is not None:
                out.append(
                    Ratio(
                        f"{batch['name']}_batch_vs_raw_{size}",
                        f"{batch['name']} batch ÷ {raw['label']}",
                        batch["events_per_s"] / raw["rows_per_s"],
                        RAW_RATIO_TARGETS.get(run.template.kind),
                    )
                )
    out.extend(integrity_ratios(run))
    if "single" in ph and "validate" in ph:
        out.append(
            Ratio(
                "single_vs_validate",
                "single events/s ÷ validate requests/s",
                ph["single"]["events_per_s"] / ph["validate"]["requests_per_s"],
            )
        )
    return out


def integrity_pairs(run: Run) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(with, without integrity) results of each round that ran both."""
    pairs = []
    number = 1
    while (with_ := run.phases.get(round_name("empty", number))) is not None:
        without = run.phases.get(round_name(NO_INTEGRITY, number))
        if without is not None:
            pairs.append((with_, without))
        number += 1
    return pairs


def integrity_ratios(run: Run) -> list[Ratio]:
    """Per round when there are several, then over all rounds (mean ÷ mean): the target."""
    pairs = integrity_pairs(run)
    if not pairs:
        return []
    label = "batch empty (with integrity) ÷ batch empty without integrity"
    out = []
    if len(pairs) > 1:
        for number, (with_, without) in enumerate(pairs, 1):
            out.append(
                Ratio(
                    f"integrity_round_{number}",
                    f"{label}, round {number}",
                    with_["events_per_s"] / without["events_per_s"],
                )
            )
    mean_with = sum(w["events_per_s"] for w, _ in pairs) / len(pairs)
    mean_without = sum(wo["events_per_s"] for _, wo in pairs) / len(pairs)
    rounds = "" if len(pairs) == 1 else f" (mean of {len(pairs)} rounds each)"
    out.append(
        Ratio(
            "empty_with_vs_without_integrity",
            label + rounds,
            mean_with / mean_without,
            INTEGRITY_RATIO_TARGET,
        )
    )
    return out


def ratios(run: Run) -> dict[str, float]:
    return {r.key: r.value for r in ratio_list(run)}


def render(run: Run, console: Console) -> None:
    table = Table(title=f"Trailkeep ingest benchmark ({run.template.kind})", title_justify="left")
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
    for ratio in ratio_list(run):
        console.print(ratio.line())
    failed = [c for c in run.checks if not c["ok"]]
    console.print(
        f"checks: {len(run.checks) - len(failed)}/{len(run.checks)} passed"
        + ("" if not failed else " — FAILED: " + "; ".join(c["check"] for c in failed))
    )


def render_raw(run: Run, console: Console) -> None:
    raws = [r for n, r in run.phases.items() if n.startswith("raw-")]
    if not raws:
        return
    db = run.template
    batch = batch_phase(run)
    versus = f"{batch['name']} batch ÷ raw" if batch is not None else "batch ÷ raw"
    title = f"Raw {db.kind} {db.raw_write} ({db.raw_settings}; server stopped; {raw_database(run)})"
    table = Table(title=title, title_justify="left")
    for col in (
        "run",
        "rows",
        "transactions",
        "events/s",
        "commit p50 ms",
        "p95 ms",
        "p99 ms",
        versus,
    ):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in raws:
        share = batch["events_per_s"] / r["rows_per_s"] if batch is not None else math.nan
        table.add_row(
            r["label"],
            f"{r['rows']:,}",
            f"{r['transactions']:,}",
            fmt_int(r["rows_per_s"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
            "-" if math.isnan(share) else f"{share:.0%}",
        )
    console.print(table)


def raw_database(run: Run) -> str:
    if {"preloaded", "single"} & set(run.args.only):
        return "the same database, after the service phases ran on it"
    return "the preloaded database (no service phase ran on it)"


def summary(run: Run) -> dict[str, Any]:
    args = run.args
    durability = (
        {"sqlite_synchronous": service_settings().sqlite_synchronous}
        if run.template.kind == "SQLite"
        else {}
    )
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
            "integrity_rounds": args.integrity_rounds,
            "client_procs": args.client_procs,
            **durability,
            "raw_database": raw_database(run),
            "raw_write": f"{run.template.raw_write}, {run.template.raw_settings}",
        },
        "machine": machine_info(),
        **run.info,
        "phases": run.phases,
        "ratios": ratios(run),
        "checks": run.checks,
        "ok": all(c["ok"] for c in run.checks),
    }
