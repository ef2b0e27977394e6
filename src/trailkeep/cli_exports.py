"""``trailkeep export``: start an export on a server, follow it with a progress bar, and
unpack its archive into a folder that ``trailkeep verify`` checks; and ``export list |
status | download | cancel``.

Registered by cli.py. A client of the API (``/v1/exports``) with an API key of a
tenant_admin or auditor, so the export is made, masked and recorded by the server
exactly as through HTTP. Exit status: 0 done, 1 the export or a request failed (the
server's error is printed), 2 usage error.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from trailkeep.cli_options import fail
from trailkeep.cli_search import DEFAULT_SERVER

if TYPE_CHECKING:
    import httpx

export_app = typer.Typer(
    help="Exports: CSV, JSONL or Parquet with a verification bundle.",
    invoke_without_command=True,
)
_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)

Server = Annotated[str, typer.Option(envvar="TRAILKEEP_URL", help="Server base URL")]
ApiKey = Annotated[
    str | None,
    typer.Option(envvar="TRAILKEEP_API_KEY", show_default=False, help="Bearer API key"),
]
Tenant = Annotated[
    str | None, typer.Option(show_default=False, help="Tenant id (with a platform admin key)")
]
JobId = Annotated[str, typer.Argument(metavar="EXPORT_ID")]
OutDir = Annotated[Path, typer.Option("--out", help="Folder to unpack the archive into")]


class _Api:
    def __init__(self, server: str, api_key: str | None, tenant: str | None) -> None:
        from trailkeep.integrity.monitor import _http_client

        if not server.startswith(("http://", "https://")):
            raise fail(f"{server!r} is not an http:// or https:// URL", 2)
        if not api_key:
            raise fail("an API key is required: --api-key or TRAILKEEP_API_KEY", 2)
        self.base = server.rstrip("/")
        self.tenant = tenant
        self.http = _http_client(api_key, 60.0, None)

    def call(self, method: str, path: str, body: Any = None, ok: int = 200) -> httpx.Response:
        import httpx

        from trailkeep.integrity.monitor import _error_text

        params = {"tenant_id": self.tenant} if self.tenant and body is None else {}
        try:
            response = self.http.request(
                method, self.base + path, params=params, json=body, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise fail(f"{self.base}: {exc} (is the server running?)") from None
        if response.status_code not in (ok, 307):
            raise fail(_error_text(response.status_code, response.content) + _fields(response))
        return response


def _fields(response: httpx.Response) -> str:
    """What a 422 names: `` (format: Input should be 'jsonl', 'csv' or 'parquet')``."""
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return ""
    if not isinstance(details, list):
        return ""
    named = [
        f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
        for d in details
        if isinstance(d, dict)
    ]
    return f" ({'; '.join(named)})" if named else ""


def _download(api: _Api, job: dict[str, Any], out: Path) -> Path:
    """Fetch the archive (streamed; from S3 through its link, without our credential)
    and unpack it into ``out``; returns the bundle folder."""
    import httpx

    out.mkdir(parents=True, exist_ok=True)
    name: str = job["archive"]["name"]
    archive = out / name
    first = api.call("GET", f"/v1/exports/{job['id']}/download")
    partial = archive.with_suffix(".zip.part")
    if first.status_code == 307:
        with httpx.stream("GET", first.headers["location"], timeout=60) as r:
            if r.status_code != 200:
                raise fail(f"the archive's link answered HTTP {r.status_code}")
            with partial.open("wb") as handle:
                for block in r.iter_bytes(1 << 20):
                    handle.write(block)
    else:
        partial.write_bytes(first.content)
    partial.replace(archive)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        if any(".." in n.split("/") or n.startswith("/") for n in names):
            raise fail(f"{archive} holds unsafe paths; not unpacked")
        zf.extractall(out)
    return out / name.removesuffix(".zip")


def _follow(api: _Api, job: dict[str, Any], quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, disable=quiet, transient=True) as bar:
        span = job["request"]["to_seq"] - job["request"]["from_seq"]
        task = bar.add_task(f"export {job['id']}", total=span)
        while job["state"] in ("queued", "running"):
            time.sleep(0.25)
            job = api.call("GET", f"/v1/exports/{job['id']}").json()
            progress = job["progress"]
            bar.update(task, completed=int(progress["fraction"] * span))
            bar.update(task, description=f"{job['state']}: {progress['written']:,} written")
    return job


@export_app.callback()
def export(
    ctx: typer.Context,
    q: Annotated[str, typer.Option("--q", help="Query language; empty: every event")] = "",
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or parquet")] = "jsonl",
    from_seq: Annotated[int | None, typer.Option(min=0, help="First seq")] = None,
    to_seq: Annotated[int | None, typer.Option(min=1, help="One past the last seq")] = None,
    from_time: Annotated[str | None, typer.Option(help="occurred_at from (RFC 3339)")] = None,
    to_time: Annotated[str | None, typer.Option(help="occurred_at before (RFC 3339)")] = None,
    destination: Annotated[str | None, typer.Option(help="local or s3")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Unpack the archive here")] = None,
    tenant: Tenant = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
) -> None:
    """Export a tenant's events (with --out), or manage exports (list, status, ...).

    trailkeep export --q 'action:user.*' --format parquet --out DIR

    starts the export on the server, shows its progress, downloads the archive and
    unpacks it into DIR; then check it with trailkeep verify DIR/<folder> --key VKEY.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = (server, api_key, tenant)
        return
    if out is None:
        raise fail("give --out DIR for the archive (or a command: list, status, ...)", 2)
    body = {
        key: value
        for key, value in {
            "q": q,
            "format": fmt,
            "from_seq": from_seq,
            "to_seq": to_seq,
            "from_time": from_time,
            "to_time": to_time,
            "destination": destination,
            "tenant_id": tenant,
        }.items()
        if value is not None
    }
    api = _Api(server, api_key, tenant)
    job = _follow(api, api.call("POST", "/v1/exports", body, ok=202).json(), quiet)
    if job["state"] != "done":
        raise fail(f"export {job['id']} {job['state']}: {job['error'] or 'no reason given'}")
    folder = _download(api, job, out)
    _out.print(f"exported {job['progress']['written']:,} events to {folder}")
    _out.print(f"verify with: trailkeep verify {folder} --key VKEY")


