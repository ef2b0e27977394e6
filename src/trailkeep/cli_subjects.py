"""``trailkeep subject show|erase``: data-subject requests, as a client of a running server.

Registered by cli.py. Both call the API (``GET /v1/subjects/{id}``, ``POST
/v1/subjects/{id}/erase``) with an API key, so the server records the erasure in the
tenant's log and every process forgets the subject's key. Exit status: 0 done, 1 the
request failed (the server's error is printed), 2 usage error.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from trailkeep.cli_search import DEFAULT_SERVER

subject_app = typer.Typer(help="Data subjects: access reports and erasure.", no_args_is_help=True)

Server = Annotated[str, typer.Option(envvar="TRAILKEEP_URL", help="Server base URL")]
ApiKey = Annotated[
    str | None,
    typer.Option(envvar="TRAILKEEP_API_KEY", show_default=False, help="Bearer API key"),
]
Tenant = Annotated[
    str | None,
    typer.Option(show_default=False, help="Tenant id (needed with a platform admin key)"),
]
Subject = Annotated[str, typer.Argument(metavar="SUBJECT_ID", help="The data subject's id")]


def _call(method: str, server: str, path: str, api_key: str | None, tenant: str | None) -> None:
    import httpx

    from trailkeep.integrity.monitor import _error_text, _http_client

    if not server.startswith(("http://", "https://")):
        typer.echo(f"error: {server!r} is not an http:// or https:// URL", err=True)
        raise typer.Exit(2)
    if not api_key:
        typer.echo("error: an API key is required: --api-key or TRAILKEEP_API_KEY", err=True)
        raise typer.Exit(2)
    params = {"tenant_id": tenant} if tenant else {}
    try:
        with _http_client(api_key, 30.0, None) as client:
            response = client.request(method, server.rstrip("/") + path, params=params)
    except httpx.HTTPError as exc:
        typer.echo(f"error: {server}: {exc} (is the server running?)", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        typer.echo(f"error: {_error_text(response.status_code, response.content)}", err=True)
        raise typer.Exit(1)
    typer.echo(response.text)


@subject_app.command("show")
def show(
    subject_id: Subject,
    tenant: Tenant = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
) -> None:
    """Print what is held about a data subject (JSON): events, first/last seen, fields."""
    _call("GET", server, f"/v1/subjects/{quote(subject_id, safe='')}", api_key, tenant)


@subject_app.command("erase")
def erase(
    subject_id: Subject,
    tenant: Tenant = None,
    server: Server = DEFAULT_SERVER,
    api_key: ApiKey = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a data subject: destroy its data key, so its personal fields read [erased]."""
    if not yes:
        typer.confirm(f"Erase subject {subject_id!r}? This cannot be undone", abort=True)
    _call("POST", server, f"/v1/subjects/{quote(subject_id, safe='')}/erase", api_key, tenant)
