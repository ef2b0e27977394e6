"""Shared helpers of the benchmark scripts (bench/ingest.py, bench/query.py).

- a minimal HTTP/1.1 keep-alive client over asyncio streams, cheap enough that a load
  generator on a 2-core machine is not the bottleneck;
- starting and stopping a real ``trailkeep serve`` process, and the CLI calls that
  create tenants and keys;
- a generator of realistic events (client bodies and stored rows);
- what a benchmark needs of its database (``Database``): bench/sqlite_load.py (the
  default) loads stored rows straight into SQLite with the service's own schema and
  INSERT statements, bench/pg_load.py (``--database-url postgresql://...``) COPYs them
  into PostgreSQL with the service's own COPY code.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import concurrent.futures
import contextlib
import itertools
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson
from rich.console import Console

from trailkeep.config import Settings
from trailkeep.events.schema import SEVERITY_RANK
from trailkeep.kit.hashing import digest16
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us
from trailkeep.store.urls import DatabaseUrlError, parse_database_url

HOST = "127.0.0.1"
T = TypeVar("T")
EventRowT = tuple[Any, ...]
TargetRowT = tuple[str, int, str, str, int]
# One transaction's worth of rows for a raw (no service) write.
Txn = tuple[list[EventRowT], list[TargetRowT]]
DAY_US = 86_400 * 1_000_000

# Wide enough for the result tables when the output is a file or a pipe.
WIDTH = shutil.get_terminal_size((160, 40)).columns
progress = Console(stderr=True, highlight=False, width=WIDTH)


def result_console(to_stderr: bool) -> Console:
    """Where the result tables go: stdout, or stderr when stdout carries --json."""
    return Console(stderr=to_stderr, width=WIDTH)


# -- small utilities ---------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(latencies: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of latencies given in seconds."""
    ordered = sorted(latencies)
    if not ordered:
        return {
            "p50_ms": math.nan,
            "p95_ms": math.nan,
            "p99_ms": math.nan,
            "max_ms": math.nan,
            "mean_ms": math.nan,
        }
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p95_ms": percentile(ordered, 95) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": sum(ordered) / len(ordered) * 1000,
    }


def fmt_ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def fmt_int(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def add_output_args(p: argparse.ArgumentParser) -> None:
    """Flags every benchmark script takes: database, seed, JSON output."""
    p.add_argument(
        "--database-url",
        default=None,
        help="'sqlite' (the default) or postgresql://USER@HOST:PORT/trailkeep_bench...: a "
        "database the benchmark drops and re-creates (its name must start with "
        "trailkeep_bench)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")


def check_database_url(url: str | None) -> str | None:
    """The PostgreSQL URL given with --database-url, or None for SQLite (the default)."""
    if url is None or url in ("sqlite", "sqlite:", "sqlite://"):
        return None
    if url.split(":", 1)[0] == "sqlite":
        raise SystemExit(
            "error: the benchmark creates and places its own SQLite files; use --data-dir "
            "(bench/ingest.py) or --db (bench/query.py) instead of --database-url sqlite:///PATH"
        )
    try:
        return parse_database_url(url).libpq
    except DatabaseUrlError as exc:
        raise SystemExit(f"error: --database-url: {exc}") from None


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": sys.platform,
    }


def emit_json(value: Any, to_stdout: bool, out: Path | None) -> None:
    """--json prints the summary on stdout; --out FILE writes it to a file."""
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    if to_stdout:
        sys.stdout.write(data.decode() + "\n")
        sys.stdout.flush()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data + b"\n")
        progress.print(f"summary written to {out}")


# -- minimal HTTP/1.1 client -------------------------------------------------------------


class HttpError(RuntimeError):
    """The connection broke or the server answered something this client cannot parse."""


