"""``trailkeep retention run`` (for cron) and ``trailkeep archive list|query|restore``.

Registered by cli.py. These open the database themselves, as ``trailkeep migrate`` does
(a run needs no server; on PostgreSQL one running run per tenant is enforced across
every process, the server's scheduler included). Progress goes to stderr, one line
per step; the result to stdout (``--json``: machine-readable). Exit status: 0 done, 1 a
run failed or a check did not pass, 2 usage error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from trailkeep.cli_options import DatabaseUrl, DataDir, JsonOut, fail, load_settings, print_json
from trailkeep.kit.timeutil import now_us

T = TypeVar("T")

retention_app = typer.Typer(help="Retention: run tenants' policies.", no_args_is_help=True)
archive_app = typer.Typer(
    help="Archives: list, query and restore pruned events.", no_args_is_help=True
)

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="One tenant (default: all)")]


def _with_retention(
    data_dir: Path | None, database_url: str | None, work: Callable[[Any], Awaitable[T]]
) -> T:
    """Run ``work(services)`` with the store, tenants and retention of the settings."""
    from trailkeep import logs
    from trailkeep.app import build_store
    from trailkeep.errors import TrailkeepError
    from trailkeep.integrity.signing_keys import load_log_key
    from trailkeep.retention.service import build_retention
    from trailkeep.tenants.service import TenantService

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    logs.configure("WARNING", sys.stderr)  # progress lines are printed by _progress

    async def run() -> T:
        store = build_store(settings)
        await store.start()
        try:
            tenants = TenantService(store)
            retention = build_retention(settings, store, load_log_key(settings).origin)
            return await work((tenants, retention))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except TrailkeepError as exc:
        raise fail(exc.message) from None


def _progress(tenant: str) -> Callable[[str, dict[str, Any]], None]:
    def show(step: str, figures: dict[str, Any]) -> None:
        shown = " ".join(f"{k}={v}" for k, v in figures.items() if v is not None)
        typer.echo(f"retention {tenant}: {step} {shown}", err=True)

    return show


@retention_app.command("run")
def run(
    tenant: TenantOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; delete nothing")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Run the retention policy of one tenant or of every tenant (for cron)."""
    from trailkeep.errors import Conflict
    from trailkeep.retention.service import run_json

    async def work(parts: Any) -> list[dict[str, Any]]:
        tenants, retention = parts
        chosen = [await tenants.get(tenant)] if tenant else await tenants.list(None, 100_000)
        out = []
        for record in chosen:
            if dry_run:
                out.append(await retention.dry_run(record))
                continue
            try:
                started = await retention.start(record, "cli")
            except Conflict as exc:
                out.append({"tenant_id": record.id, "state": "skipped", "error": exc.message})
                continue
            done = await retention.execute(started, record, _progress(record.id))
            out.append(run_json(done))
        return out

    results = _with_retention(data_dir, database_url, work)
    if json_out:
        print_json(results)
    for result in results:
        if not json_out:
            report = result if dry_run else (result.get("report") or {})
            state = "dry run" if dry_run else result["state"]
            typer.echo(
                f"{result['tenant_id']}: {state}: due {report.get('due', 0)},"
                f" deleted {report.get('deleted', 0)}, archived {report.get('archived', 0)}"
                + (" (legal hold)" if report.get("legal_hold") else "")
                + (f": {result['error']}" if result.get("error") else "")
            )
    if any(r.get("state") == "failed" for r in results):
        raise typer.Exit(1)


@archive_app.command("list")
def list_segments(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """The tenant's archive segments."""
    from trailkeep.retention.service import segment_json

    async def work(parts: Any) -> list[dict[str, Any]]:
        tenants, retention = parts
        await tenants.get(tenant)
        found, after = [], None
        while batch := await retention.segments(tenant, after, 1000):
            found += [segment_json(s) for s in batch]
            after = batch[-1].id
        return found

    segments = _with_retention(data_dir, database_url, work)
    if json_out:
        print_json(segments)
        return
    for seg in segments:
        typer.echo(
            f"{seg['id']}  {seg['state']:8}  seqs {seg['from_seq']}..{seg['to_seq'] - 1}"
            f"  {seg['rows']} events  {seg['destination']}:{seg['location']}"
        )


@archive_app.command("query")
def query(
    q: Annotated[str, typer.Option("--q", help="A query in the query language")] = "",
    tenant: TenantOpt = None,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="An archive folder (default: the configured local archive)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100,
    data_dir: DataDir = None,
) -> None:
    """Search archived events with the query language (DuckDB over the Parquet files,
    in place): one stored event per line, newest first."""
    from trailkeep.retention.archive_query import ArchiveQueryError, archive_files, query_archive

    root = folder
    if root is None:
        settings = load_settings(data_dir=data_dir)
        if settings.archive_destination != "local":
            raise fail(
                "the archive is in S3: copy the tenant's segment folders locally (e.g. `aws s3"
                " sync`) and pass --dir",
                2,
            )
        root = settings.resolved_archive_dir
    try:
        found = query_archive(archive_files(root, tenant), q, limit=limit, now_us=now_us())
    except ArchiveQueryError as exc:
        raise fail(str(exc), 2) from None
    for doc in found:
        print_json(doc)


@archive_app.command("restore")
def restore(
    segment_id: Annotated[str, typer.Argument(metavar="SEGMENT_ID")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Put an archive segment's events back into the hot store with their original
    seqs (each row checked against the log's leaf first)."""
    from trailkeep.retention.restore import restore_segment
    from trailkeep.retention.runner import RunFailed

    async def work(parts: Any) -> dict[str, Any]:
        tenants, retention = parts
        await tenants.get(tenant)
        try:
            return (await restore_segment(retention.ctx, tenant, segment_id)).to_json()
        except RunFailed as exc:
            raise fail(str(exc)) from None

    report = _with_retention(data_dir, database_url, work)
    if json_out:
        print_json(report)
    else:
        typer.echo(f"restored {report['restored']} of {report['rows']} events of {segment_id}")
