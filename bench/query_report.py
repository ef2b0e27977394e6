"""The tables and JSON summary of bench/query.py."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from common import fmt_ms, latency_summary, machine_info
from dataset import Dataset
from query_mix import CLASSES, TARGETS_MS


def verdict(r: dict[str, Any]) -> str | None:
    """'met' or 'missed' for a query with a target ('wrong' when any of its answers was
    wrong: timing a wrong answer proves nothing), None for one without."""
    target = TARGETS_MS.get(r["class"])
    if target is None or math.isnan(r["p95_ms"]):
        return None
    if r.get("wrong_answers") or r.get("unlike_duckdb"):
        return "wrong"
    met = r["p95_ms"] <= target
    if r["class"] == "stats" and "duckdb" in r:
        met = met and r["p95_ms"] < r["duckdb"]["p95_ms"]
    return "met" if met else "missed"


def ratio(r: dict[str, Any], kind: str = "parquet") -> float:
    """API p95 / DuckDB p95, on the Parquet file or ("memory") the in-memory table."""
    duck = r.get("duckdb")
    if duck is not None and kind == "memory":
        duck = duck.get("memory")
    if duck is None or not duck["p95_ms"]:
        return math.nan
    return float(r["p95_ms"] / duck["p95_ms"])


def class_rows(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for cls in CLASSES:
        members = [r for r in queries if r["class"] == cls]
        if not members:
            continue
        pooled = [x for r in members for x in r.get("latencies", [])]
        verdicts = [verdict(r) for r in members]
        out.append(
            {
                "class": cls,
                "queries": len(members),
                "samples": len(pooled),
                **latency_summary(pooled),
                "worst_p95_ms": max(r["p95_ms"] for r in members),
                "target_p95_ms": TARGETS_MS.get(cls),
                "met": None if None in verdicts else all(v == "met" for v in verdicts),
            }
        )
    return out


def _target_text(cls: str) -> str:
    target = TARGETS_MS.get(cls)
    if target is None:
        return ""
    return f"≤ {target:g} ms" + (", < DuckDB" if cls == "stats" else "")


def render(
    results: dict[str, Any], data: Dataset, args: argparse.Namespace, console: Console
) -> None:
    title = (
        f"GET /v1/events?q=... (first page of {args.page_size}) and GET /v1/stats?...&top="
        f"{args.top}, sequential, tenant {data.measured} with "
        f"{data.stored()[data.measured]:,} events ({data.total:,} in the database)"
    )
    table = Table(title=title, title_justify="left")
    for col in ("class", "query", "q", "values", "samples", "rows", "matches", "wrong",
                "p50 ms", "p95 ms", "p99 ms", "max ms", "target"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("class", "query", "q") else "right")
    for r in results["queries"]:
        example = r["example"]
        rows = r.get("source", "-") if r["class"] == "stats" else f"{r['rows_per_page']:.1f}"
        wrong = f"{r.get('wrong_answers', 0)}/{r.get('unlike_duckdb', 0)}"
        table.add_row(
            r["class"],
            r["name"],
            example if len(example) < 60 else example[:57] + "...",
            str(r["values"]),
            str(r["samples"]),
            rows,
            f"{r['matches']:,.0f}" if "matches" in r else "",
            wrong,
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
            fmt_ms(r["max_ms"]),
            verdict(r) or "",
        )
    console.print(table)
    console.print(
        "values: the query's pool (a different one per request, in turn); rows: rows per page "
        "(events) or the answers' source (stats); matches: events of the tenant matching the "
        "query (mean over its values, from DuckDB); wrong: answers failing the row checks or "
        "not 200 / distinct answers unlike DuckDB's",
        markup=False,
    )
    render_stats(results["queries"], console)
    render_classes(results["queries"], console)
    if results["deep"]:
        render_deep(results["deep"], args, console)
    render_checks(results, console)


def render_stats(queries: list[dict[str, Any]], console: Console) -> None:
    stats = [r for r in queries if r["class"] == "stats"]
    if not stats:
        return
    table = Table(
        title="Stats: the API against DuckDB in process on the Parquet export (warm, the "
        "same requests, the same numbers checked), and on the same columns in memory",
        title_justify="left",
    )
    for col in ("query", "source", "API p50", "API p95", "DuckDB p50", "DuckDB p95",
                "DuckDB p99", "API p95 / DuckDB p95", "in-memory p95", "API / in-memory",
                "target"):  # fmt: skip
        table.add_column(col, justify="left" if col == "query" else "right")
    none = {"p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan}
    for r in stats:
        duck = r.get("duckdb") or none
        memory = duck.get("memory") or none
        table.add_row(
            r["name"],
            r.get("source", "-"),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(duck["p50_ms"]),
            fmt_ms(duck["p95_ms"]),
            fmt_ms(duck["p99_ms"]),
            fmt_ms(ratio(r)),
            fmt_ms(memory["p95_ms"]),
            fmt_ms(ratio(r, "memory")),
            verdict(r) or "",
        )
    console.print(table)


def render_classes(queries: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Per class (all samples of the class pooled)", title_justify="left")
    for col in ("class", "queries", "samples", "p50 ms", "p95 ms", "p99 ms",
                "worst query p95", "target (every query)", ""):  # fmt: skip
        table.add_column(col, justify="left" if col == "class" else "right")
    for c in class_rows(queries):
        met = "" if c["met"] is None else ("met" if c["met"] else "missed")
        table.add_row(
            c["class"],
            str(c["queries"]),
            str(c["samples"]),
            fmt_ms(c["p50_ms"]),
            fmt_ms(c["p95_ms"]),
            fmt_ms(c["p99_ms"]),
            fmt_ms(c["worst_p95_ms"]),
            _target_text(c["class"]),
            met,
        )
    console.print(table)


def render_deep(deep: list[dict[str, Any]], args: argparse.Namespace, console: Console) -> None:
    lo, hi = args.deep_page - args.deep_window, args.deep_page + args.deep_window
    title = (
        f"Deep pages: cursor walk to page {args.deep_page} (timed apart), then pages "
        f"{lo}..{hi} x{args.deep_repeats}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("query", "q", "pages walked", "walk ms/page", "measured pages", "samples",
                "p50 ms", "p95 ms", "p99 ms"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("query", "q") else "right")
    for r in deep:
        table.add_row(
            r["name"],
            r["query"],
            str(r["pages_walked"]),
            fmt_ms(r["walk_ms_per_page"]),
            r["pages"],
            str(r["samples"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
        )
    console.print(table)


def render_checks(results: dict[str, Any], console: Console) -> None:
    duck = results["duckdb"]
    ok = ok_of(results)
    console.print(
        f"checks: {'ok' if ok else 'FAILED'} ({results['non_200']} non-200 answers, "
        f"{len(results['problems'])} wrong rows or orderings; DuckDB: "
        f"{duck['pages_checked']} distinct pages and {duck['stats_checked']} stats answers "
        f"compared, {len(duck['problems'])} differ)"
    )
    for problem in [*results["problems"][:6], *duck["problems"][:6]]:
        console.print(f"  {problem}", markup=False)


def ok_of(results: dict[str, Any]) -> bool:
    return not results["problems"] and results["non_200"] == 0 and not results["duckdb"]["problems"]


def summary(results: dict[str, Any], data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    queries = []
    for r in results["queries"]:
        out = {k: v for k, v in r.items() if k != "latencies"}
        out["target"] = verdict(r)
        if r["class"] == "stats":
            out["p95_over_duckdb_p95"] = ratio(r)
            out["p95_over_duckdb_memory_p95"] = ratio(r, "memory")
        queries.append(out)
    return {
        "benchmark": "query",
        "config": {
            "page_size": args.page_size,
            "top": args.top,
            "repeats": args.repeats,
            "warmup_requests": args.warmup_requests,
            "deep_page": None if args.no_deep else args.deep_page,
            "deep_window": args.deep_window,
            "deep_repeats": args.deep_repeats,
            "database": data.db.label,
            "targets_p95_ms": TARGETS_MS,
        },
        "machine": machine_info(),
        "database": data.db.describe(),
        "dataset": {**data.meta(), "built_now": data.built_now},
        "parquet": results.get("parquet"),
        "queries": queries,
        "classes": class_rows(results["queries"]),
        "deep": results["deep"],
        "problems": results["problems"],
        "non_200": results["non_200"],
        "duckdb_checks": results["duckdb"],
        "ok": ok_of(results),
    }
