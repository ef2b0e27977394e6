"""The load generator of bench/ingest.py: virtual clients cycling through request pools.

Each virtual client is one keep-alive connection (bench/common.py's ``Connection``)
sending one request at a time; a phase runs in this process or is split over a few
worker processes, and each process's ``Tally`` is merged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from common import Connection, HttpError, latency_summary, run_async

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
    # LoadSpec.timeline: (perf_counter when done, events, latency s) of each 2xx answer,
    # and the perf_counter the measurement started at (CLOCK_MONOTONIC on Linux: the
    # same clock in every process).
    timeline: list[tuple[float, int, float]] = field(default_factory=list)
    measure_from: float = math.inf

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
        self.timeline.extend(other.timeline)
        self.measure_from = min(self.measure_from, other.measure_from)


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One phase: every virtual client cycles through its own pool of request bytes."""

    port: int
    mode: str
    pools: list[list[bytes]]  # one pool per virtual client (= per connection)
    warmup_s: float
    duration_s: float
    max_requests: int | None = None  # per client; None = run for duration_s
    timeline: bool = False  # keep every answer's time (Tally.timeline)


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
            if spec.timeline:
                tally.timeline.append((done, events, done - began))
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
    tally.measure_from = measure_from
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
                dataclasses.replace(spec, pools=share),
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