def _api(ctx: typer.Context) -> _Api:
    server, api_key, tenant = ctx.obj
    return _Api(server, api_key, tenant)


@export_app.command("list")
def list_exports(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The tenant's export jobs, newest first."""
    page = _api(ctx).call("GET", "/v1/exports").json()
    if json_out:
        typer.echo(orjson.dumps(page, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("id", "state", "format", "written", "created", "error")
    for job in page["data"]:
        table.add_row(
            job["id"],
            job["state"],
            job["request"]["format"],
            f"{job['progress']['written']:,}",
            job["created_at"],
            job["error"] or "",
        )
    _out.print(table)


@export_app.command("status")
def status(ctx: typer.Context, export_id: JobId) -> None:
    """One export job (JSON): state, progress, files, error."""
    typer.echo(_api(ctx).call("GET", f"/v1/exports/{export_id}").text)


@export_app.command("download")
def download(ctx: typer.Context, export_id: JobId, out: OutDir) -> None:
    """Download a finished export's archive and unpack it into --out."""
    api = _api(ctx)
    job = api.call("GET", f"/v1/exports/{export_id}").json()
    if job["state"] != "done":
        raise fail(f"export {export_id} is {job['state']}, not done")
    _out.print(f"unpacked into {_download(api, job, out)}")


@export_app.command("cancel")
def cancel(ctx: typer.Context, export_id: JobId) -> None:
    """Cancel a queued or running export job."""
    typer.echo(_api(ctx).call("DELETE", f"/v1/exports/{export_id}").text)
