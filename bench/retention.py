"""Retention benchmark: pruning with archival, ingest while a run prunes, proofs after.

Set-up (SQLite in --data-dir or a temp dir; PostgreSQL with --database-url, a database
of its own that is dropped and re-created, and dropped at the end): the CLI makes
tenants ``big`` and ``ingest`` and their keys. The fill is RAW, with the server stopped,
as bench/export.py's: --events realistic events of bench/workload.py into ``big``, each
passed through the service's ``PrivacyService.protect`` (default privacy: sealed
fields) and written with the bulk loader (bench/sqlite_load.py / bench/pg_load.py), on
a timeline of 90 days ending ~3 years ago. Every even seq is DEBUG, every odd seq one
of the other severities (their usual mix), so the due half is interleaved with the
kept half all through the log. ``big``'s policy: ``{"default_days": null,
"by_severity": {"DEBUG": 30}, "archive": true}``: exactly the DEBUG half is due, the
rest is kept forever (old too, so the run reads it and decides by rule). Then one
``trailkeep serve`` (TRAILKEEP_RETENTION_INTERVAL_SECONDS=0: only the bench runs
retention; TRAILKEEP_ARCHIVE_DIR under the data directory), which signs a checkpoint
covering the fill before anything is measured:

  proofs    GET /v1/events/ID/proof of --proof-samples kept (odd-seq) events, one at a
            time on one keep-alive connection (after 50 unmeasured): p50/p95, before
            pruning (baseline) and after, the same events. Target: p95 <= 5 ms after.
  ingest    single-event POST /v1/events from --ingest-clients connections into
            ``ingest`` for --ingest-seconds (after --warmup s), with no retention run
            (baseline); then again with ``POST /v1/retention/run`` (no wait) of big
            started at the end of the warm-up, polled until done. "During" counts only
            the answers that came back while the run was running (its created_at ..
            finished_at within the measured window): rate and p99 latency. Targets:
            rate during / baseline rate >= 0.7, p99 during <= 200 ms.
  prune     that run: report.deleted / (finished_at - created_at) ev/s, for a run that
            also had the ingest load on it for its first --ingest-seconds (target:
            >= 50,000 ev/s for 1M of 2M events). Checked: due == deleted == archived
            == the DEBUG count, the tenant's events rows are the rest, pruned events
            answer 410, each segment's bundle files are in the archive.

A table of target vs measured on stdout (stderr with --json), and a JSON summary with
--json / --out; the exit status is 1 when a check (or a proof's answer) failed, not
when a target is missed. TRAILKEEP_RETENTION_BATCH_ROWS / _SEGMENT_ROWS in the
environment go to the server. The full run fills 2M events (~10 min at ~3,500 ev/s on
two shared cores), then prunes 1M (its rate says how long):

    .venv/bin/python bench/retention.py --out bench/results/retention.json
    .venv/bin/python bench/retention.py --events 40000 --ingest-seconds 3   # smoke
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from common import (
    Connection,
    Database,
    Server,
    add_output_args,
    build_request,
    check_database_url,
    create_admin_key,
    create_keys,
    create_tenants,
    emit_json,
    http_get_json,
    latency_summary,
    remove_tree,
    result_console,
    run_async,
    service_settings,
)
from export import ProtectedFactory, Protector, machine_state, say, verdict
from export import _us as epoch_s
from ingest_watch import wait_indexed
from loadgen import LoadSpec, Tally, run_load, summarize_tally
from pg_load import PgDatabase
from privacy import Api, drop_pg
from rowgen import LoadPlan
from sqlite_load import SqliteDatabase
from trailkeep.kit.timeutil import now_us
from workload import DAY_US, EventFactory, EventRowT, TargetRowT

BIG, INGEST = "big", "ingest"
POLICY = {"default_days": None, "by_severity": {"DEBUG": 30}, "by_action": {}, "archive": True}
BUNDLE_FILES = (
    "events.parquet",
    "manifest.json",
    "leaves.bin",
    "range-proof.json",
    "checkpoint.txt",
)
PRUNE_TARGET, INGEST_RATIO_TARGET, P99_TARGET_MS, PROOF_P95_TARGET_MS = 50_000.0, 0.7, 200.0, 5.0
FULL_EVENTS, WARM_PROOFS, GONE_SAMPLES, BODIES_PER_CLIENT, POLL_S = 2_000_000, 50, 20, 16, 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep retention benchmark (see the docstring of bench/retention.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--events", type=int, default=FULL_EVENTS, help="events of big (half due)")
    p.add_argument("--ingest-seconds", type=float, default=10.0, help="measured s per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured s before each")
    p.add_argument("--ingest-clients", type=int, default=16, help="single-event clients")
    p.add_argument("--proof-samples", type=int, default=500, help="proofs timed each time")
    p.add_argument("--run-timeout", type=float, default=1800.0, help="s the run may take")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the database, server log and archives go (kept); default a temp dir",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (and the PG db)")
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    if args.events < 4 or args.ingest_clients < 1 or args.proof_samples < 1:
        p.error("--events must be at least 4, --ingest-clients and --proof-samples at least 1")
    return args


# -- the fill: half DEBUG (even seqs), all of it years old ------------------------------------


class HalfDebug(EventFactory):
    """Events of big: DEBUG at even seqs, never DEBUG at odd ones (else the usual mix)."""

    debug = False

    def stored_row(
        self, tenant_id: str, seq: int, occurred_us: int, received_us: int
    ) -> tuple[EventRowT, list[TargetRowT]]:
        self.debug = tenant_id == BIG and seq % 2 == 0
        return super().stored_row(tenant_id, seq, occurred_us, received_us)

    def fields(self) -> dict[str, Any]:
        out = super().fields()
        if self.debug:
            out["severity"] = "DEBUG"
        elif out["severity"] == "DEBUG":
            out["severity"] = "INFO"
        return out


class SealedHalfDebug(HalfDebug, ProtectedFactory):
    """HalfDebug's rows through the service's PrivacyService.protect (bench/export.py)."""


def due_count(events: int) -> int:
    return (events + 1) // 2  # the even seqs 0, 2, ...


def fill(args: argparse.Namespace, db: Database) -> dict[str, Any]:
    factory = SealedHalfDebug(args.seed)
    factory.protector = protector = Protector(db)
    try:
        protector.warm(BIG, factory)
        end = now_us() - 3 * 365 * DAY_US
        # workers=0: the rows are made here, where the protector (and HalfDebug) is.
        plan = LoadPlan({BIG: args.events}, end_us=end, seed=args.seed, workers=0)
        say(f"fill: {plan.total:,} events, raw ({db.raw_write}, server stopped) into {db.label}")
        stats = db.bulk_load(plan, factory, "fill")
    finally:
        protector.close()
    say(f"  filled in {stats['seconds']:.0f} s ({stats['events_per_s']:,.0f} ev/s)")
    return stats


def set_up(db: Database) -> dict[str, str]:
    db.recreate()
    say(f"{db.kind}: tenants {BIG}, {INGEST} and their keys (CLI) ...")
    create_tenants(db, [BIG, INGEST])
    tokens = {"admin-big": create_keys(db, [BIG], "tenant_admin")[BIG]}
    tokens["writer-ingest"] = create_keys(db, [INGEST], "writer")[INGEST]
    tokens["admin"] = create_admin_key(db)
    return tokens


def wait_checkpoint(api: Api, size: int, timeout: float = 600.0) -> float:
    """Seconds until big's latest signed checkpoint covers ``size`` events."""
    began = time.perf_counter()
    while True:
        resp = api.call("GET", "/v1/checkpoint", "admin-big")
        if resp.status_code == 200 and resp.json()["tree_size"] >= size:
            return time.perf_counter() - began
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"error: no checkpoint of {size:,} events within {timeout:g} s")
        time.sleep(0.2)


