"""Kill -9 while the indexer follows the log: after a restart it resumes from its durable
position, and once caught up, full text and stats equal a recomputation from the
stored events (nothing counted twice, nothing missing), on both backends."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests import backends
from tests.e2e.server import Server, all_events
from trailkeep.store.derived.check import derived_problems
from trailkeep.store.postgres.qmark import QmarkConnection

pytestmark = pytest.mark.slow
WORDS = ("amber", "birch", "cedar", "delta")


def _load(url: str, token: str, client_no: int, stop: threading.Event, acked: list[int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    n = 0
    with httpx.Client(base_url=url, headers=headers, timeout=5) as http:
        while not stop.is_set():
            events = [
                {
                    "action": f"doc.{WORDS[(n + i) % 4]}",
                    "actor": {"id": f"c{client_no}-{(n + i) % 7}"},
                    "message": f"{WORDS[(n + i) % 4]} change {client_no}",
                    "targets": [{"type": "doc", "id": f"d{i}"}],
                }
                for i in range(50)
            ]
            n += len(events)
            try:
                r = http.post("/v1/events/batch", json={"events": events})
            except httpx.HTTPError:
                return  # the server died under us
            if r.status_code == 200:
                acked.extend(it["seq"] for it in r.json()["results"])


def _indexed_to(url: str, token: str) -> int:
    r = httpx.get(
        f"{url}/v1/stats",
        params={"group_by": "action"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return int(r.headers["Trailkeep-Indexed-To-Seq"])


def _wait_indexed(url: str, token: str, size: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _indexed_to(url, token) < size:
        assert time.monotonic() < deadline, "the indexer did not catch up after the restart"
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _problems(server: Server, tenant: str) -> list[str]:
    if backends.current_url is None:
        conn = sqlite3.connect(server.data_dir / "trailkeep.db")
        try:
            return derived_problems(conn, False, tenant)
        finally:
            conn.close()
    url = backends.current_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as pg:
        return derived_problems(QmarkConnection(pg), True, tenant)


def test_sigkill_while_indexing_loses_nothing_and_counts_nothing_twice(
    server: Server, seeded: dict[str, Any]
) -> None:
    server.start()
    acked: dict[str, list[int]] = {"a": [], "b": []}
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_load,
            args=(server.url, seeded[f"{t}_writer"], no, stop, acked[t]),
            daemon=True,
        )
        for no, t in enumerate(("a", "b", "a", "b"))
    ]
    for t in threads:
        t.start()
    time.sleep(2.5)
    before = _indexed_to(server.url, seeded["a_reader"])
    assert server.proc is not None
    children = _children(server.proc.pid)  # SQLite: the tokenizer process and its tracker
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked["a"]) > 200, "the load never got going"
    # A server killed with SIGKILL cannot stop its workers: they must notice and exit.
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "worker processes outlived the server"

    server.start()
    for tenant in ("a", "b"):
        token = seeded[f"{tenant}_reader"]
        stored = all_events(server.url, token)
        assert set(acked[tenant]) <= {e["seq"] for e in stored}
        _wait_indexed(server.url, token, len(stored))
        assert _problems(server, tenant) == []
        # Through the API: a word finds exactly the events whose message has it ...
        for word in WORDS[:2]:
            r = httpx.get(
                f"{server.url}/v1/events",
                params={"q": word, "limit": 1000},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
            want = {e["seq"] for e in stored if word in e["message"].split()}
            found = {e["seq"] for e in r.json()["data"]}
            assert found == want or (len(want) > 1000 and len(found) == 1000 and found <= want)
        # ... and stats count every stored event once.
        r = httpx.get(
            f"{server.url}/v1/stats",
            params={"group_by": "action"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.json()["total"] == len(stored)
    assert before <= _indexed_to(server.url, seeded["a_reader"])
