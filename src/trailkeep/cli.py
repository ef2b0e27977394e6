"""The ``trailkeep`` command: serve, init, tenant and key management."""

from __future__ import annotations

import asyncio
import gc
import re
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from trailkeep.auth.principal import Role
from trailkeep.auth.service import AuthService
from trailkeep.cli_exports import export_app
from trailkeep.cli_options import DatabaseUrl, DataDir, JsonOut, load_settings, print_json
from trailkeep.cli_proof import proof as proof_command
from trailkeep.cli_retention import archive_app, retention_app
from trailkeep.cli_search import search as search_command
from trailkeep.cli_subjects import subject_app
from trailkeep.cli_verify import verify as verify_command
from trailkeep.config import ConfigError, Settings
from trailkeep.errors import TrailkeepError
from trailkeep.kit.jsonutil import dumps
from trailkeep.store.protocol import Store

if TYPE_CHECKING:
    from trailkeep.store.migrations.runner import MigrationResult

app = typer.Typer(help="Trailkeep: a multi-tenant, tamper-evident audit log.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from trailkeep.app import build_store

    async def run() -> T:
        store = build_store(settings)
        await store.start()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except TrailkeepError as exc:
        raise _fail(exc.message) from None
    except OSError as exc:
        raise _fail(f"cannot open the database: {exc}") from None


_print_json = print_json


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="[env TRAILKEEP_HOST] default 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="[env TRAILKEEP_PORT] default 8000")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    env: Annotated[str | None, typer.Option(help="development | production | test")] = None,
) -> None:
    """Run the HTTP API server."""
    import uvicorn

    from trailkeep.app import create_app
    from trailkeep.store.migrations.runner import SchemaError, check_schema

    settings = load_settings(
        host=host, port=port, data_dir=data_dir, database_url=database_url, env=env
    )
    # Checked here too (the store checks again at start-up) to fail with one clear line
    # instead of a server start-up traceback: unreachable, unmigrated or newer schema.
    try:
        check_schema(settings.database(), timeout=settings.pg_connect_timeout_seconds)
    except SchemaError as exc:
        raise _fail(str(exc)) from None
    try:
        application = create_app(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # Process-wide, so set by the server command, not by create_app.
    sys.setswitchinterval(settings.gil_switch_interval_us / 1_000_000)
    # Everything loaded so far lives as long as the process: move it out of the
    # collector's sight, so full collections under load scan only request garbage.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
        # Trailkeep does not use the client address; skip parsing X-Forwarded-*.
        proxy_headers=False,
    )


def _migrate(settings: Settings) -> MigrationResult:
    from trailkeep.store.migrations.runner import SchemaError, upgrade

    try:
        return upgrade(settings.database())
    except SchemaError as exc:
        raise _fail(str(exc)) from None


