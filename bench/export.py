"""Export benchmark (issue 16): export jobs in JSONL, CSV and Parquet, ingest while an
export runs, and ``trailkeep verify`` of the bundles.

Set-up (SQLite in --data-dir or a temp dir; PostgreSQL with --database-url, a database
of its own that is dropped and re-created): the CLI makes tenants ``big`` (default
privacy: actor name/email, context ip/user agent sealed), ``plain`` (``PATCH
/v1/tenants/plain {"privacy": {"encrypt": []}}``, through a first server) and
``ingest``, and their keys. The fill is RAW, with the server stopped: --events
realistic events of bench/workload.py into ``big`` and --plain-events into ``plain``,
written by the benchmarks' bulk loader (bench/sqlite_load.py / bench/pg_load.py: the
service's own INSERT/COPY code and each tenant's Merkle tiles), each row first passed
through the service's own ``PrivacyService.protect`` (redaction, sealing under
per-subject keys it stores in the database), so the bodies, leaves and keys are what
the service would have written. Then one ``trailkeep serve``:

  exports  POST /v1/exports (tenant_admin key: personal fields decrypted in CSV and
           Parquet), GET /v1/exports/ID every 0.1 s until done: rows / (finished_at -
           started_at) and rows / (POST -> done); the server's VmRSS sampled every 0.1 s
           and VmHWM (reset through /proc/PID/clear_refs before each export).
           jsonl, csv, parquet of big; parquet of plain.
  verify   the JSONL and Parquet archives downloaded, unpacked, and
           ``trailkeep verify DIR --key VKEY --json`` timed as a subprocess.
  ingest   batches of 100 from --ingest-clients connections into ``ingest`` for
           --ingest-seconds, once with no export and once while Parquet exports of big
           run back to back (the one still running at the end is cancelled).
  profile  (--profile, py-spy installed) py-spy samples the server during a Parquet
           export of the first --profile-events of big: where the export's time goes.

A table of target vs measured on stdout (stderr with --json), and a JSON summary with
--json / --out. docs/benchmarks.md (issue 16) has the figures. ~12 min for 1M events:

    .venv/bin/python bench/export.py --out bench/results/export.json
    .venv/bin/python bench/export.py --events 20000 --ingest-seconds 3   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.table import Table

from common import (
    HOST,
    Database,
    Server,
    add_output_args,
    build_request,
    check_database_url,
    create_admin_key,
    create_keys,
    create_tenants,
    emit_json,
    machine_info,
    privacy_key,
    progress,
    remove_tree,
    result_console,
    trailkeep_command,
)
from ingest_watch import RssSampler, proc_status_kb, wait_indexed
from loadgen import LoadSpec, run_load, summarize_tally
from pg_load import PgDatabase
from privacy import Api
from rowgen import LoadPlan
from sqlite_load import SqliteDatabase
from trailkeep.config import Settings
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.timeutil import now_us
from trailkeep.privacy.key_provider import load_key_provider
from trailkeep.privacy.service import PrivacyService
from trailkeep.store.models import EventDraft
from trailkeep.store.protocol import Store
from trailkeep.tenants.service import TenantService
from workload import EventFactory, EventRowT, TargetRowT

BIG, PLAIN, INGEST = "big", "plain", "ingest"
BATCH, BODIES_PER_CLIENT, POLL_S = 100, 4, 0.1
TARGETS = {"parquet": 100_000.0, "jsonl": 50_000.0, "csv": 50_000.0}
RSS_TARGET_MB, INGEST_RATIO_TARGET, VERIFY_TARGET_S = 512.0, 0.8, 15.0
ACTIVE = ("queued", "running")


def say(text: str) -> None:
    progress.print(text, markup=False, highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep export benchmark (see the docstring of bench/export.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--events", type=int, default=1_000_000, help="events of tenant big")
    p.add_argument(
        "--plain-events", type=int, default=None, help="events of tenant plain (default --events)"
    )
    p.add_argument("--ingest-seconds", type=float, default=10.0, help="measured s per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured s before each")
    p.add_argument("--ingest-clients", type=int, default=4, help="batch clients")
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy the server during one more Parquet export (skipped without py-spy)",
    )
    p.add_argument("--profile-events", type=int, default=200_000, help="rows of that export")
    p.add_argument("--job-timeout", type=float, default=900.0, help="s an export may take")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the database, server log and downloads go (kept); default a temp dir",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    if args.plain_events is None:
        args.plain_events = args.events
    if args.events < 1 or args.plain_events < 1 or args.ingest_clients < 1:
        p.error("--events, --plain-events and --ingest-clients must be at least 1")
    return args


# -- the fill: raw rows, protected by the service's own privacy code ------------------------


def draft_of(row: EventRowT) -> EventDraft:
    """The writer's draft of a stored row (bench/workload.py's row layout)."""
    tenant, _, event_id, occurred, received, action, actor_id, actor_type = row[:8]
    severity, outcome, request_hash, body = row[8:12]
    doc = orjson.loads(body)
    return EventDraft(
        tenant,
        event_id,
        False,
        occurred,
        received,
        action,
        actor_id,
        actor_type,
        severity,
        outcome,
        request_hash,
        doc,
    )


class Protector:
    """``PrivacyService.protect`` of the service, on a store opened with the server
    stopped: the tenants' policies, index keys and subject keys as the server keeps them
    (its caches kept warm: the keys are made once, for every actor, up front)."""

    def __init__(self, db: Database) -> None:
        settings = Settings(database_url=db.url, privacy_key=privacy_key())
        self.loop = asyncio.new_event_loop()
        self.store: Store = _build_store(settings)
        self.loop.run_until_complete(self.store.start())
        tenants = TenantService(self.store)
        provider = load_key_provider(settings)
        self.service = PrivacyService(self.store, tenants.privacy_settings, provider, 1e9)
        self.checked = 0

    def warm(self, tenant: str, factory: EventFactory) -> None:
        """One event per actor: every subject key made (and stored) before the fill."""
        at = now_us()
        rows = [factory.stored_row(tenant, 0, at, at)[0] for _ in range(20)]
        drafts = []
        for k, actor in enumerate(factory.actors):
            draft = draft_of(rows[k % len(rows)])
            draft.doc["actor"] = dict(actor.doc)
            drafts.append(draft)
        self.loop.run_until_complete(self.service.protect(tenant, drafts))

    def protect(self, row: EventRowT) -> EventRowT:
        draft = draft_of(row)
        self.loop.run_until_complete(self.service.protect(draft.tenant_id, [draft]))
        body = orjson.dumps(draft.doc, option=orjson.OPT_SORT_KEYS)
        self.checked += 1
        if self.checked <= 16 and canonical_json(draft.doc) != body:
            raise RuntimeError(f"sealed event is not in its RFC 8785 form: {body[:200]!r}")
        return (*row[:10], draft.request_hash, body)

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def _build_store(settings: Settings) -> Store:
    from trailkeep.app import build_store

    return build_store(settings)


class ProtectedFactory(EventFactory):
    """bench/workload.py's rows, each passed through the service's protect (above)."""

    protector: Protector

    def stored_row(
        self, tenant_id: str, seq: int, occurred_us: int, received_us: int
    ) -> tuple[EventRowT, list[TargetRowT]]:
        row, targets = super().stored_row(tenant_id, seq, occurred_us, received_us)
        return self.protector.protect(row), targets


def fill(args: argparse.Namespace, db: Database) -> dict[str, Any]:
    factory = ProtectedFactory(args.seed)
    factory.protector = protector = Protector(db)
    try:
        for tenant in (BIG, PLAIN):
            protector.warm(tenant, factory)
        counts = {BIG: args.events, PLAIN: args.plain_events}
        # workers=0: the rows are made here, where the protector is (worker processes
        # would make plain bench/workload.py rows).
        plan = LoadPlan(counts, end_us=now_us() - 3_600_000_000, seed=args.seed, workers=0)
        say(f"fill: {plan.total:,} events, raw ({db.raw_write}, server stopped) into {db.label}")
        stats = db.bulk_load(plan, factory, "fill")
    finally:
        protector.close()
    stats["method"] = (
        "raw: bench rows (bench/workload.py) through the service's PrivacyService.protect,"
        f" written with the service's {db.raw_write} code and Merkle tiles"
        f" ({'bench/pg_load.py' if db.kind == 'PostgreSQL' else 'bench/sqlite_load.py'}"
        " bulk_load), server stopped"
    )
    say(f"  filled in {stats['seconds']:.0f} s ({stats['events_per_s']:,.0f} ev/s)")
    return stats


# -- exports ------------------------------------------------------------------------------


def _us(text: str | None) -> float:
    if text is None:
        return math.nan
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_job(api: Api, who: str, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout
    while True:
        job: dict[str, Any] = api.json("GET", f"/v1/exports/{job_id}", who)
        if job["state"] not in ACTIVE:
            return job
        if time.perf_counter() > deadline:
            raise SystemExit(f"error: export {job_id} still {job['state']} after {timeout:g} s")
        time.sleep(POLL_S)


class MemorySampler(RssSampler):
    """RssSampler, and the peak of RssAnon too: VmRSS also counts the pages of the SQLite
    file the server reads through mmap (RssFile), which the kernel may drop at will."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.anon_kb = math.nan

    def _sample(self) -> None:
        super()._sample()
        kb = proc_status_kb(self.pid, "RssAnon")
        if not math.isnan(kb) and (math.isnan(self.anon_kb) or kb > self.anon_kb):
            self.anon_kb = kb

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "peak_rss_anon_mb": self.anon_kb / 1024}


