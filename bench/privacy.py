"""Privacy benchmark (issue 15): what redaction and sealing cost at ingest, erasure, reads.

Per backend (--backends: SQLite in a temp dir, PostgreSQL in a database of the run's own,
--pg-url, dropped at the end) it creates with the CLI two tenants, ``priv`` (the default
privacy settings) and ``plain`` (``PATCH /v1/tenants/plain`` by a platform admin:
``{"privacy": {"redaction": [], "encrypt": []}}``), writer keys for both and auditor,
reader and tenant_admin keys for ``priv``, starts a real ``trailkeep serve`` and drives
it over loopback with bench/common.py's keep-alive client:

  probe   one batch of 2 events (a card number in the message, a bearer token in
          metadata) into each tenant: priv must name what it redacted and store
          actor.name sealed; plain neither.
  cost    (target 1: ≤ 25%) --phase-events (40,000) realistic events per phase, batches
          of 100, --clients (16) connections, every body sent once per phase, the same
          bodies for both tenants: actors from bench/workload.py's pool of 5,000 ids
          (every user with a name and an email), context.ip_address and user_agent, a
          message, metadata; --secret-share (3%) carry a card number (message) or a
          bearer token (metadata.authorization). Phases alternate tenants in ABBA order
          (plain, priv, priv, plain, ...; --rounds pairs), so that a linear drift (the
          database growing, other work on the machine) cancels; after each phase the
          indexer is waited for, so no phase pays for the one before. ratio = mean priv
          ev/s ÷ mean plain ev/s; cost = 1 - ratio.
  fill    (backends in --full) priv is filled through the API, batches of 1,000,
          --fill-clients (6) connections: first --erase-subjects (3) subjects with
          --erase-events (100,000) events each (one actor id each), then realistic
          events until priv holds --read-events (1,000,000), all sealed. Timed.
  reads   (target 3: p95 ≤ 10 ms) GET /v1/events?limit=50 newest first, the page
          --deep-pages (100) deeper through the cursor, and q=action:--action, each as
          the auditor (decrypts), the auditor with form=stored (the baseline: no
          decryption) and the reader (masked): --reads (300) each, sequential, one
          connection, the 9 series interleaved, after 20 unmeasured rounds.
  erase   (target 2: ≤ 1 s) once the subjects' counts (GET /v1/subjects/ID) say
          --erase-events, POST /v1/subjects/ID/erase with the tenant_admin key, timed
          (wall time of the HTTP call); events_affected must be --erase-events, and the
          subject's events must read "[erased]" for the auditor.

The run prints the tables and, with --json / --out, a JSON summary; exit status 1 when
a check fails. Run it (~12 min on 2 cores at the default sizes):

    .venv/bin/python bench/privacy.py --out bench/results/privacy.json
    .venv/bin/python bench/privacy.py --backends sqlite --phase-events 5000 --rounds 1 \\
        --erase-events 5000 --erase-subjects 1 --read-events 30000 --reads 50   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
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
BATCH, FILL_BATCH = 100, 1_000
READ_WARMUP = 20
QUERIES = ("newest", "deep", "action")
VARIANTS = ("auditor", "stored", "reader")


@dataclass
class Run:
    args: argparse.Namespace
    root: Path
    checks: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        progress.print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}")


class Workload:
    """Realistic client events (bench/workload.py's) with every user's email, and a few
    carrying a secret that the default redaction rules act on."""

    def __init__(self, seed: int, secret_share: float) -> None:
        self.factory = EventFactory(seed)
        self.rng = random.Random(seed + 15)
        self.secret_share = secret_share
        self.now = now_us()

    def event(self) -> dict[str, Any]:
        ev = self.factory.client_event(self.now - int(self.rng.random() * 3_600_000_000))
        actor = dict(ev["actor"])
        if actor["type"] == "user" and "email" not in actor:
            actor["email"] = f"{actor['id'].replace('_', '.')}@example.com"
        ev["actor"] = actor
        roll = self.rng.random()
        if roll < self.secret_share / 2:
            ev["message"] += f" paid with card {CARD}"
        elif roll < self.secret_share:
            ev["metadata"]["authorization"] = f"Bearer {self.rng.getrandbits(160):040x}"
        return ev

    def bodies(self, events: int, size: int, actor: dict[str, str] | None = None) -> list[bytes]:
        out = []
        for _ in range(max(1, events // size)):
            batch = [self.event() for _ in range(size)]
            if actor is not None:
                for ev in batch:
                    ev["actor"] = actor
            out.append(orjson.dumps({"events": batch}))
        return out


# -- load: each request sent once, over N keep-alive connections ---------------------------


@dataclass
class Load:
    events: int = 0
    requests: int = 0
    redacted: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "events_per_s": self.events / self.seconds if self.seconds else 0.0,
            "redacted_events": self.redacted,
            "failures": len(self.failures),
            "failure_samples": self.failures[:3],
            **latency_summary(self.latencies),
        }


async def _drain(port: int, requests: Iterator[bytes], clients: int, label: str) -> Load:
    load = Load()
    conns = [await Connection.open(port) for _ in range(clients)]
    began = time.perf_counter()
    reported = [began]

    async def worker(conn: Connection) -> None:
        for raw in requests:  # shared: every request goes out once, on whichever is free
            t0 = time.perf_counter()
            try:
                status, body = await conn.request(raw)
            except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
                load.failures.append(repr(exc))
                return
            now = time.perf_counter()
            load.latencies.append(now - t0)
            load.requests += 1
            if status != 200 or not body.startswith(b'{"created":'):
                load.failures.append(f"HTTP {status}: {body[:200]!r}")
                continue
            load.events += int(body[11 : body.index(b",", 11)])
            load.redacted += body.count(b'"redacted":')
            if now - reported[0] >= 10:
                reported[0] = now
                rate = load.events / (now - began)
                progress.print(f"    {label}: {load.events:,} events, {rate:,.0f} ev/s")

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    load.seconds = time.perf_counter() - began
    return load


def drain(port: int, requests: Iterator[bytes], clients: int, label: str) -> Load:
    result: Load = run_async(_drain(port, requests, clients, label))
    return result


def batch_requests(port: int, token: str, bodies: list[bytes], count: int) -> Iterator[bytes]:
    for body in itertools.islice(itertools.cycle(bodies), count):
        yield build_request("POST", "/v1/events/batch", port, token, body)


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
    progress.print(f"{db.kind}: tenants {PRIV}, {PLAIN} and their keys (CLI) ...")
    create_tenants(db, [PRIV, PLAIN])
    writers = create_keys(db, [PRIV, PLAIN], "writer")
    tokens = {f"writer-{t}": tok for t, tok in writers.items()}
    for role in ("auditor", "reader", "tenant_admin"):
        tokens[role] = create_keys(db, [PRIV], role)[PRIV]
    tokens["admin"] = create_admin_key(db)
    return tokens


def probe(run: Run, api: Api, label: str) -> None:
    """Privacy off in plain; a card and a bearer token redacted and actor.name sealed in
    priv only."""
    api.json(
        "PATCH", f"/v1/tenants/{PLAIN}", "admin", {"privacy": {"redaction": [], "encrypt": []}}
    )
    shown = api.json("GET", f"/v1/tenants/{PLAIN}", "admin")["privacy"]
    run.check(
        f"{label}: plain has privacy off", shown["encrypt"] == [] == shown["redaction"], str(shown)
    )
    events = [
        {
            "action": "billing.card_updated",
            "actor": {"id": "usr_probe", "name": "Pro Be"},
            "message": f"card {CARD} saved",
        },
        {
            "action": "api_key.used",
            "actor": {"id": "usr_probe", "name": "Pro Be"},
            "metadata": {"authorization": "Bearer abcdefghijklmnop0123456789"},
        },
    ]
    for tenant in (PRIV, PLAIN):
        out = api.json("POST", "/v1/events/batch", f"writer-{tenant}", {"events": events})
        redacted = [item.get("redacted", []) for item in out["results"]]
        query = f"?tenant_id={tenant}&form=stored"
        doc = api.json("GET", f"/v1/events/{out['results'][0]['id']}{query}", "admin")
        sealed = isinstance(doc["actor"]["name"], dict) and "tk_enc" in doc["actor"]["name"]
        ok = (
            (all(redacted) and sealed and CARD not in doc["message"])
            if tenant == PRIV
            else (not any(redacted) and not sealed and CARD in doc["message"])
        )
        run.check(f"{label}: probe into {tenant}", ok, f"redacted {redacted}, sealed {sealed}")


def indexed(api: Api, db: Database) -> float:
    began = time.perf_counter()
    seconds, behind = wait_indexed(api.port, api.tokens["admin"], db.tenant_counts(), began, 600)
    if behind:
        raise SystemExit(f"error: the indexer did not catch up: {behind}")
    return seconds


# -- target 1: cost of redaction + sealing at ingest ----------------------------------------


def cost_phases(run: Run, api: Api, db: Database, label: str, wl: Workload) -> dict[str, Any]:
    args = run.args
    bodies = wl.bodies(args.phase_events, BATCH)
    order = [
        t for r in range(args.rounds) for t in ((PLAIN, PRIV) if r % 2 == 0 else (PRIV, PLAIN))
    ]
    phases: list[dict[str, Any]] = []
    for number, tenant in enumerate(order, 1):
        name = f"{number}:{tenant}"
        progress.print(
            f"  {label} phase {name}: {len(bodies) * BATCH:,} events, {args.clients} clients"
        )
        before = db.tenant_counts().get(tenant, 0)
        token = api.tokens[f"writer-{tenant}"]
        load = drain(
            api.port, batch_requests(api.port, token, bodies, len(bodies)), args.clients, name
        )
        stored = db.tenant_counts().get(tenant, 0) - before
        result = {"phase": name, "tenant": tenant, **load.summary(), "stored": stored}
        result["catch_up_s"] = indexed(api, db)
        phases.append(result)
        sent = len(bodies) * BATCH
        run.check(
            f"{label} {name}: acknowledged == sent == stored",
            not load.failures and load.events == sent == stored,
            f"{load.events:,} acked, {stored:,} stored, {len(load.failures)} failures "
            + "; ".join(load.failures[:1]),
        )
        progress.print(
            f"    {load.events / load.seconds:,.0f} ev/s, redacted {load.redacted:,} events"
        )
    rate = {t: [p["events_per_s"] for p in phases if p["tenant"] == t] for t in (PRIV, PLAIN)}
    ratio = (sum(rate[PRIV]) / len(rate[PRIV])) / (sum(rate[PLAIN]) / len(rate[PLAIN]))
    return {"phases": phases, "order": order, "ratio": ratio, "cost": 1 - ratio}


# -- fill, reads, erasure ------------------------------------------------------------------


def subject_actor(k: int) -> dict[str, str]:
    return {
        "id": f"usr_erase_{k}",
        "type": "user",
        "name": f"Erin Subject{k}",
        "email": f"erin.subject{k}@example.com",
    }


def fill(run: Run, api: Api, db: Database, label: str, wl: Workload) -> dict[str, Any]:
    args = run.args
    token, clients = api.tokens[f"writer-{PRIV}"], args.fill_clients
    began = time.perf_counter()
    parts: dict[str, Any] = {}
    for k in range(args.erase_subjects):
        bodies = wl.bodies(min(args.erase_events, 10 * FILL_BATCH), FILL_BATCH, subject_actor(k))
        reqs = batch_requests(api.port, token, bodies, args.erase_events // FILL_BATCH)
        load = drain(api.port, reqs, clients, f"subject {k}")
        parts[f"subject {k}"] = load.summary()
        ok = not load.failures and load.events == args.erase_events
        run.check(f"{label} fill subject {k}", ok, f"{load.events:,} acked {load.failures[:1]}")
    missing = args.read_events - db.tenant_counts().get(PRIV, 0)
    if missing > 0:
        bodies = wl.bodies(min(missing, 100 * FILL_BATCH), FILL_BATCH)
        count = -(-missing // FILL_BATCH)
        progress.print(f"  {label}: filling {PRIV} with {count * FILL_BATCH:,} more events ...")
        load = drain(api.port, batch_requests(api.port, token, bodies, count), clients, "fill")
        parts["realistic"] = load.summary()
        run.check(f"{label} fill", not load.failures, f"{load.events:,} acked {load.failures[:1]}")
    seconds = time.perf_counter() - began
    catch_up = indexed(api, db)
    total = db.tenant_counts()[PRIV]
    acked = sum(p["events"] for p in parts.values())
    progress.print(f"  {label}: {PRIV} holds {total:,} events; filled in {seconds:.0f} s")
    return {
        "parts": parts,
        "events": acked,
        "seconds": round(seconds, 1),
        "events_per_s": acked / seconds,
        "tenant_events": total,
        "catch_up_s": catch_up,
    }


async def _timed(port: int, series: dict[str, bytes], rounds: int) -> tuple[dict[str, Any], ...]:
    conn = await Connection.open(port)
    lat: dict[str, list[float]] = {name: [] for name in series}
    last: dict[str, tuple[int, bytes]] = {}
    try:
        for i in range(READ_WARMUP + rounds):
            for name, raw in series.items():
                t0 = time.perf_counter()
                status, body = await conn.request(raw)
                if i >= READ_WARMUP:
                    lat[name].append(time.perf_counter() - t0)
                last[name] = (status, body)
    finally:
        await conn.close()
    return lat, last


def reads(run: Run, api: Api, label: str) -> dict[str, Any]:
    args = run.args
    q = urllib.parse.quote(f"action:{args.action}")
    cursor = None
    for _ in range(args.deep_pages):
        suffix = "" if cursor is None else f"&cursor={urllib.parse.quote(cursor)}"
        cursor = api.json("GET", f"/v1/events?limit=50&form=stored{suffix}", "auditor")[
            "next_cursor"
        ]
    paths = {
        "newest": "/v1/events?limit=50",
        "action": f"/v1/events?limit=50&q={q}",
        "deep": f"/v1/events?limit=50&cursor={urllib.parse.quote(str(cursor))}",
    }
    series = {
        f"{query}/{variant}": build_request(
            "GET",
            paths[query] + ("&form=stored" if variant == "stored" else ""),
            api.port,
            api.tokens["reader" if variant == "reader" else "auditor"],
        )
        for query in QUERIES
        for variant in VARIANTS
    }
    progress.print(f"  {label}: {len(series)} read series x {args.reads} (+{READ_WARMUP} warm-up)")
    lat, last = run_async(_timed(api.port, series, args.reads))
    out: dict[str, Any] = {}
    for name, latencies in lat.items():
        status, body = last[name]
        data = orjson.loads(body)["data"] if status == 200 else []
        names = [ev["actor"].get("name") for ev in data]
        variant = name.split("/")[1]
        expect = {
            "stored": lambda v: isinstance(v, dict) and "tk_enc" in v,
            "auditor": lambda v: isinstance(v, str) and "***" not in v and v[:1] != "[",
            "reader": lambda v: isinstance(v, str) and "***" in v,
        }[variant]
        ok = status == 200 and len(data) == 50 and all(expect(v) for v in names)
        run.check(
            f"{label} read {name}", ok, f"HTTP {status}, {len(data)} events, e.g. {names[:1]}"
        )
        out[name] = latency_summary(latencies)
    for query in QUERIES:
        base = out[f"{query}/stored"]
        for variant in ("auditor", "reader"):
            row = out[f"{query}/{variant}"]
            row["p50_minus_stored_ms"] = row["p50_ms"] - base["p50_ms"]
            row["p95_minus_stored_ms"] = row["p95_ms"] - base["p95_ms"]
    return out


def erasures(run: Run, api: Api, label: str) -> list[dict[str, Any]]:
    args = run.args
    out = []
    for k in range(args.erase_subjects):
        subject = subject_actor(k)["id"]
        deadline = time.monotonic() + 300
        while (seen := api.json("GET", f"/v1/subjects/{subject}", "tenant_admin"))[
            "events"
        ] < args.erase_events:
            if time.monotonic() > deadline:
                raise SystemExit(f"error: {subject} counted {seen['events']} events after 300 s")
            time.sleep(0.2)
        began = time.perf_counter()
        resp = api.call("POST", f"/v1/subjects/{subject}/erase", "tenant_admin")
        seconds = time.perf_counter() - began
        answer = resp.json()
        page = api.json(
            "GET", f"/v1/events?limit=5&q={urllib.parse.quote('actor.id:' + subject)}", "auditor"
        )
        shown = [(ev["actor"].get("name"), ev["actor"].get("email")) for ev in page["data"]]
        ok = (
            resp.status_code == 200
            and answer.get("events_affected") == args.erase_events
            and answer.get("keys_erased") == 1
            and len(shown) == 5
            and all(v == ("[erased]", "[erased]") for v in shown)
        )
        run.check(
            f"{label} erase {subject}",
            ok,
            f"HTTP {resp.status_code} in {seconds * 1000:.1f} ms, events_affected "
            f"{answer.get('events_affected')}, read as {shown[:1]}",
        )
        out.append({"subject": subject, "ms": seconds * 1000, "answer": answer})
    return out


# -- one backend -----------------------------------------------------------------------------


def drop_pg(db: PgDatabase) -> None:
    with psycopg.connect(make_conninfo(db.url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name))
        )


def run_backend(run: Run, backend: str) -> None:
    args = run.args
    work = run.root / backend
    db: Database = (
        PgDatabase.from_url(args.pg_url)
        if backend == "postgresql"
        else (SqliteDatabase(work / "trailkeep.db"))
    )
    result: dict[str, Any] = run.results.setdefault(backend, {"database": db.label})
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
        if isinstance(db, PgDatabase) and not args.keep:
            drop_pg(db)


# -- report ----------------------------------------------------------------------------------


def targets(run: Run) -> list[dict[str, Any]]:
    rows = []
    for backend, res in run.results.items():
        if "cost" in res:
            cost = res["cost"]["cost"]
            rows.append(
                {
                    "target": f"{backend}: redaction + sealing cost at ingest",
                    "goal": "≤ 25%",
                    "value": f"{cost:.1%} (ratio {res['cost']['ratio']:.3f})",
                    "met": cost <= 0.25,
                }
            )
        if "erase" in res:
            worst = max(e["ms"] for e in res["erase"])
            rows.append(
                {
                    "target": f"{backend}: erase a subject of {run.args.erase_events:,} events",
                    "goal": "≤ 1 s",
                    "value": f"max {worst:.1f} ms of {len(res['erase'])}",
                    "met": worst <= 1000,
                }
            )
        if "reads" in res:
            size = res["fill"]["tenant_events"]
            for query in QUERIES:
                p95 = res["reads"][f"{query}/auditor"]["p95_ms"]
                rows.append(
                    {
                        "target": f"{backend}: page of 50, {query}, auditor, {size:,} events",
                        "goal": "p95 ≤ 10 ms" + ("" if size >= 1_000_000 else " (at 1M)"),
                        "value": f"{p95:.2f} ms",
                        "met": p95 <= 10 and size >= 1_000_000,
                    }
                )
    return rows


def render(run: Run, to_stderr: bool) -> None:
    console = result_console(to_stderr)
    for backend, res in run.results.items():
        if "cost" in res:
            t = Table(title=f"{backend}: ingest, batches of {BATCH}, {run.args.clients} clients")
            for col in (
                "phase",
                "events",
                "s",
                "ev/s",
                "p50 ms",
                "p99 ms",
                "redacted",
                "indexed after s",
            ):
                t.add_column(col, justify="right")
            for p in res["cost"]["phases"]:
                t.add_row(
                    p["phase"],
                    f"{p['events']:,}",
                    f"{p['seconds']:.1f}",
                    f"{p['events_per_s']:,.0f}",
                    fmt_ms(p["p50_ms"]),
                    fmt_ms(p["p99_ms"]),
                    f"{p['redacted_events']:,}",
                    f"{p['catch_up_s']:.1f}",
                )
            console.print(t)
            console.print(
                f"priv ÷ plain = {res['cost']['ratio']:.3f}, cost {res['cost']['cost']:.1%}"
            )
        if "fill" in res:
            f = res["fill"]
            console.print(
                f"{backend} fill: {f['events']:,} events in {f['seconds']:.0f} s "
                f"({f['events_per_s']:,.0f} ev/s), priv holds {f['tenant_events']:,}"
            )
        if "reads" in res:
            t = Table(
                title=f"{backend}: GET /v1/events?limit=50, {run.args.reads} each, sequential"
            )
            for col in ("series", "p50 ms", "p95 ms", "p99 ms", "p50 - stored", "p95 - stored"):
                t.add_column(col, justify="right")
            for name, s in res["reads"].items():
                t.add_row(
                    name,
                    fmt_ms(s["p50_ms"]),
                    fmt_ms(s["p95_ms"]),
                    fmt_ms(s["p99_ms"]),
                    fmt_ms(s.get("p50_minus_stored_ms", float("nan"))),
                    fmt_ms(s.get("p95_minus_stored_ms", float("nan"))),
                )
            console.print(t)
        if "erase" in res:
            for e in res["erase"]:
                console.print(
                    f"{backend} erase {e['subject']}: {e['ms']:.1f} ms, "
                    f"events_affected {e['answer'].get('events_affected')}"
                )
    t = Table(title="issue 15 targets")
    for col in ("target", "goal", "measured", ""):
        t.add_column(col)
    for row in targets(run):
        t.add_row(row["target"], row["goal"], row["value"], "met" if row["met"] else "NOT met")
    console.print(t)
    failed = [c for c in run.checks if not c["ok"]]
    console.print(f"{len(run.checks) - len(failed)}/{len(run.checks)} checks passed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    p.add_argument("--full", default="sqlite", help="backends that also get fill, reads and erase")
    p.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/trailkeep_bench_privacy"
    )
    p.add_argument("--phase-events", type=int, default=40_000)
    p.add_argument("--rounds", type=int, default=2, help="pairs of phases (plain + priv)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--secret-share", type=float, default=0.03)
    p.add_argument("--fill-clients", type=int, default=6)
    p.add_argument("--erase-subjects", type=int, default=3)
    p.add_argument("--erase-events", type=int, default=100_000)
    p.add_argument("--read-events", type=int, default=1_000_000)
    p.add_argument("--reads", type=int, default=300)
    p.add_argument("--deep-pages", type=int, default=100)
    p.add_argument("--action", default="user.login")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--keep", action="store_true", help="keep the temp dir and the PostgreSQL database"
    )
    p.add_argument("--json", action="store_true", help="print the JSON summary on stdout")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.full = {b.strip() for b in args.full.split(",") if b.strip()}
    if not set(args.backends) <= {"sqlite", "postgresql"} or not args.full <= {
        "sqlite",
        "postgresql",
    }:
        p.error("backends are sqlite and postgresql")
    if args.erase_events % FILL_BATCH or args.phase_events % BATCH or args.rounds < 1:
        p.error(f"--erase-events must be a multiple of {FILL_BATCH}, --phase-events of {BATCH}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args, Path(tempfile.mkdtemp(prefix="trailkeep-privacy-")))
    began = time.perf_counter()
    progress.print(f"data directory: {run.root}")
    try:
        for backend in args.backends:
            run_backend(run, backend)
    finally:
        if args.keep:
            progress.print(f"kept {run.root}")
        else:
            remove_tree(run.root)
    render(run, args.json)
    summary = {
        "machine": machine_info(),
        "args": {k: v if not isinstance(v, set | Path) else str(v) for k, v in vars(args).items()},
        "wall_s": round(time.perf_counter() - began, 1),
        "results": run.results,
        "targets": targets(run),
        "checks": run.checks,
    }
    emit_json(summary, args.json, args.out)
    return 0 if all(c["ok"] for c in run.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
