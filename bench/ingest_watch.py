"""What bench/ingest.py watches besides the load: lag of full text and stats behind
acknowledgement, the server's memory, the indexer's catch-up, and rates per slice.

- ``LagSampler`` (a thread of the bench process with an asyncio loop of its own):
  every ``interval`` seconds it POSTs ONE event to one tenant whose message carries a
  word of its own (``lagprobe`` + 12 random letters) and the word ``lagprobe``, notes
  the time of the acknowledgement and the seq of the reply, then every ``poll`` seconds
  searches until the event is found (``GET /v1/events?q=lagprobe``, newest first, for
  all pending probes at once; each probe it returns is confirmed with
  ``GET /v1/events?q=WORD``), and asks ``GET /v1/stats?group_by=action&q=WORD`` until
  its ``Trailkeep-Indexed-To-Seq`` header is past that seq (every event below it is
  searchable and counted). A sample is the time from the acknowledgement to the answer
  that made both true (an upper bound: a poll round waits for both answers of the
  loaded server). Probes overlap when the lag exceeds the interval.
- ``RssSampler``: the server process's VmRSS (/proc/PID/status) every 0.1 s, its peak,
  and VmHWM (the peak since the process started) at the end.
- ``wait_indexed``: polls ``GET /v1/stats`` per tenant (as the run's platform admin,
  ``tenant_id=``) until ``indexed_to_seq`` equals the tenant's event count.
- ``slices``: the rate and latency of consecutive slices of N acknowledged events of a
  phase, from the load generator's timeline.
"""

from __future__ import annotations

import asyncio
import math
import random
import string
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from common import Connection, HttpError, build_request, http_get_json, latency_summary
from trailkeep.kit.timeutil import now_us
from workload import rfc3339_us

INDEXED_TO_HEADER = "Trailkeep-Indexed-To-Seq"
PROBE_PREFIX = "lagprobe"


# -- lag of full text and stats behind acknowledgement ---------------------------------


def probe_word(rng: random.Random) -> str:
    """Letters only: one token for the tokenizer (kit/fulltext.py) on both backends."""
    return PROBE_PREFIX + "".join(rng.choice(string.ascii_lowercase) for _ in range(12))


@dataclass
class Probe:
    word: str
    seq: int
    event_id: str
    acked_at: float
    found_at: float = math.nan
    indexed_at: float = math.nan


