"""Start and stop real ``trailkeep serve`` processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tests.conftest import TEST_PRIVACY_KEY, TEST_SIGNING_KEY
from trailkeep.cli import app as cli_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True, input_text: str = ""
) -> Any:
    """Run the trailkeep CLI as a process; parse its stdout as JSON when --json is among
    the args (and it succeeded); AssertionError if ``check`` and it failed."""
    proc = subprocess.run(
        [sys.executable, "-m", "trailkeep.cli", *args],
        capture_output=True,
        input=input_text,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    return _checked(args, proc, check)


def cli_in_process(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    check: bool = True,
    input_text: str = "",
) -> Any:
    """cli(), but the command runs in this process (run_in_process): for what a command
    does and prints. A test of the process itself (the installed entry point, a server
    process's start-up, signals, a pipe into stdin) uses cli()."""
    return _checked(args, run_in_process(*args, env=env, input_text=input_text), check)


@dataclass(frozen=True, slots=True)
class CliRun:
    """What an in-process run left: the fields of subprocess.CompletedProcess the tests
    read, so that a test reads a run of either kind the same way."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_in_process(
    *args: str, env: Mapping[str, str | None] | None = None, input_text: str = ""
) -> CliRun:
    """``trailkeep ARGS``: the same typer app (trailkeep.cli) run in this process through
    typer's CliRunner, with the same argv, stdin and environment; its exit code, stdout and
    stderr apart. No new interpreter and imports: a process costs about a second.

    ``env`` adds to the environment for the run; a None value unsets a variable. An
    exception escaping the command goes to stderr as the interpreter would print it, with
    exit code 1, as in a process: a test's ``"Traceback" not in stderr`` still holds.
    """
    # Rich wraps at the terminal's width; cli()'s process has pipes, not a terminal: 80
    # columns unless COLUMNS says otherwise.
    run_env: dict[str, str | None] = {"COLUMNS": os.environ.get("COLUMNS", "80"), **(env or {})}
    result = CliRunner().invoke(cli_app, list(args), input=input_text, env=run_env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliRun(list(args), result.exit_code, result.stdout, stderr)


def _checked(args: tuple[str, ...], proc: Any, check: bool) -> Any:
    if check and proc.returncode != 0:
        raise AssertionError(f"trailkeep {' '.join(args)} failed: {proc.stderr}")
    if "--json" in args and proc.returncode == 0:
        return json.loads(proc.stdout)
    return proc


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        extra_env: dict[str, str] | None = None,
        timeout: float = 20.0,
        wrapper: list[str] | None = None,
    ) -> None:
        """Start ``trailkeep serve``; ``wrapper`` prefixes the command (e.g. strace ...),
        so ``proc`` is then the wrapper's process."""
        env = {
            **os.environ,
            "TRAILKEEP_DATA_DIR": str(self.data_dir),
            "TRAILKEEP_PORT": str(self.port),
            "TRAILKEEP_ACCESS_LOG": "false",
            **(extra_env or {}),
        }
        if not (self.data_dir / "signing.key").exists():
            # Not made by `trailkeep init`: the run's test key, as an operator would set it.
            env.setdefault("TRAILKEEP_SIGNING_KEY", TEST_SIGNING_KEY)
        if not (self.data_dir / "privacy.key").exists():
            env.setdefault("TRAILKEEP_PRIVACY_KEY", TEST_PRIVACY_KEY)
        self.log_path = self.data_dir / "server.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*(wrapper or []), sys.executable, "-m", "trailkeep.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def all_events(url: str, token: str) -> list[dict[str, Any]]:
    """Every event the token's tenant can read, following cursors."""
    out: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            r = http.get("/v1/events", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            out += body["data"]
            cursor = body["next_cursor"]
            if not cursor:
                return out


def wait_checkpoint(url: str, token: str, size: int, timeout: float = 20.0) -> dict[str, Any]:
    """The latest checkpoint (JSON) once it covers ``size`` events; the signer runs every
    TRAILKEEP_CHECKPOINT_INTERVAL_SECONDS."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/v1/checkpoint", headers=headers, timeout=10)
        if r.status_code == 200 and r.json()["tree_size"] >= size:
            found: dict[str, Any] = r.json()
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no checkpoint covering {size} events: {r.text[:300]}")
        time.sleep(0.05)
