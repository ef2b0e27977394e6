"""``trailkeep search`` against a real server, run as the installed ``trailkeep`` command.

One server for the module (starting one costs seconds): tenant ``a`` holds events of
distinct actions, tenant ``b`` some of the same action, which must never show up in a's
results. The CLI is an HTTP client only, so this runs on SQLite alone (what a query
means on each backend belongs to the API's tests). A few runs are real processes (about
a second each); the rest go through typer's CliRunner, in-process, to the same server.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.e2e.conftest import _tenants_and_keys
from tests.e2e.server import Server, all_events, free_port
from trailkeep.app import build_store
from trailkeep.auth.principal import Role
from trailkeep.auth.service import AuthService
from trailkeep.cli import app
from trailkeep.cli_search import event_spans
from trailkeep.config import Settings

pytestmark = pytest.mark.sqlite_only

TRAILKEEP = str(Path(sys.executable).with_name("trailkeep"))


def _events() -> dict[str, list[dict[str, Any]]]:
    alpha = [
        {
            "id": f"alpha-{i}",
            "action": "search.alpha",
            "occurred_at": f"2026-01-01T00:00:0{i}Z",
            "actor": {"id": f"u{i}", "type": "user"},
            "targets": [{"type": "document", "id": f"d{i}"}],
            "message": f"alpha number {i}",
        }
        for i in range(5)
    ]
    beta = [
        {
            "id": f"beta-{i}",
            "action": "search.beta",
            "occurred_at": f"2026-01-02T00:00:0{i}Z",
            "actor": {"name": "Ada Lovelace", "type": "anonymous"},
            "severity": "WARNING",
            "outcome": "failure",
            "message": "[red]not markup[/red] \x1b[2Jwiped",
        }
        for i in range(2)
    ]
    gamma = [
        {
            "id": "gamma-0",
            "action": "search.gamma",
            "occurred_at": "2026-01-03T00:00:00Z",
            "actor": {"id": "svc"},
        }
    ]
    b = [
        {
            "id": f"b-alpha-{i}",
            "action": "search.alpha",
            "occurred_at": f"2026-01-01T00:00:0{i}.5Z",
            "actor": {"id": f"u{i}"},
            "message": "tenant-b-marker",
        }
        for i in range(3)
    ]
    return {"a": alpha + beta + gamma, "b": [*b, {"action": "other.thing", "actor": {"id": "x"}}]}


@dataclass
class Log:
    url: str
    keys: dict[str, str]

    def stored(self, tenant: str, ids: list[str]) -> list[bytes]:
        """The stored bytes of events, as GET /v1/events/{id} returns them."""
        headers = {"Authorization": f"Bearer {self.keys[f'{tenant}_reader']}"}
        out = []
        for event_id in ids:
            r = httpx.get(f"{self.url}/v1/events/{event_id}", headers=headers)
            assert r.status_code == 200, r.text
            out.append(r.content)
        return out


async def _admin_key(settings: Settings) -> str:
    store = build_store(settings)
    await store.start()
    try:
        return (await AuthService(store, settings).create_key(None, Role.ADMIN, "e2e")).token
    finally:
        await store.close()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    data_dir = tmp_path_factory.mktemp("search")
    # A migrated database, keys and tenants made in-process (`trailkeep init` as a
    # process costs a second; tests/e2e/test_cli.py covers it).
    keys = {"admin": asyncio.run(_admin_key(make_settings(data_dir)))}
    keys.update(asyncio.run(_tenants_and_keys(data_dir)))
    server = Server(data_dir, free_port())
    server.start()
    try:
        for tenant, events in _events().items():
            headers = {"Authorization": f"Bearer {keys[f'{tenant}_writer']}"}
            r = httpx.post(
                f"{server.url}/v1/events/batch", json={"events": events}, headers=headers
            )
            assert r.status_code == 200, r.text
        yield Log(server.url, keys)
    finally:
        server.stop()


COLUMNS = ("occurred_at", "seq", "severity", "outcome", "action", "actor", "targets", "message")
# Newest first: alpha-4 (00:00:04) ... alpha-0.
ALPHA = [f"alpha-{i}" for i in reversed(range(5))]


def search(*args: str, key: str | None, url: str | None) -> subprocess.CompletedProcess[bytes]:
    """``trailkeep search ARGS`` as a user runs it, the key and URL from the environment."""
    # Without COLUMNS, as into a pipe or a file: the table keeps whole rows.
    unset = ("TRAILKEEP_API_KEY", "TRAILKEEP_URL", "COLUMNS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    if key is not None:
        env["TRAILKEEP_API_KEY"] = key
    if url is not None:
        env["TRAILKEEP_URL"] = url
    proc = subprocess.run(
        [TRAILKEEP, "search", *args], capture_output=True, timeout=60, env=env, check=False
    )
    assert b"Traceback" not in proc.stdout + proc.stderr, proc.stderr.decode()
    return proc


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, ["search", *args], env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def hint_of(stderr: bytes) -> list[str]:
    """The command of the ``more:`` hint, as argv."""
    (line,) = stderr.decode().splitlines()
    assert line.startswith("more: trailkeep search "), line
    return [TRAILKEEP, *shlex.split(line.removeprefix("more: "))[1:]]


# ------------------------------------------------------------------ results


def test_a_query_finds_exactly_its_events_as_stored(log: Log) -> None:
    key = log.keys["a_reader"]
    proc = search("action:search.alpha", "--tenant", "a", "--json", key=key, url=log.url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == log.stored("a", ALPHA)
    assert proc.stderr == b""
    # A platform admin names the tenant; b's events of the same action are b's alone.
    admin = {"TRAILKEEP_API_KEY": log.keys["admin"], "TRAILKEEP_URL": log.url}
    as_admin = run("action:search.alpha", "--tenant", "a", "--json", env=admin)
    assert as_admin.exit_code == 0 and as_admin.stdout_bytes == proc.stdout
    of_b = run("action:search.alpha", "--tenant", "b", "--json", env=admin)
    ids = [orjson.loads(line)["id"] for line in of_b.stdout_bytes.splitlines()]
    assert ids == ["b-alpha-2", "b-alpha-1", "b-alpha-0"]
    # A query may start with a negation: "-action:..." is the query, not an option.
    negated = run("--tenant", "a", "-action:search.alpha", "--json", env=admin)
    ids = [orjson.loads(line)["id"] for line in negated.stdout_bytes.splitlines()]
    assert negated.exit_code == 0 and ids == ["gamma-0", "beta-1", "beta-0"]


def test_paging_follows_the_cursor_to_the_end_without_duplicates(log: Log) -> None:
    key, url = log.keys["a_reader"], log.url
    query = ("action:search.alpha", "--tenant", "a", "--limit", "2", "--json")
    every = run(*query, "--all", env={"TRAILKEEP_API_KEY": key, "TRAILKEEP_URL": url})
    assert every.exit_code == 0 and every.stderr == ""
    assert every.stdout_bytes.splitlines() == log.stored("a", ALPHA)

    first = run(*query, env={"TRAILKEEP_API_KEY": key, "TRAILKEEP_URL": url})
    assert first.exit_code == 0
    assert [orjson.loads(x)["id"] for x in first.stdout_bytes.splitlines()] == ALPHA[:2]
    # The hint is a command to paste: the same query, tenant, server and page size.
    env = {k: v for k, v in os.environ.items() if k != "TRAILKEEP_URL"}
    env["TRAILKEEP_API_KEY"] = key
    more = hint_of(first.stderr_bytes)
    second = subprocess.run(more, capture_output=True, timeout=60, env=env, check=False)
    assert second.returncode == 0, second.stderr
    assert [orjson.loads(x)["id"] for x in second.stdout.splitlines()] == ALPHA[2:4]
    rest = run(*hint_of(second.stderr)[2:], "--pages", "5", env={"TRAILKEEP_API_KEY": key})
    assert rest.exit_code == 0 and rest.stderr == ""
    assert [orjson.loads(x)["id"] for x in rest.stdout_bytes.splitlines()] == ALPHA[4:]


def test_an_empty_query_pages_through_the_whole_tenant(log: Log) -> None:
    key = log.keys["b_reader"]
    env = {"TRAILKEEP_API_KEY": key, "TRAILKEEP_URL": log.url}
    result = run("--tenant", "b", "--limit", "3", "--all", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    expected = [e["id"] for e in all_events(log.url, key)]
    lines = result.stdout_bytes.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == expected and len(expected) == 4
    assert lines == log.stored("b", expected)


def test_the_table_shows_events_safely(log: Log) -> None:
    proc = search("action:search.*", "--tenant", "a", key=log.keys["a_reader"], url=log.url)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    out = proc.stdout.decode()
    header = out.splitlines()[0].split()
    assert header == [*COLUMNS]
    for text in ("search.alpha", "search.beta", "search.gamma", "document:d3", "alpha number 3"):
        assert text in out
    assert "tenant-b-marker" not in out
    # Event text is shown, never interpreted: no markup, no escape sequence reaches the tty.
    assert "[red]not markup[/red] \\x1b[2Jwiped" in out
    # A reader's table shows the sealed actor name masked (docs/privacy.md), never in clear.
    assert "A***" in out and "Ada Lovelace" not in out
    assert b"\x1b" not in proc.stdout
    # Paging stopped early: the hint goes to stderr, the table alone to stdout.
    env = {"TRAILKEEP_API_KEY": log.keys["a_reader"], "TRAILKEEP_URL": log.url}
    paged = run("action:search.*", "--tenant", "a", "--limit", "2", env=env)
    assert paged.exit_code == 0 and "more:" not in paged.stdout
    assert paged.stderr.startswith("more: trailkeep search 'action:search.*' --tenant a --cursor ")


# ------------------------------------------------------------------ failures


def test_a_refused_query_is_shown_with_a_caret(log: Log) -> None:
    proc = search("disk actr.id:x", "--tenant", "a", key=log.keys["a_reader"], url=log.url)
    assert proc.returncode == 2 and proc.stdout == b""
    query, caret = proc.stderr.decode().splitlines()
    assert query == "disk actr.id:x"
    assert caret.startswith("     ^ ") and "did you mean 'actor.id'" in caret


def test_http_and_network_failures_are_one_line(log: Log) -> None:
    wrong = run(
        "", "--tenant", "a", env={"TRAILKEEP_API_KEY": "tk_wrong", "TRAILKEEP_URL": log.url}
    )
    assert wrong.exit_code == 1 and wrong.stdout == ""
    (line,) = wrong.stderr.splitlines()
    assert line.startswith("error: ") and "HTTP 401" in line and "TRAILKEEP_API_KEY" in line

    nobody = f"http://127.0.0.1:{free_port()}"
    down = run("", "--tenant", "a", env={"TRAILKEEP_API_KEY": "tk_x", "TRAILKEEP_URL": nobody})
    assert down.exit_code == 1 and down.stdout == ""
    (line,) = down.stderr.splitlines()
    assert line.startswith("error: cannot fetch ") and "is the server running?" in line

    env = {"TRAILKEEP_API_KEY": log.keys["a_reader"], "TRAILKEEP_URL": log.url}
    other = run("", "--tenant", "b", env=env)
    assert other.exit_code == 1 and "HTTP 403" in other.stderr
    assert len(other.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["x"],  # no --tenant
        ["x", "--tenant", "a", "--limit", "0"],
        ["x", "--tenant", "a", "--limit", "1001"],
        ["x", "--tenant", "a", "--all", "--pages", "2"],
        ["x", "--tenant", "a", "--server", "ftp://example"],
        ["--tenant", "a", "--jsn"],  # a misspelt option is not taken for the query
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args, env={"TRAILKEEP_API_KEY": "tk_x"}).exit_code == 2


def test_an_api_key_is_required() -> None:
    result = run("x", "--tenant", "a", env={"TRAILKEEP_API_KEY": ""})
    assert result.exit_code == 2 and "TRAILKEEP_API_KEY" in result.stderr


def test_event_spans_are_the_bytes_of_each_event() -> None:
    body = '{ "next_cursor" : null ,\n "data" : [ {"a": "é,]}\\""} ,{"b":[1,{}]}\n] }'.encode()
    assert event_spans(body) == ['{"a": "é,]}\\""}'.encode(), b'{"b":[1,{}]}']
    assert event_spans(b'{"data":[]}') == []
