"""A bad database URL, a database that is down or missing, an unmigrated or newer
schema: each ends in one clear line and exit code 1 from the CLI, never a hang or a
traceback. (These name their database explicitly, so they run once, not per backend.)

``serve`` runs as a real process throughout (a server's start-up refusing), and so does
each command against a closed port (where a connect timeout could hang a process's exit);
the other cases run the same typer app in this process (a process costs about a second).
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests import backends
from tests.e2e.server import cli, cli_in_process, free_port

pytestmark = pytest.mark.postgres_only


def _closed_port_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/trailkeep"


@pytest.mark.parametrize("command", ["serve", "migrate", "init"])
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("closed-port", "Connection refused"),
        (backends.url_with_database(backends.ADMIN_URL, "trailkeep_no_such_db"), "does not exist"),
        ("mysql://u@127.0.0.1/db", "unsupported database URL"),
        ("postgresql://u@127.0.0.1:5432", "names no database"),
        ("postgresql://u@127.0.0.1:port/db", "malformed PostgreSQL URL"),
    ],
)
def test_bad_or_unreachable_database_is_one_clear_line(
    command: str, url: str, expected: str
) -> None:
    as_process = command == "serve" or url == "closed-port"
    url = _closed_port_url() if url == "closed-port" else url
    began = time.monotonic()
    proc = (cli if as_process else cli_in_process)(command, "--database-url", url, check=False)
    assert time.monotonic() - began < 15
    assert proc.returncode == 1, proc.stdout
    assert expected in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_serve_refuses_an_unmigrated_database_and_says_what_to_run() -> None:
    name = f"trailkeep_empty_{free_port()}"
    with psycopg.connect(backends.ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = backends.url_with_database(backends.ADMIN_URL, name)
        proc = cli("serve", "--database-url", url, check=False)
        assert proc.returncode == 1
        assert "run `trailkeep migrate`" in " ".join(proc.stderr.split())
        migrated = cli_in_process("migrate", "--database-url", url, "--json")
        assert migrated["from"] is None and migrated["to"]
        again = cli_in_process("migrate", "--database-url", url, "--json")
        assert again["from"] == again["to"] == migrated["to"]
    finally:
        with psycopg.connect(backends.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
