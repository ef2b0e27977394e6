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
# The raw baselines, in the order they run: the bare log (events with all their
# indexes, event_targets, event_ids on PostgreSQL, and the Merkle tiles; nothing
# derived), then the old baseline (log + derived rows through insert_stored_rows).
RAW_KINDS = (("log", False), ("derived", True))
# The service's batch rate as a share of the raw rate of the same run, by backend:
# against the bare log (issue 13), and against the old baseline (log + derived).
RAW_RATIO_TARGETS = {"SQLite": 0.50, "PostgreSQL": 0.50}
OLD_RAW_RATIO_TARGETS = {"SQLite": 0.50, "PostgreSQL": 0.40}
# Full text and stats behind acknowledgement (p99 of the lag probes), server memory.
LAG_P99_TARGET_MS = 1000.0
RSS_TARGET_MB = 512.0
GROW_SLICE = 50_000
# Batch ingest into an empty database with integrity ÷ the same without (issue 4).
INTEGRITY_RATIO_TARGET = 0.80
NO_INTEGRITY = "empty-nointegrity"


def raw_key(kind: str, size: int) -> str:
    return f"raw-{kind}-{size}"


def raw_label(db: Database, kind: str, size: int) -> str:
    what = "bare log" if kind == "log" else "+ derived"
    return f"raw {db.raw_write} {what} ×{size}"  # noqa: RUF001 - a multiplication sign, meant


def acked_total(result: dict[str, Any]) -> int:
    """Events a phase had acknowledged: the load's and the lag probes'."""
    return int(result["acked_events"]) + int(result.get("probe_events", 0))


