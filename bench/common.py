"""Shared helpers of the benchmark scripts (bench/ingest.py, bench/query.py, bench/proofs.py).

- a minimal HTTP/1.1 keep-alive client over asyncio streams, cheap enough that a load
  generator on a 2-core machine is not the bottleneck;
- starting and stopping a real ``trailkeep serve`` process (with a checkpoint signing
  key of the run's own), and the CLI calls that create tenants and keys;
- what a benchmark needs of its database (``Database``): bench/sqlite_load.py (the
  default) loads stored rows straight into SQLite with the service's own schema and
  INSERT statements, bench/pg_load.py (``--database-url postgresql://...``) COPYs them
  into PostgreSQL with the service's own COPY code; both also store each tenant's
  Merkle tiles (bench/trees.py), so that the service's writer can append to them.

Realistic events and load plans are in bench/workload.py.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import functools
import math
import os
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
from typing import Any, Protocol, TypeVar

import orjson
from rich.console import Console

from rowgen import LoadPlan
from trailkeep.config import Settings
from trailkeep.integrity.note import generate_signer
from trailkeep.privacy.key_provider import new_master_key_text
from trailkeep.store.urls import DatabaseUrlError, parse_database_url
from workload import EventFactory, EventRowT, TargetRowT, Txn

T = TypeVar("T")
HOST = "127.0.0.1"
# The log host the benchmarks' signing key is named after (origins "bench.local/t/T").
LOG_HOST = "bench.local"

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
            "(bench/ingest.py) or --db (bench/query.py, bench/proofs.py) instead of --database-url "
            "sqlite:///PATH"
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
        status, _, body = await self.request_with_head(raw)
        return status, body

    async def request_with_head(self, raw: bytes) -> tuple[int, bytes, bytes]:
        """Status, the response head (status line and headers) and the body."""
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
        return status, head, body

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


def create_admin_key(db: Database) -> str:
    """One platform admin key (``trailkeep key create --role admin``): its token."""
    return str(cli_json(db, "key", "create", "--role", "admin", "--name", "bench admin")["token"])


@functools.cache
def signing_key() -> str:
    """The checkpoint signing key of every server of this run (TRAILKEEP_SIGNING_KEY).

    The one in the environment when there is one, else a fresh key named LOG_HOST,
    made once per run: a benchmark checks the checkpoints its servers sign with it.
    """
    return os.environ.get("TRAILKEEP_SIGNING_KEY") or generate_signer(LOG_HOST)[0]


@functools.cache
def privacy_key() -> str:
    """The privacy master key of every server of this run (TRAILKEEP_PRIVACY_KEY)."""
    return os.environ.get("TRAILKEEP_PRIVACY_KEY") or new_master_key_text()


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
            "TRAILKEEP_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
            "TRAILKEEP_DATA_DIR": str(self.log_path.parent),
            "TRAILKEEP_SIGNING_KEY": signing_key(),
            "TRAILKEEP_PRIVACY_KEY": privacy_key(),
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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

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


class LoadProgress:
    """Counts the events of a bulk load and says how far it got, every 5 s and at the end.

    ``chunks`` wraps the iterator of row chunks so that the time spent waiting for rows
    (made by rowgen's workers, or in this process) is told apart from writing them.
    """

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.began = time.perf_counter()
        self.waited = 0.0
        self._last_report = self.began

    def chunks(self, rows: Iterable[T]) -> Iterator[T]:
        it = iter(rows)
        while True:
            began = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.waited += time.perf_counter() - began
            yield item

    def advance(self, events: int) -> None:
        self.done += events
        now = time.perf_counter()
        if now - self._last_report >= 5 or self.done == self.total:
            elapsed = now - self.began
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate else 0
            progress.print(
                f"  {self.label}: {self.done:,}/{self.total:,} events "
                f"({rate:,.0f}/s, ~{eta:,.0f} s left; {self.waited / elapsed:.0%} of the time "
                "waiting for rows, the rest writing)"
            )
            self._last_report = now

    def stats(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.began
        return {
            "events": self.done,
            "seconds": round(elapsed, 2),
            "events_per_s": self.done / elapsed,
            "waiting_for_rows_s": round(self.waited, 2),
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
        """How the raw baselines write their rows: 'INSERT' or 'COPY'."""

    @property
    def log_tables(self) -> str:
        """The tables of the bare log (the raw bare-log baseline), for the report."""

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

    def write_transactions(
        self, txns: Sequence[Txn], limit_s: float, derived: bool
    ) -> dict[str, Any]:
        """A raw baseline: each of ``txns`` as one durable transaction, timed. Without
        ``derived`` the bare log: the service's insert_log_rows and the rows' Merkle
        tiles (TreeAppender, as the writer appends them); with, insert_stored_rows (the
        log and its derived rows, full text and rollups; no tiles)."""

    def count_events(self) -> int: ...

    def tenant_counts(self) -> dict[str, int]:
        """Stored events per tenant."""

    def derived_problems(self, tenant_ids: Iterable[str]) -> list[str]:
        """trailkeep.store.derived.check.derived_problems of each tenant, and events the
        indexer skipped (log_skips): what differs between the derived data and the log."""

    def next_seqs(self, tenant_ids: Iterable[str]) -> dict[str, int]: ...

    def gapless_problems(self) -> list[str]:
        """Tenants whose stored seqs are not exactly 0..count-1."""

    def tree_problems(self) -> list[str]:
        """Tenants whose stored Merkle tiles are not a tree of exactly their events."""

    def stored_roots(self, tenant_ids: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        """(size, root) of each tenant's tree, recomputed from its stored bodies."""

    def integrity_rows(self) -> tuple[int, int]:
        """Rows in merkle_tiles and in checkpoints."""

    def event_ids(self, tenant_id: str, seqs: Iterable[int]) -> dict[int, str]:
        """The ids of these seqs of the tenant."""

    def tenant_bodies(self, tenant_id: str, batch: int = 10_000) -> Iterator[list[bytes]]:
        """The stored bodies of the tenant's events, in batches, in no particular order."""

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
