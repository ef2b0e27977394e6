"""Privacy benchmark (issue 15): redaction + sealing at ingest, erasure, decrypted reads.

Per backend (SQLite in a temp dir; PostgreSQL in a database of its own, --pg-url, dropped
at the end) the CLI makes tenants ``priv`` (default privacy settings) and ``plain``
(privacy off: ``PATCH /v1/tenants/plain {"privacy": {"redaction": [], "encrypt": []}}``)
and keys; a real ``trailkeep serve`` is driven over loopback (bench/common.py's client).

  probe  a card and a bearer token: redacted and actor.name sealed in priv, not in plain.
  cost   target 1 (≤ 25%): --phase-events per phase in batches of 100 over --clients
         connections, the same realistic bodies for both tenants (bench/workload.py's
         5,000 actors, all users with name and email; --secret-share with a card or a
         bearer token); tenants in ABBA order over --rounds pairs, the indexer waited
         for between phases. cost = 1 - mean(priv ev/s) / mean(plain ev/s).
  fill   (--full backends) priv through the API, batches of 1,000: --erase-subjects
         subjects of --erase-events events, then realistic events up to --read-events
         (or --fill-max-seconds).
  reads  target 3 (p95 ≤ 10 ms): pages of 50, newest / --deep-pages deeper by cursor /
         q=action:--action, as auditor, auditor&form=stored (baseline) and reader;
         --reads each, sequential, interleaved, after 20 unmeasured rounds.
  erase  target 2 (≤ 1 s): POST /v1/subjects/ID/erase once the subject counts
         --erase-events; checks events_affected and that its events read "[erased]".

Tables on stdout (stderr with --json), a JSON summary with --json / --out; exit status
1 when a check fails. docs/benchmarks.md (issue 15) has the figures. ~13 min:

    .venv/bin/python bench/privacy.py --out bench/results/privacy.json
    .venv/bin/python bench/privacy.py --backends sqlite --phase-events 5000 --rounds 1 \\
        --erase-events 5000 --erase-subjects 1 --read-events 30000 --reads 50   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import random
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rich.table import Table

from common import (
    HOST,
    Connection,
    Database,
    HttpError,
    Server,
    build_request,
    create_admin_key,
    create_keys,
    create_tenants,
    emit_json,
    fmt_ms,
    latency_summary,
    machine_info,
    progress,
    remove_tree,
    result_console,
    run_async,
)
from ingest_watch import wait_indexed
from pg_load import PgDatabase
from sqlite_load import SqliteDatabase
from trailkeep.kit.timeutil import now_us
from workload import EventFactory

PRIV, PLAIN = "priv", "plain"
CARD = "4111 1111 1111 1111"  # passes Luhn: the card detector masks it
BATCH, FILL_BATCH, PAGE, READ_WARMUP = 100, 1_000, 50, 20
QUERIES, VARIANTS = ("newest", "deep", "action"), ("auditor", "stored", "reader")
ERASED = "[erased]"


def say(text: str) -> None:
    progress.print(text, markup=False, highlight=False)


@dataclass
class Run:
    args: argparse.Namespace
    root: Path
    checks: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        say(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}")


class Workload:
    """bench/workload.py's events, every user with an email, a few carrying a secret."""

    def __init__(self, seed: int, secret_share: float) -> None:
        self.factory = EventFactory(seed)
        self.rng = random.Random(seed + 15)
        self.secret_share = secret_share
        self.now = now_us()

    def event(self) -> dict[str, Any]:
        ev = self.factory.client_event(self.now - int(self.rng.random() * 3_600_000_000))
        actor = ev["actor"] = dict(ev["actor"])
        if actor["type"] == "user" and "email" not in actor:
            actor["email"] = f"{actor['id'].replace('_', '.')}@example.com"
        roll = self.rng.random()
        if roll < self.secret_share / 2:
            ev["message"] += f" paid with card {CARD}"
        elif roll < self.secret_share:
            ev["metadata"]["authorization"] = f"Bearer {self.rng.getrandbits(160):040x}"
        return ev

    def bodies(self, events: int, size: int, actor: dict[str, str] | None = None) -> list[bytes]:
        out = []
        for _ in range(max(1, events // size)):
            batch = [self.event() | ({"actor": actor} if actor else {}) for _ in range(size)]
            out.append(orjson.dumps({"events": batch}))
        return out


def subject_actor(k: int) -> dict[str, str]:
    name = f"erin.subject{k}"
    return {"id": f"usr_erase_{k}", "type": "user", "name": name, "email": f"{name}@example.com"}


# -- load: each request sent once, over N keep-alive connections ---------------------------


@dataclass
class Load:
    events: int = 0
    redacted: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        rate = self.events / self.seconds if self.seconds else 0.0
        return {"events": self.events, "requests": len(self.latencies),
                "seconds": round(self.seconds, 2), "events_per_s": rate,
                "redacted_events": self.redacted, "failures": len(self.failures),
                "failure_samples": self.failures[:3],
                **latency_summary(self.latencies)}  # fmt: skip


async def _drain(port: int, requests: Iterator[bytes], clients: int, label: str) -> Load:
    load = Load()
    conns = [await Connection.open(port) for _ in range(clients)]
    began = reported = time.perf_counter()

    async def worker(conn: Connection) -> None:
        nonlocal reported
        for raw in requests:  # shared: every request goes out once, on whichever is free
            t0 = time.perf_counter()
            try:
                status, body = await conn.request(raw)
            except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
                load.failures.append(repr(exc))
                return
            now = time.perf_counter()
            load.latencies.append(now - t0)
            if status != 200 or not body.startswith(b'{"created":'):
                load.failures.append(f"HTTP {status}: {body[:200]!r}")
                continue
            load.events += int(body[11 : body.index(b",", 11)])
            load.redacted += body.count(b'"redacted":')
            if now - reported >= 15:
                reported = now
                say(f"    {label}: {load.events:,} events, {load.events / (now - began):,.0f} ev/s")

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    load.seconds = time.perf_counter() - began
    return load


def drain(port: int, token: str, bodies: list[bytes], count: int, clients: int, label: str,
          deadline: float = math.inf) -> Load:  # fmt: skip
    """POST ``count`` batches (``bodies`` in turn) unless ``deadline`` (perf_counter) passed."""

    def requests() -> Iterator[bytes]:
        for body in itertools.islice(itertools.cycle(bodies), count):
            if time.perf_counter() > deadline:
                return
            yield build_request("POST", "/v1/events/batch", port, token, body)

    result: Load = run_async(_drain(port, requests(), clients, label))
    return result


# -- set-up ------------------------------------------------------------------------------


@dataclass
class Api:
    port: int
    tokens: dict[str, str]  # writer-priv, writer-plain, admin, auditor, reader, tenant_admin

    def call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        with httpx.Client(base_url=f"http://{HOST}:{self.port}", timeout=120) as client:
            return client.request(method, path, headers=headers, json=body)

    def json(self, method: str, path: str, who: str, body: Any = None) -> Any:
        resp = self.call(method, path, who, body)
        if resp.status_code >= 300:
            raise SystemExit(f"error: {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()


def make_keys(db: Database) -> dict[str, str]:
    say(f"{db.kind}: tenants {PRIV}, {PLAIN} and their keys (CLI) ...")
    create_tenants(db, [PRIV, PLAIN])
    tokens = {f"writer-{t}": tok for t, tok in create_keys(db, [PRIV, PLAIN], "writer").items()}
    for role in ("auditor", "reader", "tenant_admin"):
        tokens[role] = create_keys(db, [PRIV], role)[PRIV]
    tokens["admin"] = create_admin_key(db)
    return tokens


def probe(run: Run, api: Api, label: str) -> None:
    """Privacy off in plain; a card and a bearer token redacted, actor.name sealed in priv."""
    off: dict[str, Any] = {"privacy": {"redaction": [], "encrypt": []}}
    api.json("PATCH", f"/v1/tenants/{PLAIN}", "admin", off)
    shown = api.json("GET", f"/v1/tenants/{PLAIN}", "admin")["privacy"]
    off_ok = shown["encrypt"] == [] == shown["redaction"]
    run.check(f"{label}: plain privacy off", off_ok, str(shown))
    actor = {"id": "usr_probe", "name": "Pro Be"}
    events = [{"action": "billing.card_updated", "actor": actor, "message": f"card {CARD} saved"},
              {"action": "api_key.used", "actor": actor,
               "metadata": {"authorization": "Bearer abcdefghijklmnop0123456789"}}]  # fmt: skip
    for tenant in (PRIV, PLAIN):
        out = api.json("POST", "/v1/events/batch", f"writer-{tenant}", {"events": events})
        redacted = [item.get("redacted", []) for item in out["results"]]
        path = f"/v1/events/{out['results'][0]['id']}?tenant_id={tenant}&form=stored"
        doc = api.json("GET", path, "admin")
        sealed = isinstance(doc["actor"]["name"], dict) and "tk_enc" in doc["actor"]["name"]
        if tenant == PRIV:
            ok = all(redacted) and sealed and CARD not in doc["message"]
        else:
            ok = not any(redacted) and not sealed and CARD in doc["message"]
        run.check(f"{label}: probe into {tenant}", ok, f"redacted {redacted}, sealed {sealed}")


def indexed(api: Api, db: Database) -> float:
    began = time.perf_counter()
    seconds, behind = wait_indexed(api.port, api.tokens["admin"], db.tenant_counts(), began, 600)
    if behind:
        raise SystemExit(f"error: the indexer did not catch up: {behind}")
    return seconds


# -- the steps -------------------------------------------------------------------------------


def cost_phases(run: Run, api: Api, db: Database, label: str, wl: Workload) -> dict[str, Any]:
    args = run.args
    bodies = wl.bodies(args.phase_events, BATCH)
    sent = len(bodies) * BATCH
    pairs = ((PLAIN, PRIV) if r % 2 == 0 else (PRIV, PLAIN) for r in range(args.rounds))
    order = [t for pair in pairs for t in pair]
    phases: list[dict[str, Any]] = []
    for number, tenant in enumerate(order, 1):
        name = f"{number}:{tenant}"
        say(f"  {label} phase {name}: {sent:,} events, batches of {BATCH}, {args.clients} clients")
        before = db.tenant_counts().get(tenant, 0)
        token = api.tokens[f"writer-{tenant}"]
        load = drain(api.port, token, bodies, len(bodies), args.clients, name)
        stored = db.tenant_counts().get(tenant, 0) - before
        phases.append({"phase": name, "tenant": tenant, **load.summary(), "stored": stored,
                       "catch_up_s": indexed(api, db)})  # fmt: skip
        run.check(
            f"{label} {name}: acknowledged == sent == stored",
            not load.failures and load.events == sent == stored,
            f"{load.events / load.seconds:,.0f} ev/s; {load.events:,} acked, {stored:,} stored,"
            f" {load.redacted:,} redacted, {len(load.failures)} failures {load.failures[:1]}",
        )
    rates = {t: [p["events_per_s"] for p in phases if p["tenant"] == t] for t in (PRIV, PLAIN)}
    ratio = (sum(rates[PRIV]) / len(rates[PRIV])) / (sum(rates[PLAIN]) / len(rates[PLAIN]))
    return {"phases": phases, "order": order, "ratio": ratio, "cost": 1 - ratio}


def fill(run: Run, api: Api, db: Database, label: str, wl: Workload) -> dict[str, Any]:
    args = run.args
    token, clients = api.tokens[f"writer-{PRIV}"], args.fill_clients
    began = time.perf_counter()
    parts: dict[str, Any] = {}
    for k in range(args.erase_subjects):
        bodies = wl.bodies(min(args.erase_events, 10 * FILL_BATCH), FILL_BATCH, subject_actor(k))
        load = drain(api.port, token, bodies, args.erase_events // FILL_BATCH, clients, f"s{k}")
        parts[f"subject {k}"] = load.summary()
        ok = not load.failures and load.events == args.erase_events
        run.check(f"{label} fill subject {k}", ok, f"{load.events:,} acked {load.failures[:1]}")
    missing = args.read_events - db.tenant_counts().get(PRIV, 0)
    if missing > 0:
        bodies = wl.bodies(min(missing, 100 * FILL_BATCH), FILL_BATCH)
        say(f"  {label}: filling {PRIV} with up to {missing:,} more events ...")
        cap = began + args.fill_max_seconds
        load = drain(api.port, token, bodies, -(-missing // FILL_BATCH), clients, "fill", cap)
        parts["realistic"] = load.summary()
        run.check(f"{label} fill", not load.failures, f"{load.events:,} acked {load.failures[:1]}")
    seconds = time.perf_counter() - began
    acked = sum(p["events"] for p in parts.values())
    result = {"parts": parts, "events": acked, "seconds": round(seconds, 1),
              "events_per_s": acked / seconds, "catch_up_s": indexed(api, db),
              "tenant_events": db.tenant_counts()[PRIV]}  # fmt: skip
    say(f"  {label}: {PRIV} holds {result['tenant_events']:,} events; fill took {seconds:.0f} s")
    return result


async def _timed(port: int, series: dict[str, bytes], rounds: int) -> tuple[Any, Any]:
    conn = await Connection.open(port)
    lat: dict[str, list[float]] = {name: [] for name in series}
    last: dict[str, tuple[int, bytes]] = {}
    try:
        for i in range(READ_WARMUP + rounds):
            for name, raw in series.items():
                t0 = time.perf_counter()
                last[name] = await conn.request(raw)
                if i >= READ_WARMUP:
                    lat[name].append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return lat, last


EXPECT: dict[str, Callable[[Any], bool]] = {
    "stored": lambda v: isinstance(v, dict) and "tk_enc" in v,
    "auditor": lambda v: isinstance(v, str) and "***" not in v and not v.startswith("["),
    "reader": lambda v: isinstance(v, str) and "***" in v,
}


def reads(run: Run, api: Api, label: str) -> dict[str, Any]:
    args = run.args
    cursor = ""
    for _ in range(args.deep_pages):
        page = api.json("GET", f"/v1/events?limit={PAGE}&form=stored{cursor}", "auditor")
        cursor = f"&cursor={urllib.parse.quote(page['next_cursor'])}"
    q = urllib.parse.quote(f"action:{args.action}")
    paths = {"newest": "", "deep": cursor, "action": f"&q={q}"}
    series = {
        f"{query}/{variant}": build_request(
            "GET",
            f"/v1/events?limit={PAGE}{paths[query]}" + ("&form=stored" * (variant == "stored")),
            api.port,
            api.tokens["reader" if variant == "reader" else "auditor"],
        )
        for query in QUERIES
        for variant in VARIANTS
    }
    say(f"  {label}: {len(series)} read series x {args.reads} (+{READ_WARMUP} warm-up rounds)")
    lat, last = run_async(_timed(api.port, series, args.reads))
    out: dict[str, Any] = {}
    for name, latencies in lat.items():
        status, body = last[name]
        data = orjson.loads(body)["data"] if status == 200 else []
        names = [ev["actor"].get("name") for ev in data]
        ok = status == 200 and len(data) == PAGE and all(map(EXPECT[name.split("/")[1]], names))
        run.check(f"{label} read {name}", ok, f"HTTP {status}, {len(data)} events, {names[:1]}")
        out[name] = latency_summary(latencies)
    for query in QUERIES:
        base = out[f"{query}/stored"]
        for variant in ("auditor", "reader"):
            row = out[f"{query}/{variant}"]
            for pct in ("p50", "p95"):
                row[f"{pct}_minus_stored_ms"] = row[f"{pct}_ms"] - base[f"{pct}_ms"]
    return out


def erasures(run: Run, api: Api, label: str) -> list[dict[str, Any]]:
    args = run.args
    out = []
    for k in range(args.erase_subjects):
        subject = subject_actor(k)["id"]
        deadline = time.monotonic() + 300
        while (api.json("GET", f"/v1/subjects/{subject}", "tenant_admin")["events"]) < (
            args.erase_events
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"error: {subject} not counted in full after 300 s")
            time.sleep(0.2)
        began = time.perf_counter()
        resp = api.call("POST", f"/v1/subjects/{subject}/erase", "tenant_admin")
        ms = (time.perf_counter() - began) * 1000
        answer = resp.json()
        q = urllib.parse.quote(f"actor.id:{subject}")
        page = api.json("GET", f"/v1/events?limit=5&q={q}", "auditor")["data"]
        shown = [(ev["actor"].get("name"), ev["actor"].get("email")) for ev in page]
        ok = (resp.status_code == 200 and answer.get("events_affected") == args.erase_events
              and answer.get("keys_erased") == 1 and len(shown) == 5
              and all(v == (ERASED, ERASED) for v in shown))  # fmt: skip
        detail = f"HTTP {resp.status_code} in {ms:.1f} ms, events_affected"
        detail += f" {answer.get('events_affected')}, {shown[:1]}"
        run.check(f"{label} erase {subject}", ok, detail)
        out.append({"subject": subject, "ms": ms, "answer": answer})
    return out


def drop_pg(db: PgDatabase) -> None:
    with psycopg.connect(make_conninfo(db.url, dbname="postgres"), autocommit=True) as conn:
        name = sql.Identifier(db.name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def run_backend(run: Run, backend: str) -> None:
    args = run.args
    work = run.root / backend
    pg = PgDatabase.from_url(args.pg_url) if backend == "postgresql" else None
    db: Database = pg or SqliteDatabase(work / "trailkeep.db")
    result = run.results.setdefault(backend, {"database": db.label})
    try:
        work.mkdir(parents=True, exist_ok=True)
        db.recreate()
        tokens = make_keys(db)
        wl = Workload(args.seed, args.secret_share)
        with Server(db, work / "server.log") as server:
            api = Api(server.port, tokens)
            probe(run, api, backend)
            result["cost"] = cost_phases(run, api, db, backend, wl)
            if backend in args.full:
                result["fill"] = fill(run, api, db, backend, wl)
                result["reads"] = reads(run, api, backend)
                result["erase"] = erasures(run, api, backend)
    finally:
        if pg is not None and not args.keep:
            drop_pg(pg)


# -- report ----------------------------------------------------------------------------------


def targets(run: Run) -> list[list[str]]:
    rows = []
    for backend, res in run.results.items():
        if "cost" in res:
            c = res["cost"]
            value = f"{c['cost']:.1%} (ratio {c['ratio']:.3f})"
            rows.append([f"{backend}: redaction + sealing, batch ingest", "cost ≤ 25%", value,
                         c["cost"] <= 0.25])  # fmt: skip
        if "erase" in res:
            worst = max(e["ms"] for e in res["erase"])
            what = f"{backend}: erase a subject of {run.args.erase_events:,} events"
            value = f"max {worst:.1f} ms of {len(res['erase'])}"
            rows.append([what, "≤ 1 s", value, worst <= 1000])
        size = res.get("fill", {}).get("tenant_events", 0)
        for query in QUERIES if "reads" in res else ():
            p95 = res["reads"][f"{query}/auditor"]["p95_ms"]
            goal = "p95 ≤ 10 ms at 1M" + ("" if size >= 1_000_000 else f" (here {size:,})")
            rows.append([f"{backend}: page of 50 decrypted, {query}", goal, f"{p95:.2f} ms",
                         p95 <= 10 and size >= 1_000_000])  # fmt: skip
    return [[*r[:3], "met" if r[3] else "NOT met"] for r in rows]


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    t = Table(*columns, title=title)
    for row in rows:
        t.add_row(*row)
    return t


def render(run: Run, to_stderr: bool) -> None:
    console = result_console(to_stderr)
    for backend, res in run.results.items():
        if "cost" in res:
            c = res["cost"]
            rows = [[p["phase"], f"{p['events']:,}", f"{p['seconds']:.1f}",
                     f"{p['events_per_s']:,.0f}", fmt_ms(p["p50_ms"]), fmt_ms(p["p99_ms"]),
                     f"{p['redacted_events']:,}", f"{p['catch_up_s']:.1f}"]
                    for p in c["phases"]]  # fmt: skip
            cols = ["phase", "events", "s", "ev/s", "p50 ms", "p99 ms", "redacted", "indexed s"]
            title = f"{backend}: batches of {BATCH}, {run.args.clients} clients"
            console.print(table(title, cols, rows))
            console.print(f"priv ÷ plain {c['ratio']:.3f}, cost {c['cost']:.1%}")
        if "fill" in res:
            f = res["fill"]
            rate = f"{f['events_per_s']:,.0f} ev/s"
            console.print(f"{backend} fill: {f['events']:,} events in {f['seconds']:.0f} s"
                          f" ({rate}); priv holds {f['tenant_events']:,}")  # fmt: skip
        if "reads" in res:
            keys = ("p50_ms", "p95_ms", "p99_ms", "p50_minus_stored_ms", "p95_minus_stored_ms")
            rows = [[name, *(fmt_ms(s.get(k, math.nan)) for k in keys)]
                    for name, s in res["reads"].items()]  # fmt: skip
            cols = ["series", "p50 ms", "p95 ms", "p99 ms", "p50 - stored", "p95 - stored"]
            console.print(table(f"{backend}: GET /v1/events?limit={PAGE}", cols, rows))
    console.print(table("issue 15 targets", ["target", "goal", "measured", ""], targets(run)))
    ok = sum(c["ok"] for c in run.checks)
    console.print(f"{ok}/{len(run.checks)} checks passed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    add("--full", default="sqlite", help="backends that also get fill, reads and erase")
    add("--pg-url", default="postgresql://postgres@127.0.0.1:5432/trailkeep_bench_privacy")
    add("--phase-events", type=int, default=40_000, help="events per ingest phase")
    add("--rounds", type=int, default=2, help="pairs of ingest phases (plain + priv)")
    add("--clients", type=int, default=16, help="connections of the ingest phases")
    add("--secret-share", type=float, default=0.03, help="events with a card or a token")
    add("--fill-clients", type=int, default=6, help="connections of the fill")
    add("--erase-subjects", type=int, default=3)
    add("--erase-events", type=int, default=100_000, help="events per erased subject")
    add("--read-events", type=int, default=1_000_000, help="events of priv for the reads")
    add("--fill-max-seconds", type=float, default=540.0, help="the fill stops after this")
    add("--reads", type=int, default=300, help="requests per read series")
    add("--deep-pages", type=int, default=100, help="pages of 50 before the deep page")
    add("--action", default="user.login", help="the action of the q=action: reads")
    add("--seed", type=int, default=7)
    add("--keep", action="store_true", help="keep the temp dir and the PostgreSQL database")
    add("--json", action="store_true", help="print the JSON summary on stdout")
    add("--out", type=Path, default=None, help="write the JSON summary here")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.full = [b.strip() for b in args.full.split(",") if b.strip()]
    if not {*args.backends, *args.full} <= {"sqlite", "postgresql"}:
        p.error("the backends are sqlite and postgresql")
    if args.erase_events % FILL_BATCH or args.phase_events % BATCH or args.rounds < 1:
        p.error(f"--erase-events must be a multiple of {FILL_BATCH}, --phase-events of {BATCH}")
    return args


def source_version() -> str:
    git = ["git", "-C", str(Path(__file__).parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() + (" (src modified)" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args, Path(tempfile.mkdtemp(prefix="trailkeep-privacy-")))
    began, version = time.perf_counter(), source_version()
    load_avg = os.getloadavg()
    say(f"data directory: {run.root}; source {version}; load average {load_avg}")
    try:
        for backend in args.backends:
            run_backend(run, backend)
    finally:
        if args.keep:
            say(f"kept {run.root}")
        else:
            remove_tree(run.root)
    render(run, args.json)
    wall = round(time.perf_counter() - began, 1)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    summary = {"machine": machine_info(), "source": version, "load_average_at_start": load_avg,
               "options": options, "wall_s": wall,
               "results": run.results, "targets": targets(run), "checks": run.checks}  # fmt: skip
    emit_json(summary, args.json, args.out)
    say(f"wall time {wall:.0f} s")
    return 0 if all(c["ok"] for c in run.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