# -- proofs -----------------------------------------------------------------------------------


async def _timed_gets(port: int, token: str, paths: list[str]) -> list[tuple[int, float]]:
    conn = await Connection.open(port)
    try:
        out = []
        for path in paths:
            began = time.perf_counter()
            status, _ = await conn.request(build_request("GET", path, port, token))
            out.append((status, time.perf_counter() - began))
        return out
    finally:
        await conn.close()


def time_proofs(api: Api, ids: list[str], name: str) -> dict[str, Any]:
    paths = [f"/v1/events/{i}/proof" for i in ids]
    answers = run_async(_timed_gets(api.port, api.tokens["admin-big"], paths))[WARM_PROOFS:]
    ok = [s for s, _ in answers if s == 200]
    result = {"name": name, "requests": len(answers), "ok": len(ok)}
    result.update(latency_summary(t for _, t in answers))
    say(
        f"proofs {name}: {len(answers)} GET /v1/events/ID/proof, p50 {result['p50_ms']:.2f} ms,"
        f" p95 {result['p95_ms']:.2f} ms, {len(answers) - len(ok)} not 200"
    )
    return result


# -- ingest, and the retention run --------------------------------------------------------------


def single_pools(port: int, token: str, clients: int, seed: int) -> list[list[bytes]]:
    factory, now = EventFactory(seed), now_us()

    def request() -> bytes:
        body = orjson.dumps(factory.client_event(now))
        return build_request("POST", "/v1/events", port, token, body)

    return [[request() for _ in range(BODIES_PER_CLIENT)] for _ in range(clients)]


