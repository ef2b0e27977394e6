"""Durability that a kill -9 cannot show.

A SIGKILL leaves the OS page cache intact, so the crash tests (test_crash.py) pass even
with the SQLite writer at ``synchronous=OFF``: what the process wrote survives it without
ever reaching the disk. Only a power loss or kernel crash would tell. These tests check
instead what a power loss depends on:

- the writer's own connection (the one the group-commit thread commits on) runs with
  settings that sync at commit, on both backends;
- on SQLite, in a real server process under strace, every acknowledged group's WAL
  frames were fsynced/fdatasynced before its HTTP reply was sent.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from tests import backends
from tests.conftest import make_settings
from tests.e2e.server import Server
from trailkeep.app import build_store
from trailkeep.config import Settings


async def _writer_settings(settings: Settings, backend: str) -> list[dict[str, Any]]:
    """The settings of every writer's connection (PostgreSQL runs several)."""
    store = build_store(settings)
    await store.start()
    try:
        found = []
        for writer in store._writers:  # type: ignore[attr-defined]
            if backend == "sqlite":
                found.append(
                    await writer.call(
                        lambda c: {
                            "synchronous": c.execute("PRAGMA synchronous").fetchone()[0],
                            "journal_mode": c.execute("PRAGMA journal_mode").fetchone()[0],
                        }
                    )
                )
            else:
                found.append(
                    await writer.call(
                        lambda c: {
                            "synchronous_commit": c.execute("SHOW synchronous_commit").fetchone()[
                                0
                            ],
                            "fsync": c.execute("SHOW fsync").fetchone()[0],
                        }
                    )
                )
        return found
    finally:
        await store.close()


def test_writer_connection_syncs_at_commit(backend: str, tmp_path: Path) -> None:
    """The group-commit writer's own connection (not a fresh one: a pragma set on
    another connection says nothing about the writer's) syncs at every commit.

    SQLite: journal_mode WAL and synchronous FULL (2) or EXTRA (3). PostgreSQL:
    synchronous_commit on (or remote_write / remote_apply, which wait for at least as
    much) and fsync on.
    """
    # The service's default, not the in-process tests' NORMAL (tests/conftest.py).
    default = Settings.model_fields["sqlite_synchronous"].default
    settings = make_settings(tmp_path, sqlite_synchronous=default)
    writers = asyncio.run(_writer_settings(settings, backend))
    assert writers, "no writer"
    for found in writers:
        if backend == "sqlite":
            assert str(found["journal_mode"]).lower() == "wal", found
            assert found["synchronous"] in (2, 3), f"writer synchronous is {found['synchronous']}"
        else:
            assert found["synchronous_commit"] in ("on", "remote_write", "remote_apply"), found
            assert found["fsync"] == "on", found
    assert len(writers) == (1 if backend == "sqlite" else settings.pg_writers)


@pytest.mark.sqlite_only  # Settings validation alone: no database is opened
def test_sqlite_synchronous_setting_refuses_off_and_defaults_to_full() -> None:
    """``sqlite_synchronous`` accepts FULL, NORMAL and EXTRA only, and defaults to FULL.

    NORMAL is accepted (config.py allows it for operators who choose speed over
    durability), but note: in WAL mode NORMAL does not sync the WAL at commit, only at
    checkpoints, so a commit acknowledged under NORMAL can be lost on power failure.
    The default must therefore be FULL, and OFF must be refused outright.
    """
    assert Settings.model_fields["sqlite_synchronous"].default == "FULL"
    for weak in ("OFF", "off", "0"):
        with pytest.raises(pydantic.ValidationError):
            Settings(sqlite_synchronous=weak)


