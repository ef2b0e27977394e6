"""The trailkeep CLI as a user runs it: help, init, tenants, keys, JSON output, errors.

What a command does and prints goes through cli_in_process (the same typer app, argv and
environment, in this process: a process costs about a second); a server's start-up, and
its refusals, through cli(), a real ``trailkeep serve`` process."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, cli, cli_in_process
from trailkeep.integrity.note import parse_verifier


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
@pytest.mark.parametrize(
    "args",
    [
        (),
        ("serve",),
        ("init",),
        ("tenant", "create"),
        ("tenant", "list"),
        ("key", "create"),
        ("key", "list"),
        ("key", "revoke"),
        ("key", "public"),
        ("verify",),
    ],
)
def test_every_command_has_help(args: tuple[str, ...]) -> None:
    proc = cli_in_process(*args, "--help")
    assert proc.returncode == 0
    assert "Usage" in proc.stdout


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
def test_init_is_idempotent_and_demo_keys_work(tmp_path: Path) -> None:
    first = cli_in_process("init", "--data-dir", str(tmp_path), "--demo", "--json")
    assert first["admin_key"].startswith("tk_")
    assert set(first["demo"]) == {"platform_admin", "tenant_admin", "writer", "reader", "auditor"}
    again = cli_in_process("init", "--data-dir", str(tmp_path), "--demo", "--json")
    assert again["admin_key"] is None  # shown once only
    assert again["demo"] == first["demo"]  # the demo credentials are shown again
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
    human = cli_in_process("init", "--data-dir", str(tmp_path), "--demo")
    assert "curl" in human.stdout and first["demo"]["writer"] in human.stdout


def test_tenant_and_key_lifecycle(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path))
    cli_in_process("init", *d)
    created = cli_in_process(
        "tenant", "create", "acme", "--name", "Acme Inc", "--retention-days", "30", *d, "--json"
    )
    assert created["id"] == "acme" and created["retention_days"] == 30
    dup = cli_in_process("tenant", "create", "acme", *d, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = cli_in_process("tenant", "create", "Not A Slug!", *d, check=False)
    assert bad.returncode == 1 and "invalid tenant" in bad.stderr
    assert [t["id"] for t in cli_in_process("tenant", "list", *d, "--json")] == ["acme"]
    assert "Acme Inc" in cli_in_process("tenant", "list", *d).stdout

    key = cli_in_process("key", "create", "--role", "writer", "--tenant", "acme", *d, "--json")
    assert key["token"].startswith(f"tk_{key['id']}_")
    listed = cli_in_process("key", "list", "--tenant", "acme", *d, "--json")
    assert [k["id"] for k in listed] == [key["id"]]
    assert "token" not in listed[0] and "secret_hash" not in listed[0]
    assert cli_in_process("key", "revoke", key["id"], *d, "--json") == {
        "id": key["id"],
        "revoked": True,
    }
    assert (
        cli_in_process("key", "list", "--tenant", "acme", *d, "--json")[0]["revoked_at"] is not None
    )
    again = cli_in_process("key", "revoke", key["id"], *d, check=False)
    assert again.returncode == 1 and "no such active API key" in again.stderr

    no_tenant = cli_in_process(
        "key", "create", "--role", "writer", "--tenant", "ghost", *d, check=False
    )
    assert no_tenant.returncode == 1 and "not found" in no_tenant.stderr
    bad_role = cli_in_process(
        "key", "create", "--role", "root", "--tenant", "acme", *d, check=False
    )
    assert bad_role.returncode == 1 and "unknown role" in bad_role.stderr


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
def test_keys_made_by_the_cli_work_against_a_running_server(
    server: Server, seeded: dict[str, str]
) -> None:
    server.start()
    r = httpx.post(
        f"{server.url}/v1/events",
        json={"action": "a.b", "actor": {"id": "u"}},
        headers={"Authorization": f"Bearer {seeded['a_writer']}"},
    )
    assert r.status_code == 201
    key_id = seeded["a_writer"].split("_")[1]
    cli_in_process("key", "revoke", key_id, "--data-dir", str(server.data_dir))
    # The server caches key lookups for TRAILKEEP_AUTH_CACHE_SECONDS (2 s by default).
    time.sleep(2.2)
    r = httpx.post(
        f"{server.url}/v1/events",
        json={"action": "a.b", "actor": {"id": "u"}},
        headers={"Authorization": f"Bearer {seeded['a_writer']}"},
    )
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
def test_production_refuses_default_secret(server: Server) -> None:
    proc = cli(
        "serve",
        "--data-dir",
        str(server.data_dir),
        "--port",
        str(server.port),
        env={"TRAILKEEP_ENV": "production"},
        check=False,
    )
    assert proc.returncode != 0
    assert "TRAILKEEP_SECRET_KEY" in proc.stderr
    ok = {"TRAILKEEP_ENV": "production", "TRAILKEEP_SECRET_KEY": "x" * 40}
    cli_in_process("migrate", "--data-dir", str(server.data_dir))
    server.start(extra_env=ok)
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"


@pytest.mark.sqlite_only
def test_serve_refuses_a_missing_database_and_says_what_to_run(server: Server) -> None:
    proc = cli("serve", "--data-dir", str(server.data_dir), check=False)
    assert proc.returncode == 1
    assert "run `trailkeep migrate`" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


@pytest.mark.sqlite_only
def test_bad_database_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = cli_in_process("init", "--data-dir", str(blocker / "sub"), check=False)
    assert proc.returncode == 1
    assert "error" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
def test_init_creates_the_signing_key_once_and_key_public_prints_it(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path))
    first = cli_in_process("init", *d, "--log-host", "audit.example.com", "--json")
    key_file = tmp_path / "signing.key"
    assert first["signing_key_file"] == str(key_file) and first["log_host"] == "audit.example.com"
    assert key_file.stat().st_mode & 0o777 == 0o600
    secret = key_file.read_bytes()
    again = cli_in_process("init", *d, "--json")
    assert again["signing_key_file"] is None and key_file.read_bytes() == secret
    assert again["log_host"] == "audit.example.com", "the key names the host for good"
    printed = cli_in_process("key", "public", "--tenant", "acme", *d).stdout.strip()
    verifier = parse_verifier(printed)
    assert verifier.name == "audit.example.com/t/acme"
    assert "PRIVATE" not in printed
    as_json = cli_in_process("key", "public", "--tenant", "acme", *d, "--json")
    legacy = cli_in_process("key", "public", "--tenant", "acme", "--legacy", *d).stdout.strip()
    assert as_json == {"origin": "audit.example.com/t/acme", "vkey": printed, "legacy_vkey": legacy}
    assert legacy != printed and parse_verifier(legacy).name == "audit.example.com/t/acme"
    moved = cli_in_process(
        "key", "public", "--tenant", "acme", *d, env={"TRAILKEEP_LOG_HOST": "x.org"}, check=False
    )
    assert moved.returncode == 1 and "cannot change" in " ".join(moved.stderr.split())
    bad = cli_in_process("key", "public", "--tenant", "Not A Slug", *d, check=False)
    assert bad.returncode == 1 and "slug" in bad.stderr


@pytest.mark.sqlite_only  # the backend plays no part: once is enough
@pytest.mark.parametrize("key_text", [None, "garbage\n", "PRIVATE+KEY+a b+00000000+AQ==\n"])
def test_serve_refuses_to_start_without_a_usable_signing_key(
    tmp_path: Path, key_text: str | None
) -> None:
    d = ("--data-dir", str(tmp_path))
    cli_in_process("migrate", *d)
    if key_text is not None:
        (tmp_path / "signing.key").write_text(key_text)
    proc = cli("serve", *d, "--port", "1", check=False)
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert ("run `trailkeep init`" if key_text is None else "is not usable") in message
    assert "Traceback" not in proc.stderr
    assert key_text is None or key_text.strip() not in proc.stderr, "the key is never echoed"