@app.command()
def migrate(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Create the schema or bring it up to date (safe to run again; idempotent)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    result = _migrate(settings)
    database = settings.database().redacted
    if json_out:
        _print_json({"database": database, "from": result.before, "to": result.after})
    elif result.before == result.after:
        console.print(f"{database}: already at revision {result.after}")
    else:
        console.print(f"{database}: migrated from {result.before or 'empty'} to {result.after}")


@app.command()
def init(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    demo: Annotated[bool, typer.Option(help="Also create a demo tenant with keys")] = False,
    port: Annotated[int, typer.Option(help="Port used in the printed curl examples")] = 8000,
    log_host: Annotated[
        str | None,
        typer.Option(help="[env TRAILKEEP_LOG_HOST] names a new signing key: origins HOST/t/ID"),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Migrate the database, create the signing key and the platform admin key (printed
    once), optionally a demo tenant."""
    from trailkeep.bootstrap import initialize
    from trailkeep.integrity.signing_keys import ensure_log_key
    from trailkeep.privacy.key_provider import ensure_key_file

    settings = load_settings(data_dir=data_dir, database_url=database_url, log_host=log_host)
    _migrate(settings)
    try:
        key, created = ensure_log_key(settings)
        privacy_key = ensure_key_file(settings)
    except (ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    result = _with_store(settings, lambda store: initialize(store, settings, demo=demo))
    if json_out:
        _print_json(
            {
                "database": result.database,
                "admin_key": result.admin_key,
                "demo": result.demo,
                "log_host": key.host,
                "signing_key_file": str(created) if created else None,
                "privacy_key_file": str(privacy_key) if privacy_key else None,
            }
        )
        return
    console.print(f"database: {result.database}")
    if created is not None:
        console.print(f"checkpoint signing key created: {created} (mode 0600; back it up)")
    if privacy_key is not None:
        console.print(
            f"privacy master key created: {privacy_key} (mode 0600; back it up: without it"
            " no encrypted field can be read)"
        )
    console.print(f"log host: {key.host} (tenant logs are {key.host}/t/<tenant_id>)")
    if result.admin_key:
        typer.echo(f"platform admin key (shown once): {result.admin_key}")
    for role, token in result.demo.items():
        typer.echo(f"demo {role}: {token}")
    if result.demo:
        _print_tour(port, result.demo)


def _print_tour(port: int, demo: dict[str, str]) -> None:
    base = f"http://127.0.0.1:{port}"
    typer.echo("\nTry it (the service starts below):")
    typer.echo(
        f"  curl -s -X POST {base}/v1/events -H 'Authorization: Bearer {demo['writer']}'"
        " -H 'Content-Type: application/json'"
        """ -d '{"action":"user.login","actor":{"id":"u_1","name":"Ada"}}'"""
    )
    reader = demo["reader"]
    typer.echo(f"  curl -s '{base}/v1/events?action=user.*' -H 'Authorization: Bearer {reader}'")
    typer.echo(f"  curl -s {base}/v1/tenants -H 'Authorization: Bearer {demo['platform_admin']}'")
    typer.echo(f"API docs: {base}/docs\n")


@tenant_app.command("create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(help="lowercase slug, e.g. acme")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    retention_days: Annotated[int | None, typer.Option(min=1)] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Create a tenant."""
    from trailkeep.tenants.models import TenantCreate
    from trailkeep.tenants.service import TenantService, to_out

    try:
        body = TenantCreate(id=tenant_id, display_name=name, retention_days=retention_days)
    except ValidationError as exc:
        raise _fail(f"invalid tenant: {exc.errors()[0]['msg']} ({tenant_id!r})") from None
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    record = _with_store(settings, lambda store: TenantService(store).create(body, "cli"))
    out = to_out(record).model_dump()
    if json_out:
        _print_json(out)
    else:
        console.print(f"created tenant [bold]{out['id']}[/bold] ({out['display_name']})")


def _update_tenant(settings: Settings, tenant_id: str, body: Any, json_out: bool) -> None:
    from trailkeep.errors import TrailkeepError
    from trailkeep.tenants.service import TenantService, to_out

    async def work(store: Store) -> Any:
        try:
            return await TenantService(store).update(tenant_id, body, "cli")
        except TrailkeepError as exc:
            raise _fail(exc.message) from None

    out = to_out(_with_store(settings, work)).model_dump()
    if json_out:
        _print_json(out)
    else:
        hold = out["legal_hold_info"]
        console.print(
            f"tenant [bold]{out['id']}[/bold]: retention {dumps(out['retention']).decode()}"
        )
        console.print(f"legal hold: {'on (' + str(hold['reason']) + ')' if hold else 'off'}")


def _days_map(values: list[str], what: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        name, sep, days = value.partition("=")
        if not sep or not days.isdigit():
            raise _fail(f"--{what} takes NAME=DAYS, e.g. DEBUG=7; not {value!r}")
        found[name] = int(days)
    return found


@tenant_app.command("retention")
def tenant_retention(
    tenant_id: Annotated[str, typer.Argument(help="The tenant")],
    default_days: Annotated[
        int | None, typer.Option(help="Days an event is kept (omit: forever)")
    ] = None,
    severity: Annotated[
        list[str] | None, typer.Option("--severity", help="SEVERITY=DAYS, repeatable")
    ] = None,
    action: Annotated[
        list[str] | None, typer.Option("--action", help="ACTION=DAYS (or prefix.*=DAYS)")
    ] = None,
    archive: Annotated[bool, typer.Option(help="Archive events before deleting them")] = True,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Set a tenant's retention policy (replaces the whole policy; docs/retention.md)."""
    from trailkeep.tenants.models import TenantUpdate

    policy = {
        "default_days": default_days,
        "by_severity": _days_map(severity or [], "severity"),
        "by_action": _days_map(action or [], "action"),
        "archive": archive,
    }
    try:
        body = TenantUpdate.model_validate({"retention": policy})
    except ValidationError as exc:
        raise _fail(f"invalid policy: {exc.errors()[0]['msg']}") from None
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    _update_tenant(settings, tenant_id, body, json_out)


@tenant_app.command("hold")
def tenant_hold(
    tenant_id: Annotated[str, typer.Argument(help="The tenant")],
    reason: Annotated[str | None, typer.Option(help="Why (required to set a hold)")] = None,
    off: Annotated[bool, typer.Option("--off", help="Lift the hold")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Set or lift a tenant's legal hold (while on, retention deletes nothing)."""
    from trailkeep.tenants.models import TenantUpdate

    try:
        body = TenantUpdate.model_validate({"legal_hold": {"on": not off, "reason": reason}})
    except ValidationError as exc:
        raise _fail(f"invalid legal hold: {exc.errors()[0]['msg']}") from None
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    _update_tenant(settings, tenant_id, body, json_out)


@tenant_app.command("list")
def tenant_list(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: JsonOut = False
) -> None:
    """List tenants."""
    from trailkeep.tenants.service import TenantService, to_out

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    records = _with_store(settings, lambda store: TenantService(store).list(None, 10_000))
    rows = [to_out(r).model_dump() for r in records]
    if json_out:
        _print_json(rows)
        return
    table = Table("id", "display name", "retention days", "legal hold", "created")
    for r in rows:
        table.add_row(
            r["id"],
            r["display_name"],
            str(r["retention_days"] or "-"),
            "yes" if r["legal_hold"] else "no",
            r["created_at"],
        )
    console.print(table)


@key_app.command("create")
def key_create(
    role: Annotated[
        str, typer.Option(help="admin (platform), tenant_admin, writer, reader or auditor")
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant id (omit for role admin)")] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Create an API key; the secret is printed once."""
    from trailkeep.auth.routes import key_out

    try:
        parsed = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None
    if (parsed == Role.ADMIN) != (tenant is None):
        raise _fail("role admin takes no --tenant; every other role needs --tenant")
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def work(store: Store) -> Any:
        if tenant is not None and await store.get_tenant(tenant) is None:
            raise _fail(f"tenant '{tenant}' not found")
        return await AuthService(store, settings).create_key(tenant, parsed, name)

    created = _with_store(settings, work)
    out = {**key_out(created.record), "token": created.token}
    if json_out:
        _print_json(out)
    else:
        console.print(f"key {out['id']} ({out['role']}) created; secret, shown once:")
        console.print(created.token, highlight=False)


@key_app.command("list")
def key_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant id (omit for platform keys)")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """List API keys (never their secrets)."""
    from trailkeep.auth.routes import key_out

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    records = _with_store(settings, lambda store: store.list_keys(tenant))
    rows = [key_out(r) for r in records]
    if json_out:
        _print_json(rows)
        return
    table = Table("id", "tenant", "role", "name", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            r["id"],
            r["tenant_id"] or "(platform)",
            r["role"],
            r["name"],
            r["created_at"],
            r["last_used_at"] or "-",
            r["revoked_at"] or "-",
        )
    console.print(table)


@key_app.command("public")
def key_public(
    tenant: Annotated[str, typer.Option(help="The tenant whose log the key verifies")],
    data_dir: DataDir = None,
    json_out: JsonOut = False,
    legacy: Annotated[
        bool, typer.Option("--legacy", help="The key of checkpoints from before per-tenant keys")
    ] = False,
) -> None:
    """Print the verifier key (C2SP vkey) of a tenant's checkpoints, for its auditors."""
    from trailkeep.integrity.signing_keys import load_log_key
    from trailkeep.tenants.models import TENANT_ID_PATTERN

    if not re.fullmatch(TENANT_ID_PATTERN, tenant):
        raise _fail(f"tenant id {tenant[:80]!r} is not a lowercase slug")
    settings = load_settings(data_dir=data_dir)
    try:
        key = load_log_key(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    vkey = key.legacy_vkey_for(tenant) if legacy else key.vkey_for(tenant)
    if json_out:
        _print_json(
            {"origin": key.origin(tenant), "vkey": vkey, "legacy_vkey": key.legacy_vkey_for(tenant)}
        )
    else:
        typer.echo(vkey)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the 16 hex digits after tk_)")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Revoke an API key (servers notice within TRAILKEEP_AUTH_CACHE_SECONDS)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    _with_store(settings, lambda store: AuthService(store, settings).revoke_key(key_id, None))
    if json_out:
        _print_json({"id": key_id, "revoked": True})
    else:
        console.print(f"revoked key {key_id}")


app.command("verify")(verify_command)
app.add_typer(subject_app, name="subject")
app.add_typer(export_app, name="export")
app.add_typer(retention_app, name="retention")
app.add_typer(archive_app, name="archive")
app.command("proof")(proof_command)
app.command("search", context_settings={"ignore_unknown_options": True})(search_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
