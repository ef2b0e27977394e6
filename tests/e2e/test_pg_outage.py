"""PostgreSQL restarted under load: requests fail fast with 503 and Retry-After, no
acknowledged event is lost, and the service recovers by itself when the database returns.

The database is a throwaway cluster the test starts itself (tests/pg_cluster.py), never
the machine's shared server. One ``trailkeep serve`` runs throughout; clients post
single events and batches with ids of their own while the cluster is stopped twice
(``fast``, then ``immediate`` -- a crash: no checkpoint, recovery from WAL) and started
again. The service is never restarted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests import backends
from tests.e2e.server import Server, all_events, cli_in_process, free_port
from tests.pg_cluster import PgCluster, StopMode, cluster_problem

# Runs once: the backend under test is the cluster below, whatever the parametrization.
pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

CLIENTS = 4  # two post single events, two post batches
BATCH = 10
OUTAGE_S = 4.0  # how long the database stays down
FAIL_FAST_S = 3.0  # the longest any request may take, refused or not
RECOVERY_S = 15.0  # the longest the service may take to ingest again once it is back


@dataclass(frozen=True, slots=True)
class Outcome:
    client: int
    began: float
    ended: float
    status: int  # 0: no HTTP answer at all (connection refused/reset, client timeout)
    retry_after: str | None
    acked: tuple[str, ...]
    rejected: int  # batch items answered "rejected" (these events are all valid)
    detail: str

    @property
    def seconds(self) -> float:
        return self.ended - self.began

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    """Writer clients posting continuously; every answer is recorded."""

    url: str
    token: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for client in range(CLIENTS):
            t = threading.Thread(target=self._client, args=(client,), daemon=True)
            self.threads.append(t)
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a client is stuck"

    def snapshot(self) -> list[Outcome]:
        with self.lock:
            return list(self.outcomes)

    def acked_since(self, moment: float) -> set[int]:
        """The clients with an acknowledged request sent after ``moment``."""
        return {o.client for o in self.snapshot() if o.ok and o.began >= moment}

    def _client(self, client: int) -> None:
        batch = client % 2 == 1
        n = 0
        headers = {"Authorization": f"Bearer {self.token}"}
        # The client timeout is far above FAIL_FAST_S: a slow answer is measured, not cut.
        with httpx.Client(base_url=self.url, headers=headers, timeout=20) as http:
            while not self.stop.is_set():
                ids = [f"c{client}-{n + i}" for i in range(BATCH if batch else 1)]
                n += len(ids)
                events = [
                    {"id": i, "action": "outage.test", "actor": {"id": f"c{client}"}} for i in ids
                ]
                began = time.monotonic()
                acked: tuple[str, ...] = ()
                rejected = 0
                try:
                    if batch:
                        r = http.post("/v1/events/batch", json={"events": events})
                        if r.status_code == 200:
                            results = r.json()["results"]
                            acked = tuple(it["id"] for it in results if it["status"] == "created")
                            rejected = len(results) - len(acked)
                    else:
                        r = http.post("/v1/events", json=events[0])
                        if r.status_code == 201:
                            acked = (ids[0],)
                    status, retry_after, detail = (
                        r.status_code,
                        r.headers.get("Retry-After"),
                        r.text[:300],
                    )
                except httpx.HTTPError as exc:
                    status, retry_after, detail = 0, None, repr(exc)
                outcome = Outcome(
                    client, began, time.monotonic(), status, retry_after, acked, rejected, detail
                )
                with self.lock:
                    self.outcomes.append(outcome)
                if not outcome.ok:
                    time.sleep(0.02)  # a client backing off a little, as Retry-After asks


def _wait_for(what: str, predicate: Any, timeout: float) -> float:
    """Poll ``predicate`` until true; the seconds it took."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - began


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _assert_refused_fast(r: httpx.Response, seconds: float, what: str) -> None:
    assert r.status_code == 503, f"{what}: {r.status_code} {r.text[:300]}"
    assert r.headers.get("Retry-After", "").isdigit(), f"{what}: no Retry-After"
    assert seconds <= FAIL_FAST_S, f"{what}: took {seconds:.1f} s"


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    problem = cluster_problem()
    if problem is not None:
        if backends.IN_CI:
            pytest.fail(f"CI=true and no throwaway PostgreSQL cluster can be made: {problem}")
        pytest.skip(f"no throwaway PostgreSQL cluster: {problem}")
    pg = PgCluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


def _outage(
    cluster: PgCluster, server: Server, load: Load, reader: str, mode: StopMode
) -> dict[str, float]:
    """Stop the cluster under load, probe the service, start it again, wait for ingest."""
    t: dict[str, float] = {"stopping": time.monotonic()}
    cluster.stop(mode)
    t["down"] = time.monotonic()

    time.sleep(0.3)
    began = time.monotonic()
    r = httpx.get(f"{server.url}/readyz", timeout=20)
    _assert_refused_fast(r, time.monotonic() - began, f"{mode}: /readyz while down")
    began = time.monotonic()
    r = httpx.get(
        f"{server.url}/v1/events",
        params={"limit": 10},
        headers={"Authorization": f"Bearer {reader}"},
        timeout=20,
    )
    _assert_refused_fast(r, time.monotonic() - began, f"{mode}: a read while down")

    time.sleep(max(0.0, t["down"] + OUTAGE_S - time.monotonic()))
    t["starting"] = time.monotonic()
    cluster.start()
    t["up"] = time.monotonic()

    # Recovery, without touching the service: every client gets an acknowledgement
    # for a request sent after the database came back, and /readyz says ready.
    t["recovered_s"] = _wait_for(
        f"{mode}: ingest resumes for every client",
        lambda: len(load.acked_since(t["up"])) == CLIENTS,
        RECOVERY_S,
    )
    t["ready_s"] = _wait_for(
        f"{mode}: /readyz 200", lambda: _ready(server.url), RECOVERY_S - t["recovered_s"]
    )
    time.sleep(1.0)  # a stretch of healthy load before the next outage / the end
    return t


