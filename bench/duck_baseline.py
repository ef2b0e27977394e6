"""The DuckDB side of bench/query.py: exact expected answers and the stats baseline.

The measured tenant's events are exported from the database (the stored bodies, so
what is checked is what the service returns) to a Parquet file with pyarrow: seq,
occurred_at (µs), action, actor id and type, severity (name and rank), outcome, the
event's distinct target types and ids (lists), metadata.plan and .region, and the
full-text fields as tokens (query_mix.search_text). The file is kept and reused while
the data set it came from is the same (its key is in the file's metadata).

DuckDB (in process, on that file) then

- computes the expected first page and match count of every distinct events query
  (the terms of query_mix as SQL), so an answer is checked row for row, not only
  row by row;
- computes every stats answer (total, each key's count, per-bucket totals, per-bucket
  counts of the keys the API chose) and compares it with the API's;
- times the same stats as one query each (top N, per-bucket totals, per-bucket counts
  of the top keys), warm, over the same pool and number of repeats as the API: on the
  Parquet file (the baseline of the target), and on the same columns copied into an
  in-memory DuckDB table (for reference: no decoding at all).

duckdb and pyarrow come with the ``bench`` extra (``pip install -e '.[dev,bench]'``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from common import Database, latency_summary, progress
from query_mix import SEVERITIES, StatsQuery, Term, search_text
from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from vocabulary import tokens

EXPORT_VERSION = 1
BATCH = 100_000
INTERVAL_US = {"hour": 3_600_000_000, "day": 86_400_000_000}
META_COLUMNS = ("plan", "region")
# group_by -> the column of the key; target_type is a list (one row per distinct type).
KEY_COLUMNS = {
    "action": "action",
    "severity": "severity",
    "outcome": "outcome",
    "actor": "actor_id",
    "target_type": "target_types",
}


# -- the Parquet file --------------------------------------------------------------------


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        name: []
        for name in (
            "seq", "occurred_at", "action", "actor_id", "actor_type", "severity",
            "sev_rank", "outcome", "target_types", "target_ids", "meta_plan",
            "meta_region", "search",
        )
    }  # fmt: skip
    for r in rows:
        actor = r.get("actor") or {}
        targets = r.get("targets") or []
        meta = r.get("metadata") or {}
        out["seq"].append(r["seq"])
        out["occurred_at"].append(_us(r["occurred_at"]))
        out["action"].append(r["action"])
        out["actor_id"].append(actor.get("id"))
        out["actor_type"].append(actor.get("type", "anonymous"))
        out["severity"].append(r["severity"])
        out["sev_rank"].append(SEVERITY_RANK[r["severity"]])
        out["outcome"].append(r["outcome"])
        out["target_types"].append(sorted({t["type"] for t in targets}))
        out["target_ids"].append(sorted({t["id"] for t in targets}))
        out["meta_plan"].append(meta.get("plan"))
        out["meta_region"].append(meta.get("region"))
        out["search"].append(search_text(r))
    return out


def _us(text: str) -> int:
    """µs since the epoch of an RFC 3339 time (any offset; "Z" is UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (
        (moment.toordinal() - 719_163) * 86_400_000_000
        + (moment.hour * 3600 + moment.minute * 60 + moment.second) * 1_000_000
        + moment.microsecond
    )


def export_parquet(db: Database, tenant: str, path: Path, key: dict[str, Any]) -> dict[str, Any]:
    """Write ``tenant``'s events to ``path`` unless it already holds them (same ``key``).

    The bodies are read here and parsed into Arrow tables by worker processes (as many
    as CPUs), a few batches ahead of the one being written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tag = orjson.dumps({**key, "tenant": tenant, "export_version": EXPORT_VERSION})
    if path.exists():
        try:
            found = (pq.read_schema(path).metadata or {}).get(b"trailkeep_bench")
        except (OSError, pa.ArrowInvalid):
            found = None
        if found == tag:
            rows = pq.read_metadata(path).num_rows
            progress.print(f"reusing {path} ({rows:,} events of {tenant})")
            return {"path": str(path), "rows": rows, "reused": True}
    progress.print(f"exporting {tenant}'s events to {path} ...")
    began = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    workers = max(1, min(4, os.cpu_count() or 2))
    rows = reported = 0
    pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
    with (
        pq.ParquetWriter(
            tmp, _schema().with_metadata({b"trailkeep_bench": tag}), compression="zstd"
        ) as writer,
        concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool,
    ):

        def write_one() -> None:
            nonlocal rows, reported
            table = pending.popleft().result()
            writer.write_table(table)
            rows += table.num_rows
            if rows - reported >= BATCH:
                reported = rows
                progress.print(f"  {rows:,} events ({time.perf_counter() - began:.0f} s)")

        for bodies in db.tenant_bodies(tenant, BATCH // 5):
            pending.append(pool.submit(_table_of, bodies))
            if len(pending) > workers + 1:
                write_one()
        while pending:
            write_one()
    tmp.replace(path)
    seconds = time.perf_counter() - began
    progress.print(f"  exported {rows:,} events in {seconds:.1f} s")
    return {"path": str(path), "rows": rows, "reused": False, "seconds": round(seconds, 2)}


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("seq", pa.int64()),
            ("occurred_at", pa.int64()),
            ("action", pa.string()),
            ("actor_id", pa.string()),
            ("actor_type", pa.string()),
            ("severity", pa.string()),
            ("sev_rank", pa.int8()),
            ("outcome", pa.string()),
            ("target_types", pa.list_(pa.string())),
            ("target_ids", pa.list_(pa.string())),
            ("meta_plan", pa.string()),
            ("meta_region", pa.string()),
            ("search", pa.string()),
        ]
    )


def _table_of(bodies: list[bytes]) -> Any:
    """The Arrow table of these stored bodies (in a worker process)."""
    import pyarrow as pa

    return pa.Table.from_pydict(_columns([orjson.loads(b) for b in bodies]), schema=_schema())


# -- SQL of the query terms --------------------------------------------------------------


def _term_sql(term: Term) -> tuple[str, list[Any]]:
    f, v = term.field, term.value
    if f == "action":
        return ("starts_with(action, ?)", [v[:-1]]) if v.endswith("*") else ("action = ?", [v])
    if f in ("actor.id", "actor.type"):
        return f"actor_{f[6:]} = ?", [v]
    if f in ("target.type", "target.id"):
        return f"list_contains(target_{f[7:]}s, ?)", [v]
    if f == "outcome":
        return "outcome = ?", [v]
    if f == "severity":
        return "sev_rank >= ?", [SEVERITY_RANK[v]]
    if f == "occurred":
        return "(occurred_at >= ? AND occurred_at < ?)", list(v)
    if f.startswith("metadata.") and f[9:] in META_COLUMNS:
        return f"meta_{f[9:]} = ?", [v]
    if f == "word":
        return "contains(search, ?)", [f" {v} "]
    if f == "prefix":
        return "contains(search, ?)", [f" {v}"]
    if f == "phrase":
        return "contains(search, ?)", [f" {' '.join(tokens(v))} "]
    raise ValueError(f"no SQL for term {term.text()!r}")


def where(terms: Iterable[Term]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for term in terms:
        sql, args = _term_sql(term)
        parts.append(f"{'NOT ' if term.negated else ''}coalesce({sql}, false)")
        params += args
    return " AND ".join(parts) or "true", params


def window_of(terms: tuple[Term, ...], interval: str) -> tuple[int, int]:
    """The stats window: the terms' occurred range widened to whole buckets."""
    lo, hi = next(t.value for t in terms if t.field == "occurred" and not t.negated)
    iv = INTERVAL_US[interval]
    return lo // iv * iv, -(-hi // iv) * iv


# -- DuckDB ------------------------------------------------------------------------------


class Duck:
    """An in-process DuckDB over the exported Parquet file (view ``ev``)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self.con = duckdb.connect()
        quoted = str(path).replace("'", "''")
        self.con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{quoted}')")

    def close(self) -> None:
        self.con.close()

    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, params).fetchall())

    # -- events queries ------------------------------------------------------------------
    def page(self, terms: tuple[Term, ...], limit: int) -> tuple[list[int], int]:
        """The seqs of the expected first page (newest first) and the number of matches."""
        cond, params = where(terms)
        seqs = self.rows(
            f"SELECT seq FROM ev WHERE {cond} ORDER BY occurred_at DESC, seq DESC LIMIT ?",
            [*params, limit],
        )
        count = self.rows(f"SELECT count(*) FROM ev WHERE {cond}", params)[0][0]
        return [s for (s,) in seqs], int(count)

    # -- stats ---------------------------------------------------------------------------
    def _base(
        self, spec: StatsQuery, terms: tuple[Term, ...], relation: str = "ev"
    ) -> tuple[str, list[Any], int]:
        """SQL of the window's events with their bucket ``b`` and key(s) ``k``."""
        lo, hi = window_of(terms, spec.interval)
        rest = [t for t in terms if t.field != "occurred" or t.negated]
        cond, params = where(rest)
        iv = INTERVAL_US[spec.interval]
        sql = (
            f"SELECT (occurred_at // {iv}) * {iv} AS b, {KEY_COLUMNS[spec.group_by]} AS k"
            f" FROM {relation} WHERE occurred_at >= ? AND occurred_at < ? AND {cond}"
        )
        return sql, [lo, hi, *params], iv

    def timed_sql(
        self, spec: StatsQuery, terms: tuple[Term, ...], top: int, relation: str = "ev"
    ) -> tuple[str, list[Any]]:
        """One query for what the API answers: the top keys, per-bucket totals and the
        per-bucket counts of the top keys."""
        base, params, _ = self._base(spec, terms, relation)
        keyed = (
            "SELECT b, unnest(k) AS k FROM w"
            if spec.group_by == "target_type"
            else "SELECT * FROM w"
        )
        sql = (
            f"WITH w AS ({base}), wk AS ({keyed}),"
            f" top AS (SELECT k, count(*) AS n FROM wk GROUP BY k ORDER BY n DESC, k LIMIT {top})"
            " SELECT 0 AS part, NULL::BIGINT AS b, k, n FROM top"
            " UNION ALL SELECT 1, b, NULL, count(*) FROM w GROUP BY b"
            " UNION ALL SELECT 2, wk.b, wk.k, count(*) FROM wk JOIN top USING (k)"
            " GROUP BY wk.b, wk.k"
        )
        return sql, params

    def stats_truth(
        self, spec: StatsQuery, terms: tuple[Term, ...], keys: list[Any]
    ) -> dict[str, Any]:
        """Exact numbers: total, every key's count, per-bucket totals, and the per-bucket
        counts of ``keys`` (the ones the API chose)."""
        base, params, _ = self._base(spec, terms)
        keyed = (
            "SELECT b, unnest(k) AS k FROM w"
            if spec.group_by == "target_type"
            else "SELECT * FROM w"
        )
        with_w = f"WITH w AS ({base}), wk AS ({keyed})"
        total = self.rows(f"{with_w} SELECT count(*) FROM w", params)[0][0]
        counts = dict(self.rows(f"{with_w} SELECT k, count(*) FROM wk GROUP BY k", params))
        buckets = dict(self.rows(f"{with_w} SELECT b, count(*) FROM w GROUP BY b", params))
        cells = {
            (b, k): n
            for b, k, n in self.rows(
                f"{with_w} SELECT b, k, count(*) FROM wk WHERE list_contains(?, k) GROUP BY b, k",
                [*params, [k for k in keys if k is not None]],
            )
        }
        return {"total": int(total), "counts": counts, "buckets": buckets, "cells": cells}

    def load_memory(self) -> float:
        """Copy the columns the stats read into an in-memory table ``evm``: seconds."""
        began = time.perf_counter()
        self.con.execute(
            "CREATE OR REPLACE TABLE evm AS SELECT occurred_at, action, actor_id, actor_type,"
            " severity, sev_rank, outcome, target_types, target_ids, meta_plan, meta_region"
            " FROM ev"
        )
        return time.perf_counter() - began

    def time_stats(
        self,
        spec: StatsQuery,
        pool: Iterable[tuple[Term, ...]],
        top: int,
        repeats: int,
        warmup: int,
        relation: str = "ev",
    ) -> dict[str, Any]:
        """p50/p95/p99 of the stats query over ``pool`` in turn, after ``warmup`` runs;
        ``relation``: "ev" (the Parquet file) or "evm" (load_memory's table)."""
        statements = [self.timed_sql(spec, terms, top, relation) for terms in pool]
        for i in range(warmup):
            self.rows(*statements[i % len(statements)])
        latencies = []
        for i in range(repeats):
            sql, params = statements[i % len(statements)]
            began = time.perf_counter()
            self.con.execute(sql, params).fetchall()
            latencies.append(time.perf_counter() - began)
        return {"samples": len(latencies), **latency_summary(latencies)}


def stats_problems(
    answer: dict[str, Any],
    spec: StatsQuery,
    terms: tuple[Term, ...],
    top: int,
    truth_of: Callable[[list[Any]], dict[str, Any]],
) -> list[str]:
    """What is wrong with the API's stats ``answer`` (compared with DuckDB's numbers)."""
    problems: list[str] = []
    try:
        api_top = [(item["key"], int(item["count"])) for item in answer["top"]]
        api_buckets = [
            (_us(b["start"]), int(b["count"]), [int(c) for c in b["counts"]])
            for b in answer["buckets"]
        ]
        window = (_us(answer["from"]), _us(answer["to"]))
        echoed = (answer["group_by"], answer["interval"])
        total = int(answer["total"])
    except (KeyError, TypeError, ValueError) as exc:
        return [f"answer not in the documented shape ({exc!r}): {str(answer)[:300]}"]
    if echoed != (spec.group_by, spec.interval):
        problems.append(f"group_by/interval {echoed}")
    if answer.get("source") not in ("rollup", "scan"):
        problems.append(f"source {answer.get('source')!r}")
    keys = [k for k, _ in api_top]
    truth = truth_of(keys)
    lo, hi = window_of(terms, spec.interval)
    if window != (lo, hi):
        problems.append(f"window {answer['from']}..{answer['to']}, expected {lo}..{hi} (µs)")
    if total != truth["total"]:
        problems.append(f"total {total}, expected {truth['total']}")
    problems += _top_problems(api_top, truth["counts"], top, spec.group_by)
    iv = INTERVAL_US[spec.interval]
    starts = list(range(lo, hi, iv))
    if [b for b, _, _ in api_buckets] != starts:
        problems.append(f"{len(api_buckets)} buckets, expected {len(starts)} from {lo} every {iv}")
    for start, count, cells in api_buckets:
        if count != truth["buckets"].get(start, 0):
            problems.append(
                f"bucket {start}: count {count}, expected {truth['buckets'].get(start, 0)}"
            )
        want = [truth["cells"].get((start, k), 0) for k in keys]
        if cells != want:
            problems.append(f"bucket {start}: counts {cells}, expected {want}")
        if len(problems) > 8:
            break
    return problems


def _top_problems(
    api_top: list[tuple[Any, int]], counts: dict[Any, int], top: int, group_by: str
) -> list[str]:
    problems = []
    if group_by == "severity" and any(k not in SEVERITIES for k, _ in api_top):
        problems.append(f"severity keys {[k for k, _ in api_top]} are not level names")
    if len(api_top) != min(top, len(counts)):
        problems.append(f"{len(api_top)} top keys, expected {min(top, len(counts))}")
    if any(a < b for (_, a), (_, b) in itertools.pairwise(api_top)):
        problems.append("top not by count, highest first")
    for key, count in api_top:
        if counts.get(key, 0) != count:
            problems.append(f"top {key!r}: count {count}, expected {counts.get(key, 0)}")
    chosen = {k for k, _ in api_top}
    left_out = max((n for k, n in counts.items() if k not in chosen), default=0)
    if api_top and left_out > min(n for _, n in api_top):
        problems.append(f"a key left out of the top has {left_out} events")
    return problems[:5]