class LagSampler(threading.Thread):
    """Probes of the lag of full text and stats behind acknowledgement (see the module).

    An asyncio loop of its own in this thread: every ``interval`` s a new probe is
    POSTed (on a connection of its own, so a slow acknowledgement under load delays no
    other probe), whatever the probes before it are doing; one poller asks, every
    ``poll`` s, one stats call (its Trailkeep-Indexed-To-Seq header covers every
    pending probe) and one search for the word all probes carry (see _poll_once).
    """

    def __init__(
        self,
        port: int,
        writer_token: str,
        reader_token: str,
        base_event: dict[str, Any],
        start_delay: float,
        interval: float = 0.25,
        poll: float = 0.01,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(name="lag-sampler", daemon=True)
        self.port = port
        self.writer_token = writer_token
        self.reader_token = reader_token
        self.base_event = base_event
        self.start_delay = start_delay
        self.interval = interval
        self.poll = poll
        self.timeout = timeout
        self.rng = random.Random()  # unseeded: every probe word new, run after run
        self.stopping = threading.Event()
        self.lags: list[float] = []  # ack -> found and indexed, seconds
        self.search_lags: list[float] = []  # ack -> found by the word
        self.stats_lags: list[float] = []  # ack -> indexed_to_seq past the seq
        self.acked = 0  # probe events acknowledged (they are stored events too)
        self.timeouts = 0
        self.errors: list[str] = []
        self.requests = 0
        self.seconds = 0.0
        self._pending: list[Probe] = []
        self._posting = 0
        self._conns: dict[str, Connection] = {}  # the poller's, by name

    def run(self) -> None:
        if self.stopping.wait(self.start_delay):
            return
        began = time.perf_counter()
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported as a failed check, not a crash of the run
            self.errors.append(repr(exc))
        self.seconds = time.perf_counter() - began

    def stop(self) -> None:
        """No new probes; those acknowledged (under load) are followed to the end."""
        self.stopping.set()
        self.join()

    # -- the loop ------------------------------------------------------------------
    async def _request(self, conn: Connection, raw: bytes) -> tuple[int, bytes]:
        self.requests += 1
        return await conn.request(raw)

    async def _main(self) -> None:
        poller = asyncio.create_task(self._poller())
        posts: set[asyncio.Task[None]] = set()
        next_at = time.perf_counter()
        while not self.stopping.is_set():
            task = asyncio.create_task(self._post())
            posts.add(task)
            task.add_done_callback(posts.discard)
            next_at = max(next_at + self.interval, time.perf_counter())
            while not self.stopping.is_set() and time.perf_counter() < next_at:
                await asyncio.sleep(min(0.05, max(0.0, next_at - time.perf_counter())))
        if posts:
            await asyncio.gather(*posts)
        self._posting = -1  # the poller ends once nothing is pending
        await poller

    async def _post(self) -> None:
        word = probe_word(self.rng)
        event = {
            **self.base_event,
            "message": f"{PROBE_PREFIX} {word}",
            "occurred_at": rfc3339_us(now_us()),
        }
        raw = build_request("POST", "/v1/events", self.port, self.writer_token, orjson.dumps(event))
        conn = await Connection.open(self.port)
        try:
            status, body = await self._request(conn, raw)
        except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
            self.errors.append(f"POST /v1/events: {exc!r}")
            return
        finally:
            await conn.close()
        acked_at = time.perf_counter()
        if status != 201:
            self.errors.append(f"POST /v1/events: HTTP {status}: {body[:200]!r}")
            return
        self.acked += 1
        stored = orjson.loads(body)
        self._pending.append(Probe(word, int(stored["seq"]), str(stored["id"]), acked_at))

    async def _get(self, conn: str, path: str) -> tuple[int, bytes, int]:
        """GET as the reader on the poller's connection ``conn``: status, body, and the
        Trailkeep-Indexed-To-Seq header. A keep-alive connection the server closed
        (idle while no probe was pending) is opened again, once."""
        raw = build_request("GET", path, self.port, self.reader_token)
        for attempt in (1, 2):
            current = self._conns.get(conn)
            if current is None or current.closed:
                if current is not None:
                    await current.close()
                current = self._conns[conn] = await Connection.open(self.port)
            self.requests += 1
            try:
                status, head, body = await current.request_with_head(raw)
                break
            except (HttpError, OSError, asyncio.IncompleteReadError):
                await current.close()
                if attempt == 2:
                    raise
        marker = b"\r\n" + INDEXED_TO_HEADER.lower().encode() + b":"
        at = head.lower().find(marker)
        indexed = -1
        if at >= 0:
            end = head.index(b"\r\n", at + 2)
            indexed = int(head[at + len(marker) : end])
        return status, body, indexed

    async def _poller(self) -> None:
        try:
            while self._posting >= 0 or self._pending:
                if self._pending:
                    await self._poll_once("stats", "search")
                await asyncio.sleep(self.poll)
        except (HttpError, OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
            self.errors.append(f"poll: {exc!r}")
        finally:
            for conn in self._conns.values():
                await conn.close()

    async def _search(self, conn: str, word: str, limit: int) -> tuple[set[str], float]:
        path = f"/v1/events?q={urllib.parse.quote(word)}&limit={limit}"
        status, body, _ = await self._get(conn, path)
        at = time.perf_counter()
        if status != 200:
            raise ValueError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        return {str(r.get("id")) for r in orjson.loads(body)["data"]}, at

    async def _indexed(self, conn: str, word: str) -> tuple[int, float]:
        path = f"/v1/stats?group_by=action&q={urllib.parse.quote(word)}"
        status, body, indexed = await self._get(conn, path)
        at = time.perf_counter()
        if status != 200:
            raise ValueError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        return indexed, at

    async def _poll_once(self, stats_conn: str, search_conn: str) -> None:
        """One stats call and one search for the token every probe carries (newest
        first), side by side; a probe that search returns is then confirmed by its own
        word, and counts as found when the shared search returned it. So one round of
        two requests covers every pending probe however many there are."""
        (indexed, indexed_at), (ids, searched_at) = await asyncio.gather(
            self._indexed(stats_conn, self._pending[0].word),
            self._search(search_conn, PROBE_PREFIX, 100),
        )
        for probe in self._pending:
            if math.isnan(probe.indexed_at) and indexed > probe.seq:
                probe.indexed_at = indexed_at
            if math.isnan(probe.found_at) and probe.event_id in ids:
                own, _ = await self._search(search_conn, probe.word, 10)
                if probe.event_id in own:
                    probe.found_at = searched_at
        now = time.perf_counter()
        still = []
        for probe in self._pending:
            if not (math.isnan(probe.found_at) or math.isnan(probe.indexed_at)):
                self.search_lags.append(probe.found_at - probe.acked_at)
                self.stats_lags.append(probe.indexed_at - probe.acked_at)
                self.lags.append(max(probe.found_at, probe.indexed_at) - probe.acked_at)
            elif now - probe.acked_at > self.timeout:
                self.timeouts += 1
            else:
                still.append(probe)
        self._pending = still

    def summary(self) -> dict[str, Any]:
        return {
            "samples": len(self.lags),
            **latency_summary(self.lags),
            "search_p99_ms": latency_summary(self.search_lags)["p99_ms"],
            "stats_p99_ms": latency_summary(self.stats_lags)["p99_ms"],
            "probe_events": self.acked,
            "timeouts": self.timeouts,
            "errors": self.errors[:5],
            "error_count": len(self.errors),
            "requests": self.requests,
            "requests_per_s": self.requests / self.seconds if self.seconds else math.nan,
            "interval_s": self.interval,
            "poll_s": self.poll,
        }


# -- server memory ---------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> float:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM), NaN when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return math.nan


class RssSampler(threading.Thread):
    """The peak of the server's VmRSS over a phase (sampled), and VmHWM at the end."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.every = every
        self.peak_kb = math.nan
        self.hwm_kb = math.nan
        self.stopping = threading.Event()

    def _sample(self) -> None:
        kb = proc_status_kb(self.pid, "VmRSS")
        if not math.isnan(kb) and (math.isnan(self.peak_kb) or kb > self.peak_kb):
            self.peak_kb = kb

    def run(self) -> None:
        while not self.stopping.is_set():
            self._sample()
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self._sample()
        self.hwm_kb = proc_status_kb(self.pid, "VmHWM")

    def summary(self) -> dict[str, float]:
        return {"peak_rss_mb": self.peak_kb / 1024, "vm_hwm_mb": self.hwm_kb / 1024}


# -- the indexer's catch-up --------------------------------------------------------------


def indexed_to(port: int, admin_token: str, tenant: str) -> int:
    """The tenant's indexed_to_seq, from a stats answer (asked as a platform admin)."""
    path = "/v1/stats?" + urllib.parse.urlencode({"group_by": "action", "tenant_id": tenant})
    answer = http_get_json(port, path, admin_token)
    return int(answer["indexed_to_seq"])


def wait_indexed(
    port: int,
    admin_token: str,
    counts: dict[str, int],
    since: float,
    timeout: float,
    poll: float = 0.02,
) -> tuple[float, dict[str, tuple[int, int]]]:
    """Poll each tenant until indexed_to_seq == its event count. Returns the seconds
    since ``since`` (a perf_counter) when the last one got there (NaN on timeout), and
    the tenants not there: tenant -> (indexed_to_seq, count)."""
    waiting = dict(counts)
    last: dict[str, tuple[int, int]] = {}
    deadline = time.perf_counter() + timeout
    while waiting:
        for tenant in list(waiting):
            at = indexed_to(port, admin_token, tenant)
            if at == waiting[tenant]:
                del waiting[tenant]
            else:
                last[tenant] = (at, waiting[tenant])
        if not waiting:
            break
        if time.perf_counter() > deadline:
            return math.nan, {t: last[t] for t in waiting}
        time.sleep(poll)
    return time.perf_counter() - since, {}


# -- rates per slice of a phase ----------------------------------------------------------


def slices(
    timeline: Sequence[tuple[float, int, float]], start: float, size: int
) -> list[dict[str, Any]]:
    """Consecutive slices of ``size`` acknowledged events: (done, events, latency) of
    each request, ``start`` the perf_counter the load started at. The remainder is a
    last slice marked partial."""
    out: list[dict[str, Any]] = []
    ordered = sorted(timeline)
    begin, total, events, lats = start, 0, 0, []

    def close(end: float, partial: bool) -> None:
        seconds = end - begin
        out.append(
            {
                "from_event": total - events,
                "to_event": total,
                "events": events,
                "seconds": round(seconds, 3),
                "events_per_s": events / seconds if seconds > 0 else math.nan,
                "requests": len(lats),
                **latency_summary(lats),
                "partial": partial,
            }
        )

    for done, n, latency in ordered:
        total += n
        events += n
        lats.append(latency)
        if events >= size:
            close(done, False)
            begin, events, lats = done, 0, []
    if events:
        close(ordered[-1][0], True)
    return out


def last_full(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    full = [p for p in parts if not p["partial"]]
    return full[-1] if full else (parts[-1] if parts else None)