class RunThread(threading.Thread):
    """Starts big's retention run (no wait) after ``delay`` s and polls it until it ends."""

    def __init__(self, api: Api, delay: float, timeout: float) -> None:
        super().__init__(name="retention-run", daemon=True)
        self.api, self.delay, self.timeout = api, delay, timeout
        self.run_json: dict[str, Any] = {}
        self.error = ""

    def run(self) -> None:
        try:
            time.sleep(self.delay)
            run = self.api.json("POST", "/v1/retention/run", "admin-big")
            deadline = time.perf_counter() + self.timeout
            while run["state"] == "running" and time.perf_counter() < deadline:
                time.sleep(POLL_S)
                run = self.api.json("GET", f"/v1/retention/runs/{run['id']}", "admin-big")
            self.run_json = run
        except BaseException as exc:
            self.error = repr(exc)


def during_run(tally: Tally, offset: float, run: dict[str, Any]) -> dict[str, Any]:
    """The answers that came back while the run was running, within the measured window."""
    lo = max(tally.measure_from, epoch_s(run.get("created_at")) - offset)
    hi = min(tally.measure_from + tally.window_s, epoch_s(run.get("finished_at")) - offset)
    inside = [(n, lat) for done, n, lat in tally.timeline if lo <= done <= hi]
    span = hi - lo if hi > lo else math.nan
    return {
        "overlap_s": round(span, 3),
        "overlap_share": span / tally.window_s if tally.window_s else math.nan,
        "events": sum(n for n, _ in inside),
        "events_per_s": sum(n for n, _ in inside) / span,
        **latency_summary(lat for _, lat in inside),
    }