def build_request(
    method: str, path: str, port: int, token: str | None, body: bytes | None = None
) -> bytes:
    """The full request bytes, built once and sent as they are."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body is not None else head


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.closed = True
            raise HttpError(f"connection closed while reading the response head: {exc}") from exc
        if not head.startswith(b"HTTP/1.1 "):
            self.closed = True
            raise HttpError(f"not an HTTP/1.1 response: {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        if b"\r\nconnection: close" in lower:
            self.closed = True
        start = lower.find(b"\r\ncontent-length:")
        if start >= 0:
            end = lower.index(b"\r\n", start + 2)
            length = int(lower[start + 17 : end])
            body = await self.reader.readexactly(length) if length else b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._read_chunked()
        else:
            self.closed = True
            raise HttpError("response has neither Content-Length nor chunked encoding")
        return status, body

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        self.closed = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def run_async(coro: Any) -> Any:
    """asyncio.run on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def http_get_json(port: int, path: str, token: str | None = None, timeout: float = 30.0) -> Any:
    """A one-off blocking GET (set-up and checks only, never in a measured loop)."""
    req = urllib.request.Request(f"http://{HOST}:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return orjson.loads(resp.read())


# -- load generation ---------------------------------------------------------------------

# How the acknowledged events of one 2xx response are counted, by mode.
MODES = ("batch", "single", "validate")


def _created_in(mode: str, status: int, body: bytes) -> int:
    if mode == "batch":
        # json_response keeps insertion order: the body starts with {"created":N,
        if body.startswith(b'{"created":'):
            return int(body[11 : body.index(b",", 11)])
        created: int = orjson.loads(body)["created"]
        return created
    if mode == "single":
        return 1 if status == 201 else 0
    return 0  # validate stores nothing


@dataclass(slots=True)
class Tally:
    """What one load-generating process saw. Latencies are of measured requests only."""

    latencies: list[float] = field(default_factory=list)
    measured_requests: int = 0
    measured_events: int = 0
    sent_requests: int = 0
    ok_requests: int = 0
    acked_events: int = 0
    non_2xx: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    window_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def merge(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.measured_requests += other.measured_requests
        self.measured_events += other.measured_events
        self.sent_requests += other.sent_requests
        self.ok_requests += other.ok_requests
        self.acked_events += other.acked_events
        for code, n in other.non_2xx.items():
            self.non_2xx[code] = self.non_2xx.get(code, 0) + n
        self.errors += other.errors
        self.error_samples.extend(other.error_samples[: 5 - len(self.error_samples)])
        self.window_s = max(self.window_s, other.window_s)
        self.cpu_s += other.cpu_s
        self.wall_s = max(self.wall_s, other.wall_s)


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One phase: every virtual client cycles through its own pool of request bytes."""

    port: int
    mode: str
    pools: list[list[bytes]]  # one pool per virtual client (= per connection)
    warmup_s: float
    duration_s: float
    max_requests: int | None = None  # per client; None = run for duration_s


def _note_failure(tally: Tally, status: int, body: bytes) -> None:
    tally.non_2xx[status] = tally.non_2xx.get(status, 0) + 1
    if len(tally.error_samples) < 5:
        tally.error_samples.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")


async def _client(
    spec: LoadSpec, pool: list[bytes], tally: Tally, start: float, measure_from: float
) -> None:
    deadline = measure_from + spec.duration_s
    conn = await Connection.open(spec.port)
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cycle = itertools.cycle(pool)
    sent = 0
    try:
        while time.perf_counter() < deadline:
            if spec.max_requests is not None and sent >= spec.max_requests:
                break
            raw = next(cycle)
            sent += 1
            tally.sent_requests += 1
            began = time.perf_counter()
            try:
                if conn.closed:
                    await conn.close()
                    conn = await Connection.open(spec.port)
                status, body = await conn.request(raw)
            except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
                tally.errors += 1
                if len(tally.error_samples) < 5:
                    tally.error_samples.append(repr(exc))
                conn.closed = True
                await asyncio.sleep(0.05)  # do not spin on a server that went away
                continue
            done = time.perf_counter()
            if not 200 <= status < 300:
                _note_failure(tally, status, body)
                continue
            events = _created_in(spec.mode, status, body)
            tally.ok_requests += 1
            tally.acked_events += events
            if measure_from <= done <= deadline:
                tally.latencies.append(done - began)
                tally.measured_requests += 1
                tally.measured_events += events
    finally:
        await conn.close()


async def _drive(spec: LoadSpec, start_wall: float | None) -> Tally:
    tally = Tally()
    # Connections are opened before the start line so that set-up is not measured.
    lead = 0.3 if start_wall is None else max(0.0, start_wall - time.time())
    start = time.perf_counter() + lead
    measure_from = start + spec.warmup_s
    cpu0 = time.process_time()
    await asyncio.gather(*(_client(spec, pool, tally, start, measure_from) for pool in spec.pools))
    tally.wall_s = time.perf_counter() - start
    tally.cpu_s = time.process_time() - cpu0
    tally.window_s = min(spec.duration_s, time.perf_counter() - measure_from)
    return tally


def _drive_in_process(spec: LoadSpec, start_wall: float) -> Tally:
    result: Tally = run_async(_drive(spec, start_wall))
    return result


def run_load(spec: LoadSpec, processes: int = 1) -> Tally:
    """Run one phase, in this process or split over ``processes`` worker processes."""
    if processes <= 1:
        result: Tally = run_async(_drive(spec, None))
        return result
    shares = [spec.pools[i::processes] for i in range(processes)]
    start_wall = time.time() + 2.0  # leaves time to spawn the workers and connect
    ctx = multiprocessing.get_context("spawn")
    total = Tally()
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                _drive_in_process,
                LoadSpec(
                    spec.port, spec.mode, share, spec.warmup_s, spec.duration_s, spec.max_requests
                ),
                start_wall,
            )
            for share in shares
            if share
        ]
        for fut in futures:
            total.merge(fut.result())
    return total


def summarize_tally(tally: Tally, events_per_request: int) -> dict[str, Any]:
    window = tally.window_s or math.nan
    return {
        "requests": tally.measured_requests,
        "events": tally.measured_events,
        "window_s": round(tally.window_s, 3),
        "requests_per_s": tally.measured_requests / window,
        "events_per_s": tally.measured_events / window if events_per_request else 0.0,
        **latency_summary(tally.latencies),
        "sent_requests": tally.sent_requests,
        "ok_requests": tally.ok_requests,
        "acked_events": tally.acked_events,
        "non_2xx": {str(k): v for k, v in sorted(tally.non_2xx.items())},
        "non_2xx_total": sum(tally.non_2xx.values()),
        "connection_errors": tally.errors,
        "error_samples": tally.error_samples,
        "client_cpu_pct": 100.0 * tally.cpu_s / tally.wall_s if tally.wall_s else math.nan,
    }


# -- the server and the CLI ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def trailkeep_command() -> list[str]:
    """The installed ``trailkeep`` entry point next to this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("trailkeep")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "trailkeep.cli"]


def cli_json(db: Database, *args: str) -> Any:
    """Run ``trailkeep ARGS --json --database-url URL`` and parse its output."""
    cmd = [*trailkeep_command(), *args, "--json", "--database-url", db.url]
    env = {**os.environ, **db.env()}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[1:3])} failed: {proc.stderr.strip()}")
    return orjson.loads(proc.stdout)