def grow_slice(args: argparse.Namespace) -> int:
    if args.grow_slice is not None:
        return int(args.grow_slice)
    return max(BATCH_SIZE, min(GROW_SLICE, args.grow_events // 5))


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
    tokens: dict[str, str] = field(default_factory=dict)  # writer keys
    reader_tokens: dict[str, str] = field(default_factory=dict)  # the lag probes' tenant
    probe_event: dict[str, Any] = field(default_factory=dict)  # lag probes' base event
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
        for kind, _ in RAW_KINDS:
            targets = RAW_RATIO_TARGETS if kind == "log" else OLD_RAW_RATIO_TARGETS
            note = "" if kind == "log" else " (old baseline: log + derived, no tiles)"
            for size in RAW_SIZES:
                raw = ph.get(raw_key(kind, size))
                if raw is not None:
                    out.append(
                        Ratio(
                            f"{batch['name']}_batch_vs_raw_{kind}_{size}",
                            f"{batch['name']} batch ÷ {raw['label']}{note}",
                            batch["events_per_s"] / raw["rows_per_s"],
                            targets.get(run.template.kind),
                        )
                    )
    out.extend(integrity_ratios(run))
    for single, validate in (("single", "validate"), ("grown-single", "grown-validate")):
        if single in ph and validate in ph:
            out.append(
                Ratio(
                    f"{single.replace('-', '_')}_vs_validate",
                    f"{single} events/s ÷ {validate} requests/s",
                    ph[single]["events_per_s"] / ph[validate]["requests_per_s"],
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
        "failed",
        "client CPU",
        "server CPU",
        "peak RSS MB",
        "lag p99 ms",
        "indexed after s",
    ):
        table.add_column(col, justify="left" if col == "phase" else "right")
    http = http_phases(run)
    for name, r in http.items():
        lag = r.get("lag")
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
            str(r["non_2xx_total"] + r["connection_errors"]),
            f"{r['client_cpu_pct']:.0f}%",
            f"{r['server_cpu_pct']:.0f}%",
            fmt_int(r["peak_rss_mb"]),
            fmt_int(lag["p99_ms"]) if lag else "-",
            fmt_secs(r.get("catch_up_s")),
        )
    if http:
        console.print(table)
    render_lag(run, console)
    render_slices(run, console)
    render_raw(run, console)
    for ratio in ratio_list(run):
        console.print(ratio.line())
    for line in target_lines(run):
        console.print(line)
    for note in run.info.get("notes", []):
        console.print(f"note: {note}")
    failed = [c for c in run.checks if not c["ok"]]
    console.print(
        f"checks: {len(run.checks) - len(failed)}/{len(run.checks)} passed"
        + ("" if not failed else " — FAILED: " + "; ".join(c["check"] for c in failed))
    )


def http_phases(run: Run) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in run.phases.items() if not n.startswith("raw-")}


def fmt_secs(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def render_lag(run: Run, console: Console) -> None:
    rows = [(n, r["lag"]) for n, r in http_phases(run).items() if "lag" in r]
    if not rows:
        return
    table = Table(
        title="Lag of full text and stats behind acknowledgement (a probe event"
        f" every {rows[0][1]['interval_s']:g} s, polled every {rows[0][1]['poll_s'] * 1000:g}"
        " ms: found by its word AND Trailkeep-Indexed-To-Seq past its seq)",
        title_justify="left",
    )
    for col in (
        "phase",
        "probes",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "found p99 ms",
        "indexed p99 ms",
        "timeouts",
        f"p99 ≤ {LAG_P99_TARGET_MS:,.0f} ms",
    ):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, lag in rows:
        table.add_row(
            name,
            str(lag["samples"]),
            fmt_ms(lag["p50_ms"]),
            fmt_ms(lag["p95_ms"]),
            fmt_ms(lag["p99_ms"]),
            fmt_ms(lag["max_ms"]),
            fmt_ms(lag["search_p99_ms"]),
            fmt_ms(lag["stats_p99_ms"]),
            str(lag["timeouts"]),
            verdict(lag["p99_ms"] <= LAG_P99_TARGET_MS, lag["p99_ms"]),
        )
    console.print(table)


def verdict(ok: bool, value: float) -> str:
    if math.isnan(value):
        return "-"
    return "met" if ok else "missed"


def render_slices(run: Run, console: Console) -> None:
    grown = run.phases.get("grown")
    if grown is None or not grown.get("slices"):
        return
    title = (
        f"grown: an empty database grown through the API, batches of {BATCH_SIZE},"
        f" {grown['clients']} clients; per slice of {grown['slice_events']:,} events"
        f" (stopped by {grown['stopped_by']})"
    )
    table = Table(title=title, title_justify="left")
    for col in ("events", "seconds", "events/s", "p50 ms", "p99 ms", "max ms", ""):
        table.add_column(col, justify="left" if col == "events" else "right")
    for part in grown["slices"]:
        table.add_row(
            f"{part['from_event']:,}..{part['to_event']:,}",
            f"{part['seconds']:.1f}",
            fmt_int(part["events_per_s"]),
            fmt_ms(part["p50_ms"]),
            fmt_ms(part["p99_ms"]),
            fmt_ms(part["max_ms"]),
            "partial" if part["partial"] else "",
        )
    console.print(table)


def target_lines(run: Run) -> list[str]:
    out = []
    http = http_phases(run)
    for name, r in http.items():
        lag = r.get("lag")
        if lag is not None and lag["samples"]:
            out.append(
                f"target lag p99 {name}: {lag['p99_ms']:,.0f} ms over {lag['samples']} probes"
                f" (≤ {LAG_P99_TARGET_MS:,.0f} ms:"
                f" {verdict(lag['p99_ms'] <= LAG_P99_TARGET_MS, lag['p99_ms'])})"
            )
    peaks = [(r["peak_rss_mb"], n) for n, r in http.items() if not math.isnan(r["peak_rss_mb"])]
    if peaks:
        peak, name = max(peaks)
        out.append(
            f"target server RSS: peak {peak:,.0f} MB ({name})"
            f" (≤ {RSS_TARGET_MB:,.0f} MB: {verdict(peak <= RSS_TARGET_MB, peak)})"
        )
    grown = run.phases.get("grown")
    if grown is not None and grown.get("last_slice"):
        last, first = grown["last_slice"], grown["slices"][0]
        out.append(
            f"grown: {acked_total(grown):,} events at {fmt_int(grown['events_per_s'])}/s overall;"
            f" last slice ({last['from_event']:,}..{last['to_event']:,})"
            f" {fmt_int(last['events_per_s'])}/s, p99 {fmt_ms(last['p99_ms'])} ms;"
            f" first slice {fmt_int(first['events_per_s'])}/s"
            f" (last ÷ first {last['events_per_s'] / first['events_per_s']:.2f})"
        )
    return out


def render_raw(run: Run, console: Console) -> None:
    raws = [r for n, r in run.phases.items() if n.startswith("raw-")]
    if not raws:
        return
    db = run.template
    batch = batch_phase(run)
    versus = f"{batch['name']} batch ÷ raw" if batch is not None else "batch ÷ raw"
    title = (
        f"Raw {db.kind} {db.raw_write} ({db.raw_settings}; server stopped; {raw_database(run)})."
        f" Bare log: {db.log_tables}, nothing derived. + derived: the old baseline"
        " (log, full text and rollups, no tiles)"
    )
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
            "raw_bare_log_tables": run.template.log_tables,
            "grow_events": args.grow_events,
            "grow_max_seconds": args.grow_max_seconds,
            "grow_slice": grow_slice(args),
            "lag_interval_s": args.lag_interval,
            "check_derived": args.check_derived,
            "check_derived_max": args.check_derived_max,
        },
        "machine": machine_info(),
        **run.info,
        "phases": run.phases,
        "ratios": ratios(run),
        "targets": target_lines(run),
        "checks": run.checks,
        "ok": all(c["ok"] for c in run.checks),
    }