def ingest_phase(
    args: argparse.Namespace, api: Api, server: Server, db: Database, retention: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    name = "during the retention run" if retention else "baseline (no run)"
    token, seed = api.tokens["writer-ingest"], args.seed + 16 + retention
    pools = single_pools(server.port, token, args.ingest_clients, seed)
    runner = RunThread(api, 0.3 + args.warmup, args.run_timeout) if retention else None
    say(f"ingest {name}: {len(pools)} clients, single events, {args.ingest_seconds:g} s ...")
    offset = time.time() - time.perf_counter()
    cpu_before, began = server.cpu_seconds(), time.perf_counter()
    if runner is not None:
        runner.start()
    spec = LoadSpec(server.port, "single", pools, args.warmup, args.ingest_seconds, timeline=True)
    tally = run_load(spec)
    result = summarize_tally(tally, 1)
    result.update(name=name, clients=len(pools))
    result["server_cpu_pct"] = 100 * (server.cpu_seconds() - cpu_before) / tally.wall_s
    run = None
    if runner is not None:
        say("  waiting for the retention run to finish ...")
        runner.join()
        if runner.error or not runner.run_json:
            raise SystemExit(f"error: the retention run: {runner.error or 'no answer'}")
        run = runner.run_json
        run["wall_s"] = round(time.perf_counter() - began, 3)
        run["server_cpu_s"] = round(server.cpu_seconds() - cpu_before, 2)
        if run["state"] != "done":
            raise SystemExit(f"error: the retention run ended {run['state']}: {run['error']}")
        result["during_run"] = during_run(tally, offset, run)
    ingested = db.next_seqs([INGEST])[INGEST]
    result["catch_up_s"], behind = wait_indexed(
        server.port, api.tokens["admin"], {INGEST: ingested}, time.perf_counter(), 300
    )
    shown = result.get("during_run", result)
    say(
        f"  {shown['events_per_s']:,.0f} ev/s, p99 {shown['p99_ms']:.1f} ms"
        + (f" (while the run ran: {shown['overlap_s']:.1f} s)" if run else "")
        + f"; non-2xx {result['non_2xx_total']}, errors {result['connection_errors']}"
        + (f"; indexer behind: {behind}" if behind else "")
    )
    return result, run


def prune_figures(run: dict[str, Any], events: int) -> dict[str, Any]:
    report = run["report"]
    seconds = epoch_s(run["finished_at"]) - epoch_s(run["created_at"])
    return {
        "run_s": round(seconds, 3),
        "events_per_s": report["deleted"] / seconds,
        "expected": due_count(events),
        **{k: report[k] for k in ("due", "deleted", "archived", "scanned", "checkpoint_size")},
        "by_rule": report["by_rule"],
        "by_severity": report["by_severity"],
        "segments": len(report["segments"]),
        "server_cpu_pct": 100 * run["server_cpu_s"] / run["wall_s"],
    }


def checks(
    db: Database,
    api: Api,
    archive: Path,
    prune: dict[str, Any],
    run: dict[str, Any],
    gone: list[str],
) -> list[dict[str, Any]]:
    expected, events = prune["expected"], prune["checkpoint_size"]
    # events rows (PostgreSQL's event_ids keeps a row per pruned event: not counted)
    left = db.count_events() - db.next_seqs([INGEST])[INGEST]
    statuses = [api.call("GET", f"/v1/events/{i}", "admin-big").status_code for i in gone]
    missing = [
        f"{seg}/{name}"
        for seg in run["report"]["segments"]
        for name in BUNDLE_FILES
        if not (archive / BIG / seg / name).is_file()
    ]
    size = sum(f.stat().st_size for f in (archive / BIG).rglob("*") if f.is_file())
    counted = (prune["due"], prune["deleted"], prune["archived"])
    files = f"{prune['segments']} segments, {size / 1e6:.1f} MB"
    found = [
        (
            "due = deleted = archived = the DEBUG half",
            counted == (expected,) * 3,
            " / ".join(f"{n:,}" for n in counted) + f", expected {expected:,}",
        ),
        ("all due by severity:DEBUG", prune["by_rule"] == {"severity:DEBUG": expected},
         str(prune["by_rule"])),
        ("big keeps the other half", left == events - expected, f"{left:,} events left"),
        ("pruned events answer 410", set(statuses) == {410}, f"{statuses.count(410)}/{len(gone)}"),
        ("bundle files of every segment", not missing and prune["segments"] > 0,
         files + (f"; missing {missing[:3]}" if missing else "")),
    ]  # fmt: skip
    return [{"check": c, "ok": ok, "detail": d} for c, ok, d in found]


# -- report -----------------------------------------------------------------------------------


def targets(results: dict[str, Any], events: int) -> list[dict[str, Any]]:
    prune, ingest = results["prune"], results["ingest"]
    base, during = ingest["baseline"], ingest["during_run"]["during_run"]
    before, after = results["proofs"]["before"], results["proofs"]["after"]
    scaled = "" if events >= FULL_EVENTS else f"; target is for 2M events, {events:,} here"
    ratio = during["events_per_s"] / base["events_per_s"]
    rows = [
        ("pruning with archival (deleted / run time)", f">= {PRUNE_TARGET:,.0f} ev/s",
         f"{prune['events_per_s']:,.0f} ev/s ({prune['deleted']:,} in {prune['run_s']:.1f} s,"
         f" {prune['segments']} segments{scaled})", prune["events_per_s"] >= PRUNE_TARGET),
        ("ingest during the run / without", f">= {INGEST_RATIO_TARGET}",
         f"{ratio:.2f} ({during['events_per_s']:,.0f} / {base['events_per_s']:,.0f} ev/s;"
         f" over {during['overlap_s']:.1f} s of the run)", ratio >= INGEST_RATIO_TARGET),
        ("p99 single-event ingest during the run", f"<= {P99_TARGET_MS:.0f} ms",
         f"{during['p99_ms']:.1f} ms (baseline {base['p99_ms']:.1f} ms)",
         during["p99_ms"] <= P99_TARGET_MS),
        ("proof p95 after pruning", f"<= {PROOF_P95_TARGET_MS:.0f} ms",
         f"{after['p95_ms']:.2f} ms, p50 {after['p50_ms']:.2f} (before: p95"
         f" {before['p95_ms']:.2f}, p50 {before['p50_ms']:.2f})",
         after["p95_ms"] <= PROOF_P95_TARGET_MS),
    ]  # fmt: skip
    return [{"target": t, "goal": g, "measured": m, "ok": ok} for t, g, m, ok in rows]


def render(results: dict[str, Any], to_stderr: bool) -> None:
    console = result_console(to_stderr)
    table = Table(title="Retention: target vs measured")
    for col in ("target", "goal", "measured", "verdict"):
        table.add_column(col)
    for row in results["targets"]:
        table.add_row(row["target"], row["goal"], row["measured"], verdict(row["ok"]))
    console.print(table)
    checked = Table(title="checks")
    for col in ("check", "result", "detail"):
        checked.add_column(col)
    for row in results["checks"]:
        checked.add_row(row["check"], "ok" if row["ok"] else "FAILED", row["detail"])
    console.print(checked)


# -- main -------------------------------------------------------------------------------------


def execute(args: argparse.Namespace, db: Database, root: Path) -> dict[str, Any]:
    settings = service_settings()
    results: dict[str, Any] = {
        "machine_before": machine_state(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "settings": {
            "batch_rows": settings.retention_batch_rows,
            "segment_rows": settings.retention_segment_rows,
        },
        "policy": POLICY,
    }
    tokens = set_up(db)
    results["database"] = db.describe()
    results["fill"] = fill(args, db)
    rng = random.Random(args.seed)
    kept = rng.sample(
        range(1, args.events, 2), min(args.proof_samples + WARM_PROOFS, args.events // 2)
    )
    due = rng.sample(range(0, args.events, 2), min(GONE_SAMPLES, due_count(args.events)))
    ids = db.event_ids(BIG, kept)
    kept_ids, gone_ids = [ids[s] for s in kept], list(db.event_ids(BIG, due).values())
    archive = root / "archives"
    env = {"TRAILKEEP_RETENTION_INTERVAL_SECONDS": "0", "TRAILKEEP_ARCHIVE_DIR": str(archive)}
    with Server(db, root / "server.log", extra_env=env) as server:
        api = Api(server.port, tokens)
        api.json("PATCH", f"/v1/tenants/{BIG}", "admin", {"retention": POLICY})
        results["checkpoint_wait_s"] = round(wait_checkpoint(api, args.events), 2)
        results["indexed_wait_s"], _ = wait_indexed(
            server.port, tokens["admin"], {BIG: args.events}, time.perf_counter(), 600
        )
        say(f"checkpoint covers the fill after {results['checkpoint_wait_s']:.1f} s")
        proofs = {"before": time_proofs(api, kept_ids, "before pruning")}
        base, _ = ingest_phase(args, api, server, db, False)
        during, run = ingest_phase(args, api, server, db, True)
        assert run is not None
        results["ingest"] = {"baseline": base, "during_run": during}
        results["run"] = run
        results["prune"] = prune = prune_figures(run, args.events)
        say(
            f"retention run: {prune['deleted']:,} deleted in {prune['run_s']:.2f} s"
            f" ({prune['events_per_s']:,.0f} ev/s), {prune['segments']} segments"
        )
        proofs["after"] = time_proofs(api, kept_ids, "after pruning")
        results["proofs"] = proofs
        results["checkpoint_after"] = http_get_json(
            server.port, "/v1/checkpoint", tokens["admin-big"]
        )
        results["checks"] = checks(db, api, archive, prune, run, gone_ids)
    results["targets"] = targets(results, args.events)
    results["machine_after"] = machine_state()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pg = PgDatabase.from_url(args.pg_url) if args.pg_url else None
    if args.data_dir is None:
        root = Path(tempfile.mkdtemp(prefix="trailkeep-retention-bench-"))
    else:
        root = args.data_dir
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"error: --data-dir {root} is not empty")
        root.mkdir(parents=True, exist_ok=True)
    db: Database = pg or SqliteDatabase(root / "db" / "trailkeep.db")
    say(f"data directory: {root}" + (f"; database: {pg.label}" if pg else ""))
    began = time.perf_counter()
    try:
        results = execute(args, db, root)
    finally:
        if args.data_dir is None and not args.keep:
            remove_tree(root)
        else:
            say(f"kept {root}")
        if pg is not None and not args.keep:
            drop_pg(pg)
    results["total_s"] = round(time.perf_counter() - began, 1)
    render(results, args.json)
    emit_json(results, args.json, args.out)
    ok = all(c["ok"] for c in results["checks"]) and all(
        results["proofs"][k]["ok"] == results["proofs"][k]["requests"] for k in ("before", "after")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