def reset_hwm(pid: int) -> bool:
    """VmHWM back to the current RSS (``5`` into /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_export(
    args: argparse.Namespace, api: Api, server: Server, who: str, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    say(f"export {name}: {body} ...")
    reset = reset_hwm(server.pid)
    rss_before = proc_status_kb(server.pid, "VmRSS") / 1024
    rss = MemorySampler(server.pid)
    rss.start()
    cpu_before = server.cpu_seconds()
    began = time.perf_counter()
    job = api.json("POST", "/v1/exports", who, body)
    job = wait_job(api, who, job["id"], args.job_timeout)
    wall = time.perf_counter() - began
    cpu = server.cpu_seconds() - cpu_before
    rss.stop()
    if job["state"] != "done":
        raise SystemExit(f"error: export {name} ended {job['state']}: {job['error']}")
    rows = int(job["progress"]["written"])
    job_s = _us(job["finished_at"]) - _us(job["started_at"])
    result = {
        "name": name,
        "id": job["id"],
        "request": body,
        "rows": rows,
        "job_s": round(job_s, 3),
        "job_events_per_s": rows / job_s,
        "wall_s": round(wall, 3),
        "wall_events_per_s": rows / wall,
        "queued_s": round(_us(job["started_at"]) - _us(job["created_at"]), 3),
        "server_cpu_pct": 100.0 * cpu / wall,
        "rss_before_mb": rss_before,
        **rss.summary(),
        "hwm_reset": reset,
        "archive_mb": job["archive"]["bytes"] / 1e6,
        "files": job["files"],
        "view": job["view"],
    }
    say(
        f"  {rows:,} rows: job {job_s:.2f} s ({result['job_events_per_s']:,.0f} ev/s), wall"
        f" {wall:.2f} s; peak RSS {result['peak_rss_mb']:.0f} MB (HWM"
        f" {result['vm_hwm_mb']:.0f} MB, RssAnon {result['peak_rss_anon_mb']:.0f} MB);"
        f" archive {result['archive_mb']:.1f} MB"
    )
    return result


def download_and_verify(
    api: Api, who: str, result: dict[str, Any], into: Path, vkey: str
) -> dict[str, Any]:
    """The archive through GET /v1/exports/ID/download, unpacked, verified offline."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / f"{result['id']}.zip"
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {api.tokens[who]}"}
    url = f"http://{HOST}:{api.port}/v1/exports/{result['id']}/download"
    with httpx.stream("GET", url, headers=headers, timeout=300) as resp, archive.open("wb") as sink:
        resp.raise_for_status()
        for block in resp.iter_bytes(1 << 20):
            sink.write(block)
    downloaded = time.perf_counter()
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(into)
        folder = into / zf.namelist()[0].split("/", 1)[0]
    unpacked = time.perf_counter()
    cmd = [*trailkeep_command(), "verify", str(folder), "--key", vkey, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    verified = time.perf_counter()
    report: dict[str, Any] = {}
    if proc.stdout.strip():
        report = orjson.loads(proc.stdout)
    out = {
        "download_s": round(downloaded - began, 3),
        "unpack_s": round(unpacked - downloaded, 3),
        "verify_s": round(verified - unpacked, 3),
        "verify_rc": proc.returncode,
        "verify_ok": proc.returncode == 0 and bool(report.get("ok", False)),
        "verify_rows": report.get("rows"),
        "verify_report": {k: v for k, v in report.items() if k != "problems"}
        | {"problems": report.get("problems", [])[:5]},
        "verify_stderr": proc.stderr.strip()[-500:],
    }
    say(
        f"  download {out['download_s']:.1f} s, unpack {out['unpack_s']:.1f} s, verify"
        f" {out['verify_s']:.1f} s: {'ok' if out['verify_ok'] else 'FAILED'}"
        f" ({report.get('rows')} rows)"
    )
    shutil.rmtree(into, ignore_errors=True)
    return out


# -- ingest with and without an export running ------------------------------------------------


def ingest_pools(port: int, token: str, factory: EventFactory, clients: int) -> list[list[bytes]]:
    now = now_us()
    return [
        [
            build_request(
                "POST",
                "/v1/events/batch",
                port,
                token,
                orjson.dumps({"events": [factory.client_event(now) for _ in range(BATCH)]}),
            )
            for _ in range(BODIES_PER_CLIENT)
        ]
        for _ in range(clients)
    ]


class ExportLoop(threading.Thread):
    """Parquet exports of big back to back until stopped; the last one is cancelled."""

    def __init__(self, api: Api, who: str, timeout: float) -> None:
        super().__init__(name="export-loop", daemon=True)
        self.api, self.who, self.timeout = api, who, timeout
        self.stopping = threading.Event()
        self.started = threading.Event()
        self.jobs: list[dict[str, Any]] = []
        self.error = ""

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                job = self.api.json("POST", "/v1/exports", self.who, {"format": "parquet"})
                while job["state"] in ACTIVE:
                    if job["state"] == "running":
                        self.started.set()
                    if self.stopping.is_set():
                        self.api.call("DELETE", f"/v1/exports/{job['id']}", self.who)
                    time.sleep(POLL_S)
                    job = self.api.json("GET", f"/v1/exports/{job['id']}", self.who)
                self.jobs.append(job)
                self.started.set()  # (a job too short to be seen running)
        except BaseException as exc:
            self.error = repr(exc)
            self.started.set()

    def busy_seconds(self, begin: float, end: float) -> float:
        """Seconds of [begin, end] (epoch) during which one of the jobs was running."""
        total = 0.0
        for job in self.jobs:
            lo, hi = _us(job["started_at"]), _us(job["finished_at"])
            if not math.isnan(lo):
                total += max(0.0, min(end, hi if not math.isnan(hi) else end) - max(begin, lo))
        return total


def ingest_phase(
    args: argparse.Namespace,
    api: Api,
    server: Server,
    db: Database,
    pools: list[list[bytes]],
    name: str,
    exporting: bool,
) -> dict[str, Any]:
    loop = None
    if exporting:
        loop = ExportLoop(api, "admin-big", args.job_timeout)
        loop.start()
        loop.started.wait(120)
    say(f"ingest {name}: {len(pools)} clients, batches of {BATCH}, {args.ingest_seconds:g} s ...")
    offset = time.time() - time.perf_counter()
    cpu_before = server.cpu_seconds()
    began = time.perf_counter()
    tally = run_load(LoadSpec(server.port, "batch", pools, args.warmup, args.ingest_seconds))
    wall = time.perf_counter() - began
    result = summarize_tally(tally, BATCH)
    result.update(
        name=name,
        clients=len(pools),
        server_cpu_pct=100 * (server.cpu_seconds() - cpu_before) / wall,
    )
    if loop is not None:
        loop.stopping.set()
        loop.join()
        window = (tally.measure_from + offset, tally.measure_from + offset + tally.window_s)
        busy = loop.busy_seconds(*window)
        result["export_jobs"] = [
            {k: j[k] for k in ("id", "state", "started_at", "finished_at")}
            | {"written": j["progress"]["written"]}
            for j in loop.jobs
        ]
        result["export_busy_share"] = busy / tally.window_s if tally.window_s else math.nan
        result["export_error"] = loop.error
    began = time.perf_counter()
    seconds, behind = wait_indexed(
        api.port, api.tokens["admin"], {INGEST: db.tenant_counts()[INGEST]}, began, 300
    )
    result["catch_up_s"] = seconds
    say(
        f"  {result['events_per_s']:,.0f} ev/s, p95 {result['p95_ms']:.1f} ms, non-2xx"
        f" {result['non_2xx_total']}, errors {result['connection_errors']}"
        + (f"; an export ran {result['export_busy_share']:.0%} of the window" if loop else "")
        + (f"; indexer behind: {behind}" if behind else "")
    )
    return result


# -- profile ------------------------------------------------------------------------------------


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def profile_export(
    args: argparse.Namespace, api: Api, server: Server, root: Path, fmt: str
) -> dict[str, Any] | None:
    exe = py_spy()
    if exe is None:
        say("profile: py-spy not found, skipped")
        return None
    out = root / f"export-profile-{fmt}.txt"
    cmd = [
        exe,
        "record",
        "--pid",
        str(server.pid),
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    body = {"format": fmt, "to_seq": min(args.profile_events, args.events)}
    result = run_export(args, api, server, "admin-big", f"{fmt} big (py-spy)", body)
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not out.exists():
        say(
            "profile: py-spy wrote nothing: "
            + (spy.stderr.read().decode()[-300:] if spy.stderr else "")
        )
        return None
    return {"export": result, **summarize_stacks(out)}


# Frames whose inclusive share says where an export's time goes (not the server's roots).
PROFILED = ("trailkeep/exports/", "trailkeep/privacy/", "trailkeep/store/", "trailkeep/kit/",
            "trailkeep/integrity/", "pyarrow", "zipfile", "csv", "json")  # fmt: skip


def summarize_stacks(path: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self sample shares per function of py-spy's raw (collapsed) stacks,
    of every thread (the event loop and the worker threads of asyncio.to_thread)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in set(frames):
            if any(part in frame for part in PROFILED):
                inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    share: dict[str, Any] = {"samples": total, "rate_hz": 100}
    share["inclusive"] = {f: round(n / total, 4) for f, n in inclusive.most_common(top)}
    share["self"] = {f: round(n / total, 4) for f, n in own.most_common(top)}
    return share


def _frame(text: str) -> str:
    """``function (path/to/file.py:123)`` -> ``function (file.py)``."""
    name, _, where = text.partition(" (")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    short = "/".join(parts[parts.index("trailkeep") :]) if "trailkeep" in parts else parts[-1]
    return f"{name} ({short})"


# -- report --------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def targets(results: dict[str, Any], events: int) -> list[dict[str, Any]]:
    ex = results["exports"]
    rows: list[dict[str, Any]] = []
    for fmt in ("parquet", "jsonl", "csv"):
        r = ex[f"{fmt} big"]
        rows.append(
            {
                "target": f"{fmt.upper()} export of big (sealed), job rate",
                "goal": f">= {TARGETS[fmt]:,.0f} ev/s",
                "measured": f"{r['job_events_per_s']:,.0f} ev/s"
                f" ({r['rows']:,} rows in {r['job_s']:.1f} s;"
                f" wall {r['wall_events_per_s']:,.0f} ev/s)",
                "ok": r["job_events_per_s"] >= TARGETS[fmt],
            }
        )
    plain = ex.get("parquet plain")
    if plain:
        rows.append(
            {
                "target": "Parquet export of plain (encrypt []), job rate",
                "goal": f">= {TARGETS['parquet']:,.0f} ev/s",
                "measured": f"{plain['job_events_per_s']:,.0f} ev/s ({plain['rows']:,} rows;"
                f" wall {plain['wall_events_per_s']:,.0f} ev/s)",
                "ok": plain["job_events_per_s"] >= TARGETS["parquet"],
            }
        )
    for name in ("parquet big", "parquet plain"):
        if name in ex:
            r = ex[name]
            peak = max(r["peak_rss_mb"], r["vm_hwm_mb"] if r["hwm_reset"] else 0.0)
            anon = r.get("peak_rss_anon_mb", math.nan)
            rows.append(
                {
                    "target": f"server RSS during {name}",
                    "goal": f"<= {RSS_TARGET_MB:.0f} MB",
                    "measured": f"{peak:.0f} MB peak (VmRSS sampled {r['peak_rss_mb']:.0f},"
                    f" VmHWM {r['vm_hwm_mb']:.0f}, RssAnon {anon:.0f};"
                    f" {r['rss_before_mb']:.0f} before)",
                    "ok": peak <= RSS_TARGET_MB,
                }
            )
    ing = results["ingest"]
    base, during = ing["baseline"]["events_per_s"], ing["during_export"]["events_per_s"]
    busy = ing["during_export"].get("export_busy_share", math.nan)
    rows.append(
        {
            "target": "ingest while a Parquet export runs / without",
            "goal": f">= {INGEST_RATIO_TARGET}",
            "measured": f"{during / base:.2f} ({during:,.0f}"
            f" / {base:,.0f} ev/s; export running {busy:.0%} of the window)",
            "ok": during / base >= INGEST_RATIO_TARGET,
        }
    )
    for fmt in ("jsonl", "parquet"):
        v = ex[f"{fmt} big"]["verify"]
        scaled = "" if events >= 1_000_000 else f" (target is for 1M; {events:,} here)"
        rows.append(
            {
                "target": f"trailkeep verify, unpacked {fmt.upper()} bundle",
                "goal": f"<= {VERIFY_TARGET_S:.0f} s",
                "measured": f"{v['verify_s']:.1f} s,"
                f" {'ok' if v['verify_ok'] else 'FAILED'}{scaled}",
                "ok": v["verify_s"] <= VERIFY_TARGET_S and v["verify_ok"],
            }
        )
    return rows


def render(results: dict[str, Any], to_stderr: bool) -> None:
    console = result_console(to_stderr)
    table = Table(title="Exports (issue 16): target vs measured")
    for col in ("target", "goal", "measured", "verdict"):
        table.add_column(col)
    for row in results["targets"]:
        table.add_row(row["target"], row["goal"], row["measured"], verdict(row["ok"]))
    console.print(table)
    detail = Table(title="export jobs")
    cols = (
        "export",
        "rows",
        "job s",
        "job ev/s",
        "wall s",
        "queued s",
        "server CPU",
        "peak RSS MB",
        "HWM MB",
        "RssAnon MB",
        "archive MB",
        "download s",
        "verify s",
    )
    for col in cols:
        detail.add_column(col, justify="right")
    for name, r in results["exports"].items():
        v = r.get("verify", {})
        detail.add_row(
            name,
            f"{r['rows']:,}",
            f"{r['job_s']:.2f}",
            f"{r['job_events_per_s']:,.0f}",
            f"{r['wall_s']:.2f}",
            f"{r['queued_s']:.2f}",
            f"{r['server_cpu_pct']:.0f}%",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['vm_hwm_mb']:.0f}",
            f"{r.get('peak_rss_anon_mb', math.nan):.0f}",
            f"{r['archive_mb']:.1f}",
            str(v.get("download_s", "-")),
            str(v.get("verify_s", "-")),
        )
    console.print(detail)
    for fmt, prof in (results.get("profile") or {}).items():
        if not prof:
            continue
        rows = prof["export"]["rows"]
        top = Table(title=f"py-spy, {fmt} export of {rows:,} rows: share of samples")
        top.add_column("function")
        top.add_column("share", justify="right")
        for frame, share in list(prof["inclusive"].items())[:20]:
            top.add_row(frame, f"{share:.1%}")
        top.add_row("-- self (leaf) --", "")
        for frame, share in list(prof["self"].items())[:10]:
            top.add_row(frame, f"{share:.1%}")
        console.print(top)


# -- main ---------------------------------------------------------------------------------------


def machine_state() -> dict[str, Any]:
    others = subprocess.run(["pgrep", "-af", "pytest|bench/"], capture_output=True, text=True)
    mine = {str(os.getpid()), str(os.getppid())}
    lines = [ln for ln in others.stdout.splitlines() if ln.split(" ", 1)[0] not in mine]
    return {**machine_info(), "loadavg": os.getloadavg(), "other_runs": lines}


def set_up(db: Database) -> dict[str, str]:
    db.recreate()
    say(f"{db.kind}: tenants {BIG}, {PLAIN}, {INGEST} and their keys (CLI) ...")
    create_tenants(db, [BIG, PLAIN, INGEST])
    admins = create_keys(db, [BIG, PLAIN], "tenant_admin")
    tokens = {f"admin-{t}": tok for t, tok in admins.items()}
    tokens["writer-ingest"] = create_keys(db, [INGEST], "writer")[INGEST]
    tokens["admin"] = create_admin_key(db)
    return tokens


def execute(args: argparse.Namespace, db: Database, root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine_before": machine_state(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    results["database"] = db.describe()
    tokens = set_up(db)
    with Server(db, root / "setup.log") as server:
        api = Api(server.port, tokens)
        api.json("PATCH", f"/v1/tenants/{PLAIN}", "admin", {"privacy": {"encrypt": []}})
        shown = api.json("GET", f"/v1/tenants/{PLAIN}", "admin")["privacy"]
        say(f"  {PLAIN} privacy: encrypt {shown['encrypt']}")
    results["fill"] = fill(args, db)
    results["tenant_counts"] = db.tenant_counts()
    exports: dict[str, Any] = {}
    results["exports"] = exports
    with Server(db, root / "server.log") as server:
        api = Api(server.port, tokens)
        vkey = str(api.json("GET", "/v1/integrity/key", "admin-big")["vkey"])
        for fmt in ("jsonl", "csv", "parquet"):
            name = f"{fmt} big"
            exports[name] = run_export(args, api, server, "admin-big", name, {"format": fmt})
            if fmt in ("jsonl", "parquet"):
                into = root / "downloads" / fmt
                exports[name]["verify"] = download_and_verify(
                    api, "admin-big", exports[name], into, vkey
                )
        exports["parquet plain"] = run_export(
            args, api, server, "admin-plain", "parquet plain", {"format": "parquet"}
        )
        pools = ingest_pools(
            server.port, tokens["writer-ingest"], EventFactory(args.seed + 16), args.ingest_clients
        )
        results["ingest"] = {
            "baseline": ingest_phase(args, api, server, db, pools, "no export", False),
            "during_export": ingest_phase(args, api, server, db, pools, "during export", True),
        }
        if args.profile:
            results["profile"] = {
                fmt: profile_export(args, api, server, root, fmt) for fmt in ("parquet", "jsonl")
            }
    results["targets"] = targets(results, args.events)
    results["machine_after"] = machine_state()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pg = PgDatabase.from_url(args.pg_url) if args.pg_url else None
    if args.data_dir is None:
        root = Path(tempfile.mkdtemp(prefix="trailkeep-export-bench-"))
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
    results["total_s"] = round(time.perf_counter() - began, 1)
    render(results, args.json)
    emit_json(results, args.json, args.out)
    ok = all(v["verify_ok"] for r in results["exports"].values() if (v := r.get("verify")))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