def create_tenants(db: Database, tenant_ids: Sequence[str]) -> None:
    """``trailkeep tenant create`` for each, in a migrated database (see Database.recreate)."""
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda t: cli_json(db, "tenant", "create", t), tenant_ids))


def create_keys(db: Database, tenant_ids: Sequence[str], role: str) -> dict[str, str]:
    """One ``trailkeep key create --role ROLE --tenant T`` per tenant: tenant -> token."""

    def one(tenant: str) -> tuple[str, str]:
        out = cli_json(
            db, "key", "create", "--role", role, "--tenant", tenant, "--name", f"bench {role}"
        )
        return tenant, str(out["token"])

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return dict(pool.map(one, tenant_ids))


def _proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


@dataclass
class Server:
    """A real ``trailkeep serve`` process on a free loopback port."""

    db: Database
    log_path: Path  # its directory is also the server's TRAILKEEP_DATA_DIR
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "TRAILKEEP_BENCH_ENDPOINTS": "true",
            "TRAILKEEP_ACCESS_LOG": "false",
            "TRAILKEEP_LOG_LEVEL": "WARNING",
            "TRAILKEEP_DATA_DIR": str(self.log_path.parent),
            **self.db.env(),
            **self.extra_env,
        }
        cmd = [
            *trailkeep_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--database-url",
            self.db.url,
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise SystemExit(f"error: the server exited at start-up:\n{tail}")
            try:
                http_get_json(self.port, "/readyz", timeout=1.0)
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"error: the server was not ready within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        return math.nan if self.proc is None else _proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- realistic events --------------------------------------------------------------------


class Weighted(Generic[T]):
    """Picks items with the given relative weights (cumulative table + bisect)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]

    def share(self, predicate: Callable[[T], bool]) -> float:
        """The expected fraction of picks satisfying ``predicate``."""
        prev = 0.0
        hit = 0.0
        for item, cum in zip(self.items, self.cum, strict=True):
            if predicate(item):
                hit += cum - prev
            prev = cum
        return hit / self.total


# 50 actions in 7 prefixes, with relative frequencies.
ACTIONS: tuple[tuple[str, float], ...] = (
    ("user.login", 20),
    ("user.logout", 8),
    ("user.login_failed", 4),
    ("user.password_reset", 1),
    ("user.mfa_enabled", 0.5),
    ("user.mfa_disabled", 0.2),
    ("user.created", 1),
    ("user.updated", 2),
    ("user.deleted", 0.3),
    ("user.invited", 1),
    ("user.role_changed", 0.5),
    ("user.session_revoked", 0.5),
    ("document.viewed", 15),
    ("document.created", 4),
    ("document.updated", 8),
    ("document.deleted", 1),
    ("document.shared", 2),
    ("document.unshared", 0.5),
    ("document.exported", 1),
    ("document.downloaded", 3),
    ("document.renamed", 1),
    ("document.moved", 1),
    ("project.created", 1),
    ("project.updated", 2),
    ("project.archived", 0.3),
    ("project.deleted", 0.2),
    ("project.member_added", 1),
    ("project.member_removed", 0.5),
    ("project.settings_changed", 0.5),
    ("project.viewed", 4),
    ("billing.invoice_created", 0.5),
    ("billing.invoice_paid", 0.5),
    ("billing.payment_failed", 0.1),
    ("billing.plan_changed", 0.2),
    ("billing.card_updated", 0.2),
    ("billing.refund_issued", 0.05),
    ("api_key.created", 0.3),
    ("api_key.revoked", 0.2),
    ("api_key.used", 5),
    ("api_key.rotated", 0.1),
    ("api_key.scopes_changed", 0.1),
    ("org.settings_updated", 0.3),
    ("org.sso_configured", 0.05),
    ("org.domain_verified", 0.05),
    ("org.member_invited", 0.5),
    ("org.member_removed", 0.2),
    ("role.created", 0.1),
    ("role.updated", 0.2),
    ("role.deleted", 0.05),
    ("role.assigned", 0.5),
)
# prefix -> (target type, pool size, id prefix, named?) and an optional second target.
TARGETS: dict[str, tuple[tuple[str, int, str, bool], tuple[str, int, str, bool], float]] = {
    "user": (("user", 5_000, "usr", False), ("organization", 1, "org", True), 0.2),
    "document": (("document", 50_000, "doc", True), ("folder", 2_000, "fld", True), 0.5),
    "project": (("project", 500, "prj", True), ("user", 5_000, "usr", False), 0.3),
    "billing": (("invoice", 20_000, "inv", False), ("subscription", 1_000, "sub", False), 0.5),
    "api_key": (("api_key", 2_000, "key", True), ("project", 500, "prj", True), 0.3),
    "org": (("organization", 1, "org", True), ("user", 5_000, "usr", False), 0.5),
    "role": (("role", 50, "rol", True), ("user", 5_000, "usr", False), 0.6),
}
SEVERITIES: tuple[tuple[str, float], ...] = (
    ("DEBUG", 3),
    ("INFO", 75),
    ("NOTICE", 8),
    ("WARNING", 7),
    ("ERROR", 5),
    ("CRITICAL", 2),
)
FAILURE_RATE = 0.05
ACTOR_COUNT = 5_000
SERVICE_ACTORS = 100
FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Dennis",
    "Margaret",
    "John",
    "Radia",
    "Tim",
    "Vint",
    "Leslie",
    "Niklaus",
    "Shafi",
    "Whitfield",
    "Adele",
    "Jean",
    "Lynn",
    "Butler",
    "Fran",
    "Robin",
    "Silvio",
    "Sophie",
    "Yukihiro",
    "Guido",
    "Bjarne",
    "Anders",
    "Hedy",
    "Katherine",
    "Mary",
    "Dorothy",
    "Kathleen",
)
LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Cerf",
    "Lamport",
    "Wirth",
    "Goldwasser",
    "Diffie",
    "Goldberg",
    "Sammet",
    "Conway",
    "Lampson",
    "Milner",
    "Micali",
    "Wilson",
    "Matsumoto",
    "van Rossum",
    "Stroustrup",
    "Hejlsberg",
    "Lamarr",
    "Johnson",
)
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Firefox/127.0",
    "acme-sdk-python/2.4.1 (CPython 3.12; linux)",
    "Terraform/1.8.5 acme-provider/0.19.0",
)
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2")


def fast_uuid7(ms: int, rnd: int) -> str:
    """A UUIDv7 for a given millisecond (same layout as trailkeep.kit.ids.uuid7)."""
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rnd >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rnd & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECONDS: dict[int, str] = {}


def rfc3339_us(us: int) -> str:
    """Same text as trailkeep.kit.timeutil.format_us, with the seconds part cached."""
    sec, frac = divmod(us, 1_000_000)
    head = _SECONDS.get(sec)
    if head is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        head = _SECONDS[sec] = format_us(sec * 1_000_000)[:19]
    return f"{head}.{frac:06d}Z"


@dataclass(frozen=True, slots=True)
class Actor:
    doc: dict[str, str]  # the stored/sent "actor" object
    id: str
    type: str


def make_actors(rng: random.Random, count: int = ACTOR_COUNT) -> list[Actor]:
    actors = []
    for i in range(count):
        if i >= count - SERVICE_ACTORS:
            ident = f"svc_{i:05d}"
            doc = {"id": ident, "type": "service", "name": f"integration-{i % 37}"}
        else:
            ident = f"usr_{i:05d}"
            first, last = rng.choice(FIRST), rng.choice(LAST)
            doc = {"id": ident, "type": "user", "name": f"{first} {last}"}
            if i % 2:  # half the users are known by e-mail too
                doc["email"] = f"{first[0]}{last}{i}@example.com".lower().replace(" ", "")
        actors.append(Actor(doc, ident, doc["type"]))
    return actors


class EventFactory:
    """Deterministic (seeded) realistic events: the same seed gives the same pools."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.actors = make_actors(random.Random(seed + 1))
        # Mildly skewed: the busiest actors produce ~10x the events of the quietest.
        weights = [1.0 / (1 + i / 500) for i in range(len(self.actors))]
        self.actor_pick = Weighted(self.actors, weights)
        self.action_pick = Weighted([a for a, _ in ACTIONS], [w for _, w in ACTIONS])
        self.severity_pick = Weighted([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])
        self.ips = [f"203.0.113.{i}" for i in range(1, 255)] + ["2001:db8::7"]

    # -- shares, for choosing filters that reach deep pages ---------------------------
    def action_share(self, predicate: Callable[[str], bool]) -> float:
        return self.action_pick.share(predicate)

    def severity_share(self, min_rank: int) -> float:
        return self.severity_pick.share(lambda s: SEVERITY_RANK[s] >= min_rank)

    # -- building one event ------------------------------------------------------------
    def _target(self, spec: tuple[str, int, str, bool]) -> dict[str, str]:
        kind, pool, prefix, named = spec
        n = self.rng.randrange(pool)
        target = {"type": kind, "id": f"{prefix}_{n:06d}"}
        if named:
            target["name"] = f"{kind.replace('_', ' ').title()} {n}"
        return target

    def fields(self) -> dict[str, Any]:
        """The client-supplied part of an event (no id, no times)."""
        rng = self.rng
        action = self.action_pick.pick(rng)
        prefix, verb = action.split(".", 1)
        actor = self.actor_pick.pick(rng)
        first, second, second_p = TARGETS[prefix]
        targets = [self._target(first)]
        if rng.random() < second_p:
            targets.append(self._target(second))
        failed = rng.random() < FAILURE_RATE
        subject = targets[0].get("name", targets[0]["id"])
        out: dict[str, Any] = {
            "action": action,
            "actor": actor.doc,
            "targets": targets,
            "outcome": "failure" if failed else "success",
            "severity": self.severity_pick.pick(rng),
            "message": f"{verb.replace('_', ' ')} {subject}" + (" (denied)" if failed else ""),
            "context": {
                "ip_address": rng.choice(self.ips),
                "user_agent": rng.choice(AGENTS),
                "request_id": f"req_{rng.getrandbits(48):012x}",
            },
            "metadata": {"region": rng.choice(REGIONS)},
        }
        if actor.type == "user" and rng.random() < 0.25:
            out["context"]["session_id"] = f"ses_{rng.getrandbits(40):010x}"
        if verb in ("updated", "renamed", "settings_changed", "plan_changed"):
            out["changes"] = {
                "before": {"title": f"Draft {rng.randrange(1000)}"},
                "after": {"title": f"Final {rng.randrange(1000)}"},
            }
        return out

    def client_event(self, occurred_us: int) -> dict[str, Any]:
        """What an integrator POSTs (the server assigns the id)."""
        return {**self.fields(), "occurred_at": rfc3339_us(occurred_us)}

    def stored_row(
        self, tenant_id: str, seq: int, occurred_us: int, received_us: int
    ) -> tuple[EventRowT, list[TargetRowT]]:
        """A row exactly as event_writes.write_events would store it."""
        sent = self.client_event(occurred_us)
        request_hash = digest16(dumps_sorted(sent))
        event_id = fast_uuid7(received_us // 1000, self.rng.getrandbits(74))
        doc = {
            **sent,
            "id": event_id,
            "tenant_id": tenant_id,
            "seq": seq,
            "received_at": rfc3339_us(received_us),
        }
        actor = sent["actor"]
        row = (
            tenant_id,
            seq,
            event_id,
            occurred_us,
            received_us,
            sent["action"],
            actor["id"],
            actor["type"],
            SEVERITY_RANK[sent["severity"]],
            sent["outcome"],
            request_hash,
            dumps_sorted(doc),
        )
        seen: dict[tuple[str, str], None] = dict.fromkeys(
            (t["type"], t["id"]) for t in sent["targets"]
        )
        targets = [(tenant_id, seq, kind, ident, occurred_us) for kind, ident in seen]
        return row, targets


# -- bulk loading --------------------------------------------------------------------------


@dataclass
class LoadPlan:
    """How many events each tenant gets, interleaved over one timeline ending at ``end_us``."""

    counts: dict[str, int]
    end_us: int
    span_us: int = 90 * DAY_US
    seed: int = 7

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _interleave(plan: LoadPlan) -> list[int]:
    """Tenant index of each global position: exact counts, shuffled (seeded)."""
    order = [i for i, n in enumerate(plan.counts.values()) for _ in range(n)]
    random.Random(plan.seed).shuffle(order)
    return order


def generate_rows(
    plan: LoadPlan, factory: EventFactory, next_seq: dict[str, int], chunk: int = 20_000
) -> Iterator[tuple[list[EventRowT], list[TargetRowT]]]:
    """Rows in chunks, in time order (as they would have arrived), tenants interleaved."""
    tenants = list(plan.counts)
    order = _interleave(plan)
    start = plan.end_us - plan.span_us
    step = plan.span_us / max(1, len(order))
    rng = factory.rng
    events: list[EventRowT] = []
    targets: list[TargetRowT] = []
    for i, t_index in enumerate(order):
        tenant = tenants[t_index]
        seq = next_seq[tenant]
        next_seq[tenant] = seq + 1
        received = start + int(i * step)
        occurred = received - rng.randrange(5_000_000)  # clients report a few s late
        row, trows = factory.stored_row(tenant, seq, occurred, received)
        events.append(row)
        targets.extend(trows)
        if len(events) >= chunk:
            yield events, targets
            events, targets = [], []
    if events:
        yield events, targets


class LoadProgress:
    """Counts the events of a bulk load and says how far it got, every 5 s and at the end."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.began = time.perf_counter()
        self._last_report = self.began

    def advance(self, events: int) -> None:
        self.done += events
        now = time.perf_counter()
        if now - self._last_report >= 5 or self.done == self.total:
            rate = self.done / (now - self.began)
            eta = (self.total - self.done) / rate if rate else 0
            progress.print(
                f"  {self.label}: {self.done:,}/{self.total:,} events "
                f"({rate:,.0f}/s, ~{eta:,.0f} s left)"
            )
            self._last_report = now

    def stats(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.began
        return {
            "events": self.done,
            "seconds": round(elapsed, 2),
            "events_per_s": self.done / elapsed,
        }


def timed_transactions(
    txns: Sequence[Txn], limit_s: float, write: Callable[[list[EventRowT], list[TargetRowT]], None]
) -> dict[str, Any]:
    """Run ``write`` (one transaction) per entry until done or ``limit_s`` passed: rows/s."""
    latencies: list[float] = []
    rows = 0
    began = time.perf_counter()
    deadline = began + limit_s
    for events, targets in txns:
        t0 = time.perf_counter()
        write(events, targets)
        done = time.perf_counter()
        latencies.append(done - t0)
        rows += len(events)
        if done >= deadline:
            break
    elapsed = time.perf_counter() - began
    return {
        "rows": rows,
        "transactions": len(latencies),
        "seconds": round(elapsed, 3),
        "rows_per_s": rows / elapsed,
        **latency_summary(latencies),
    }


class Database(Protocol):
    """Where a benchmark's events live: SqliteDatabase (sqlite_load.py, the default) or
    PgDatabase (pg_load.py, ``--database-url postgresql://...``)."""

    @property
    def kind(self) -> str:
        """'SQLite' or 'PostgreSQL', for messages."""

    @property
    def url(self) -> str:
        """The --database-url of the server and of the CLI."""

    @property
    def label(self) -> str:
        """The file, or the URL without its password, for messages."""

    @property
    def raw_write(self) -> str:
        """How the raw baseline writes its rows: 'INSERT' or 'COPY'."""

    @property
    def raw_settings(self) -> str:
        """The durability the raw baseline writes with, for the report."""

    def env(self) -> dict[str, str]:
        """Environment of the server and CLI processes, besides --database-url."""

    def exists(self) -> bool: ...

    def recreate(self) -> None:
        """A new, migrated, empty database in this place; whatever was there is dropped."""

    def fresh_copy(self, work_dir: Path) -> Database:
        """A database with this one's tenants and keys and no events.

        SQLite copies this file (a template without events) into ``work_dir``;
        PostgreSQL has the one database, so it empties this one of events.
        """

    def bulk_load(self, plan: LoadPlan, factory: EventFactory, label: str) -> dict[str, Any]:
        """Store the events of ``plan`` straight into the database (no server), fast."""

    def write_transactions(self, txns: Sequence[Txn], limit_s: float) -> dict[str, Any]:
        """The raw baseline: each of ``txns`` as one durable transaction, timed."""

    def count_events(self) -> int: ...

    def next_seqs(self, tenant_ids: Iterable[str]) -> dict[str, int]: ...

    def gapless_problems(self) -> list[str]:
        """Tenants whose stored seqs are not exactly 0..count-1."""

    def describe(self) -> dict[str, Any]:
        """The backend and its durability settings, for the JSON summary."""

    def read_meta(self) -> dict[str, Any] | None:
        """What write_meta stored (None when nothing was)."""

    def write_meta(self, meta: dict[str, Any]) -> None: ...


def service_settings() -> Settings:
    """The settings the server runs with (defaults plus the TRAILKEEP_ environment)."""
    return Settings()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
