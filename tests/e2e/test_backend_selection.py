"""What `make test` does about PostgreSQL: without a server it runs the SQLite half and
says plainly that the PostgreSQL half was skipped, and why; under CI=true it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import free_port

# Runs pytest itself; once is enough.
pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parents[2]


def _pytest_without_postgres(ci: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRAILKEEP_TEST_PG_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/test",
        "CI": ci,
    }
    env.pop("TRAILKEEP_DATABASE_URL", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/integration/test_late_events.py::test_an_event_for_an_old_month_still_lands",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_postgres_the_half_is_skipped_and_said_so() -> None:
    proc = _pytest_without_postgres("")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 passed, 1 skipped" in proc.stdout
    assert "PostgreSQL half of the suite was SKIPPED" in proc.stdout
    assert "no PostgreSQL server answers" in proc.stdout


def test_under_ci_a_missing_postgres_fails() -> None:
    proc = _pytest_without_postgres("true")
    assert proc.returncode != 0
    assert "CI=true and the PostgreSQL half cannot run" in proc.stdout
