"""``trailkeep verify`` as an auditor runs it: exit codes, messages, --json, never a traceback.

Most cases go through typer's CliRunner (in-process, fast); a few through a real
subprocess, as installed. The monitor and ``--tiles URL`` talk HTTP to a small real
server in a thread that serves a fake log (tests/unit/integrity/verify_log.FakeLog)
and the tiles of a log built in-process. No database is involved: SQLite only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.e2e.server import cli, free_port
from tests.unit.integrity.verify_log import FakeLog, Log, build_log, with_field
from trailkeep.cli import app
from trailkeep.integrity.note import generate_signer
from trailkeep.kit.merkle import leaf_hash

pytestmark = pytest.mark.sqlite_only


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, ["verify", *args], input=stdin, env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def offline(log: Log, *extra: str) -> list[str]:
    paths = [log.events_path, "--checkpoint", log.checkpoint_path, "--key", log.vkey_path]
    return [*map(str, paths), *extra]


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return build_log(tmp_path / "log", 300)


# ------------------------------------------------------------------ a real HTTP server


class _Handler(BaseHTTPRequestHandler):
    """Answers each GET with what ``server.app`` (an httpx handler) says."""

    def do_GET(self) -> None:
        request = httpx.Request("GET", f"http://test{self.path}", headers=dict(self.headers))
        response = self.server.app(request)  # type: ignore[attr-defined]
        body = response.content
        self.send_response(response.status_code)
        self.send_header("Content-Type", response.headers.get("Content-Type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class HttpLog:
    url: str
    fake: FakeLog
    log: Log


@pytest.fixture
def http_log(log: Log) -> Iterator[HttpLog]:
    fake = FakeLog(log.skey, [leaf_hash(x) for x in log.lines])

    def app_(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/tiles/"):
            path = log.directory / request.url.path.removeprefix("/tiles/")
            if path.is_file():
                return httpx.Response(200, content=path.read_bytes())
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "-"}})
        return fake(request)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.app = app_  # type: ignore[attr-defined]
    # shutdown() waits for serve_forever to look up from its poll: 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield HttpLog(f"http://127.0.0.1:{server.server_address[1]}", fake, log)
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------ offline


def test_an_intact_export_verifies(log: Log) -> None:
    result = run(*offline(log))
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: all 300 events (seqs 0-299) match the checkpoint")
    report = orjson.loads(run(*offline(log, "--json")).stdout)
    assert report["ok"] is True and report["events_verified"] == 300


def test_a_modified_export_fails_and_tiles_locate_the_change(log: Log) -> None:
    lines = list(log.lines)
    lines[37] = with_field(lines[37], action="user.logout")
    log.write(lines)
    result = run(*offline(log))
    assert result.exit_code == 1 and result.stdout.startswith("FAILED")
    assert "pass --tiles" in result.stdout
    located = run(*offline(log, "--tiles", str(log.directory)))
    assert located.exit_code == 1 and "line 38: seq 37 was modified" in located.stdout
    report = orjson.loads(run(*offline(log, "--json", "--tiles", str(log.directory))).stdout)
    assert report["modified"] == {"count": 1, "items": [{"line": 38, "seq": 37}]}


def test_tiles_over_http(http_log: HttpLog) -> None:
    log = http_log.log
    lines = list(log.lines)
    lines[260] = with_field(lines[260], action="forged")
    log.write(lines)
    result = run(*offline(log, "--tiles", f"{http_log.url}/tiles/"), env={"TRAILKEEP_API_KEY": "k"})
    assert result.exit_code == 1 and "line 261: seq 260 was modified" in result.stdout
    missing = run(*offline(log, "--tiles", f"{http_log.url}/nowhere/"))
    assert missing.exit_code == 1 and "tiles" in missing.stdout and "unavailable" in missing.stdout


def test_every_kind_of_finding_is_named(log: Log) -> None:
    lines = list(log.lines)
    lines[9] = lines[9][:50]  # truncated: seq 9 missing
    lines[20], lines[21] = lines[21], lines[20]
    lines[30] = with_field(lines[30], tenant_id="globex")
    lines.insert(40, b"garbage")
    lines.append(lines[5])
    log.write(lines)
    out = run(*offline(log)).stdout
    for expected in [
        "line 10: truncated",
        "line 22: seq 20 comes after seq 21 (line 21)",
        "line 31: seq 30 belongs to tenant 'globex', not 'acme'",
        "line 41: not valid JSON",
        "seq 5: duplicated on lines 6, 302 (identical)",
        "missing: 2 seq(s): 9, 30",
    ]:
        assert expected in out, out


def test_stdin(log: Log) -> None:
    args = ["-", "--checkpoint", str(log.checkpoint_path), "--key", log.vkey]
    assert run(*args, stdin=log.events_path.read_bytes()).exit_code == 0
    assert run(*args, stdin=b"garbage\n").exit_code == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"events": "missing.jsonl"}, "cannot read events file"),
        ({"events": "."}, "is a directory"),
        ({"checkpoint": "missing.txt"}, "cannot read checkpoint file"),
        ({"checkpoint": "empty"}, "is empty"),
        ({"checkpoint": "garbage"}, "is not a signed note"),
        ({"checkpoint": "binary"}, "not valid UTF-8"),
        ({"key": "garbage"}, "neither a file nor a verifier key"),
        ({"key": "a+b+c"}, "not 8 hex digits"),
        ({"key": "other"}, "is not signed by key"),
        ({"key": "private"}, "private signer key"),
        ({"key": "empty"}, "is empty"),
        ({"tiles": "missing-dir"}, "holds no tile/ directory"),
    ],
)
def test_inputs_that_cannot_be_checked(log: Log, change: dict[str, str], message: str) -> None:
    d = log.directory
    (d / "empty").write_bytes(b"")
    (d / "garbage").write_bytes(b"not a checkpoint\n")
    (d / "binary").write_bytes(bytes(range(256)))
    keys = {"other": generate_signer(log.checkpoint.origin)[1], "private": log.skey}
    events = change.get("events", str(log.events_path))
    checkpoint = change.get("checkpoint", str(log.checkpoint_path))
    key = keys.get(change.get("key", ""), change.get("key", str(log.vkey_path)))
    key = str(d / "empty") if key == "empty" else key
    extra = ["--tiles", str(d / change["tiles"])] if "tiles" in change else []
    args = [str(d / events), "--checkpoint", str(d / checkpoint), "--key", key, *extra]
    result = run(*args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert log.skey.split("+", 4)[4] not in result.stderr  # never echo a private key
    as_json = run(*args, "--json")
    assert as_json.exit_code == 1
    report = orjson.loads(as_json.stdout)
    assert report["ok"] is False and message in report["error"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["events.jsonl"],
        ["events.jsonl", "--checkpoint", "c"],
        ["events.jsonl", "--checkpoint", "c", "--key", "k", "--since", "s"],
        ["events.jsonl", "--server", "http://x", "--since", "s", "--key", "k"],
        ["--server", "http://x", "--key", "k"],
        ["--server", "ftp://x", "--since", "s", "--key", "k"],
        ["--server", "http://x", "--since", "s", "--key", "k", "--tiles", "t"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "Usage" in result.output


def test_help_documents_both_modes() -> None:
    out = run("--help").stdout
    assert "--server" in out and "--tiles" in out and "trust on first use" in out


def test_as_a_real_process(log: Log) -> None:
    ok = cli("verify", *offline(log), check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    log.write(log.lines[:100] + log.lines[101:])
    failed = cli("verify", *offline(log), check=False)
    assert failed.returncode == 1 and "missing: 1 seq(s): 100" in failed.stdout
    error = cli("verify", *offline(log)[:-1], "nonsense", check=False)
    assert error.returncode == 1 and "Traceback" not in error.stderr + error.stdout
    usage = cli("verify", check=False)
    assert usage.returncode == 2


# ------------------------------------------------------------------ the monitor


def monitor(http: HttpLog, since: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    key = str(http.log.vkey_path)
    return run("--server", http.url, "--since", str(since), "--key", key, *extra, env=env)


def test_monitor_first_use_then_growth(http_log: HttpLog, tmp_path: Path) -> None:
    since = tmp_path / "saved.txt"
    first = monitor(http_log, since)
    assert first.exit_code == 1 and "--init" in first.stderr and not since.exists()
    init = monitor(http_log, since, "--init")
    assert init.exit_code == 0 and "trusted on first use" in init.stdout
    assert since.read_text() == http_log.fake.note()
    http_log.fake.leaves += [leaf_hash(b"more %d" % i) for i in range(40)]
    grown = monitor(http_log, since, "--update", env={"TRAILKEEP_API_KEY": "tk_k"})
    assert grown.exit_code == 0, grown.output
    assert "OK: log.example/t/acme: the log grew from 300 to 340 events" in grown.stdout
    assert since.read_text().split("\n")[1] == "340"
    assert http_log.fake.requests[-1].headers["Authorization"] == "Bearer tk_k"
    report = orjson.loads(monitor(http_log, since, "--json").stdout)
    assert report["ok"] and report["status"] == "ok" and report["new"]["size"] == 340


def test_monitor_failures(http_log: HttpLog, tmp_path: Path) -> None:
    since = tmp_path / "saved.txt"
    since.write_text(http_log.fake.note())
    http_log.fake.leaves = http_log.fake.leaves[:250]
    shrunk = monitor(http_log, since, "--update")
    assert shrunk.exit_code == 1 and "FAILED" in shrunk.stdout and "shrank" in shrunk.stdout
    assert since.read_text().split("\n")[1] == "300"
    report = orjson.loads(monitor(http_log, since, "--json").stdout)
    assert report["ok"] is False and report["status"] == "shrunk"
    http_log.fake.routes["/v1/checkpoint"] = lambda r: httpx.Response(503, text="maintenance")
    down = monitor(http_log, since)
    assert down.exit_code == 1 and "HTTP 503: 'maintenance'" in down.stderr


def test_monitor_of_an_unreachable_server(log: Log, tmp_path: Path) -> None:
    since = tmp_path / "saved.txt"
    since.write_text(log.note)
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--server", url, "--since", str(since), "--key", log.vkey, "--timeout", "2")
    assert result.exit_code == 1 and "cannot fetch" in result.stderr