# --- strace: every acknowledged group was synced before its reply -------------------

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<time>\d\d:\d\d:\d\d\.\d+)\s+(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>(?P<args>.*)$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>(?P<args>.*)$")
_RESULT = re.compile(r"\)\s+=\s+(?P<ret>-?\d+)")
_SYNCS = ("fsync", "fdatasync")
_SENDS = ("write", "writev", "sendto", "sendmsg")
_WRITES = ("write", "pwrite64", "writev", "pwritev", "pwritev2")


@dataclass
class _Call:
    seq: int  # position in the log (strace writes one file in the order it sees calls)
    name: str
    pid: int
    path: str
    args: str
    done: bool  # the call's result is in the log (for a sync: it has completed)
    ok: bool
    entry: bool = True  # False: the completion line of an <unfinished ...> call


def _parse(log: str) -> list[_Call]:
    """Calls on file descriptors, in log order; an <unfinished ...> call is recorded at
    its entry (for sends and writes) and again at its completion (``done``)."""
    calls: list[_Call] = []
    pending: dict[tuple[int, str], _Call] = {}
    for n, line in enumerate(log.splitlines()):
        m = _LINE.match(line)
        if m is None:
            continue
        pid, rest = int(m["pid"]), m["rest"]
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            start = pending.pop((pid, resumed["name"]), None)
            if start is not None:
                r = _RESULT.search(resumed["args"])
                ok = r is not None and int(r["ret"]) >= 0
                calls.append(_Call(n, start.name, pid, start.path, start.args, True, ok, False))
            continue
        call = _CALL.match(rest)
        if call is None:
            continue
        args = call["args"]
        if args.endswith("<unfinished ...>"):
            entry = _Call(n, call["name"], pid, call["path"], args, False, False)
            pending[(pid, call["name"])] = entry
            calls.append(entry)
            continue
        r = _RESULT.search(args)
        ok = r is not None and int(r["ret"]) >= 0
        calls.append(_Call(n, call["name"], pid, call["path"], args, True, ok))
    return calls


def _is_reply(call: _Call) -> bool:
    """A send whose (first) data starts with an HTTP success status line; a call's entry
    carries its data, so a completion line (``done`` after <unfinished ...>) is skipped."""
    if call.name not in _SENDS or not call.entry or '"' not in call.args:
        return False
    return call.args.split('"', 2)[1].startswith(("HTTP/1.1 201", "HTTP/1.1 200"))


def _child_pid(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _strace_problem() -> str | None:
    if shutil.which("strace") is None:
        return "strace is not installed (scripts/system-packages.sh installs it)"
    probe = subprocess.run(
        ["strace", "-f", "-o", os.devnull, "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return f"strace cannot trace here (ptrace refused?): {probe.stderr.strip()[:200]}"
    return None


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_every_acknowledged_group_is_synced_before_its_reply(
    server: Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    """Under strace: for each 201/200 reply to our POSTs, the database's -wal file was
    fsynced or fdatasynced after the previous reply and before this one, and no WAL
    write was left unsynced when the reply went out.

    By experiment (Linux, CPython's sqlite3, uvicorn with uvloop): SQLite syncs the WAL
    with fdatasync and writes frames with pwrite64; uvloop sends replies with write(2)
    on the socket. The matching accepts each spelling of either, so a change of event
    loop or SQLite build does not silently void the test: it requires that the replies
    be seen at all.
    """
    problem = _strace_problem()
    if problem is not None:
        if backends.IN_CI:
            pytest.fail(f"CI=true and this test needs strace: {problem}")
        pytest.skip(problem)
    trace = tmp_path / "strace.log"
    server.start(
        wrapper=[
            "strace",
            "-f",
            "-tt",
            "-e",
            "trace=fsync,fdatasync,sendto,write,writev,sendmsg,pwrite64,pwritev,pwritev2",
            "-y",
            "-s",
            "80",
            "-o",
            str(trace),
        ],
        timeout=60.0,
    )
    singles, batches, batch_size = 20, 3, 5
    headers = {"Authorization": f"Bearer {seeded['a_writer']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        for i in range(singles):
            r = http.post(
                "/v1/events", json={"id": f"s{i}", "action": "dur.single", "actor": {"id": "u"}}
            )
            assert r.status_code == 201, r.text
        for b in range(batches):
            events = [
                {"id": f"b{b}-{i}", "action": "dur.batch", "actor": {"id": "u"}}
                for i in range(batch_size)
            ]
            r = http.post("/v1/events/batch", json={"events": events})
            assert r.status_code == 200, r.text
            assert all(it["status"] == "created" for it in r.json()["results"]), r.text
    # Stop the server itself (SIGTERM to the traced child), then let strace finish.
    assert server.proc is not None
    child = _child_pid(server.proc.pid)
    if child is not None:
        os.kill(child, 15)
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
    time.sleep(0.1)

    wal = str(server.data_dir / "trailkeep.db-wal")
    calls = _parse(trace.read_text(errors="replace"))
    replies = [c for c in calls if _is_reply(c)]
    # Our POSTs went over one keep-alive connection: the socket that carried the 201s.
    posts = [c for c in replies if '"HTTP/1.1 201' in c.args]
    assert posts, f"no 201 reply seen in the strace log ({len(calls)} calls parsed)"
    sockets = {c.path for c in posts}
    assert len(sockets) == 1, f"replies on several sockets: {sockets}"
    ours = [c for c in replies if c.path in sockets]
    assert len(ours) == singles + batches, (
        f"{len(ours)} replies on our socket, expected {singles + batches}"
    )
    first = replies.index(ours[0])
    previous_seq = replies[first - 1].seq if first > 0 else -1

    wal_syncs = [c for c in calls if c.name in _SYNCS and c.done and c.ok and c.path == wal]
    wal_writes = [c for c in calls if c.name in _WRITES and c.entry and c.path == wal]
    assert wal_syncs, f"no fsync/fdatasync of {wal} at all"
    assert wal_writes, f"no write to {wal} at all (is the trace set complete?)"
    for n, reply in enumerate(ours):
        in_window = [s for s in wal_syncs if previous_seq < s.seq < reply.seq]
        assert in_window, f"reply {n} ({reply.args[:40]}) sent with no WAL sync since the last"
        written = [w for w in wal_writes if previous_seq < w.seq < reply.seq]
        assert written, f"reply {n}: its group wrote nothing to the WAL"
        last_write = written[-1].seq
        assert any(s.seq > last_write for s in in_window), (
            f"reply {n} sent with WAL frames written after the last sync"
        )
        previous_seq = reply.seq