def test_postgres_restart_under_load(cluster: PgCluster, tmp_path: Path) -> None:
    # This test's database is the throwaway cluster, not the one the autouse fixture put
    # into the environment for the other tests.
    env = {"TRAILKEEP_DATABASE_URL": cluster.url}
    data_dir = str(tmp_path)
    # Set-up through the CLI's commands, in this process (a process costs a second each).
    cli_in_process("migrate", "--database-url", cluster.url, env=env)
    cli_in_process("init", "--data-dir", data_dir, "--json", env=env)
    cli_in_process("tenant", "create", "a", "--data-dir", data_dir, "--json", env=env)
    tokens = {
        role: cli_in_process(
            "key", "create", "--role", role, "--tenant", "a",
            "--data-dir", data_dir, "--json", env=env,
        )["token"]
        for role in ("writer", "reader")
    }  # fmt: skip

    server = Server(tmp_path, free_port())
    load = Load(server.url, tokens["writer"])
    modes: tuple[StopMode, ...] = ("fast", "immediate")
    try:
        server.start(
            extra_env={
                **env,
                # A refusal waits at most this long for a database connection.
                "TRAILKEEP_PG_CONNECT_TIMEOUT_SECONDS": "1",
                # API keys stay cached throughout, so that ingest during the outage goes
                # on to the tenant check (cached for 2 s) and to the writer, instead of
                # being refused by the key lookup already.
                "TRAILKEEP_AUTH_CACHE_SECONDS": "600",
                "TRAILKEEP_LOG_LEVEL": "WARNING",
            }
        )
        load.start()
        _wait_for("load gets going", lambda: len(load.acked_since(0.0)) == CLIENTS, 15)
        time.sleep(1.0)
        timelines = {mode: _outage(cluster, server, load, tokens["reader"], mode) for mode in modes}
        load.finish()
        # Read back through the same server process: reads recovered too.
        stored = all_events(server.url, tokens["reader"])
    finally:
        load.stop.set()
        server.stop()
    log = server.log_path.read_text() if server.log_path else ""

    outcomes = load.snapshot()
    # Never anything but an acknowledgement or a 503 with Retry-After, and never slow:
    # no 500, no dropped connection, no hang -- in or around either outage. A batch is
    # all or nothing here (its events are valid): an outage is the whole request's 503,
    # not items "rejected" inside a 200.
    for o in outcomes:
        assert o.ok or o.status == 503, f"client {o.client}: {o.status} {o.detail}\n{log[-3000:]}"
        if not o.ok:
            assert o.retry_after is not None and o.retry_after.isdigit(), o
        assert o.rejected == 0, f"a batch answered 200 with items rejected: {o.detail}"
        assert o.seconds <= FAIL_FAST_S, f"a request took {o.seconds:.1f} s: {o}"
    for mode, t in timelines.items():
        # While the database was down the load went on, and all of it was refused
        # (a request sent while it was down may still succeed if it ends after the
        # restart: waiting out the connect timeout can span the database's return).
        sent_down = [o for o in outcomes if t["down"] <= o.began < t["starting"]]
        per_client = [sum(o.client == c for o in sent_down) for c in range(CLIENTS)]
        assert min(per_client) >= 2, f"{mode}: requests per client while down: {per_client}"
        during = [o for o in sent_down if o.ended <= t["starting"]]
        assert len(during) >= CLIENTS, f"{mode}: only {len(during)} answered while down"
        assert all(o.status == 503 for o in during), mode
        # Most refusals are immediate: once one request found the database gone, the
        # next ones do not each wait out the connect timeout.
        quick = sum(o.seconds < 0.25 for o in during)
        assert quick >= len(during) // 2, f"{mode}: {quick}/{len(during)} refused at once"
        print(
            f"{mode}: {len(during)} requests refused while down (slowest"
            f" {max(o.seconds for o in during):.2f} s); ingest again"
            f" {t['recovered_s']:.2f} s after the database was back, ready {t['ready_s']:.2f} s"
        )

    # No acknowledged event is lost; seqs are unique and gapless. Stored events may
    # include a few that were refused (the connection died as COMMIT was sent): those
    # are the client's to retry with the same id, and must simply not break the seqs.
    acked = [i for o in outcomes for i in o.acked]
    assert len(acked) == len(set(acked))
    assert len(acked) > 200, "the load never got going"
    stored_ids = [e["id"] for e in stored]
    assert len(stored_ids) == len(set(stored_ids)), "an id stored twice"
    missing = set(acked) - set(stored_ids)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    seqs = sorted(e["seq"] for e in stored)
    assert seqs == list(range(len(stored))), "seqs must be unique and gapless from 0"
    with psycopg.connect(cluster.url) as conn:
        row = conn.execute("SELECT next_seq FROM tenant_seqs WHERE tenant_id = 'a'").fetchone()
    assert row == (len(stored),), "the seq counter agrees with the stored events"
    print(f"{len(acked)} acknowledged, {len(stored)} stored")
