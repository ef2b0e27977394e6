"""``trailkeep proof EVENT_ID``: fetch an event's receipt, a C2SP tlog-proof, from a
server (``GET /v1/events/{id}/proof?format=tlog-proof``), to keep and check offline
later with ``trailkeep verify --proof FILE --key VKEY``.

Registered by cli.py. Exit status: 0 saved, 1 the request failed, 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from trailkeep.cli_search import DEFAULT_SERVER


def proof(
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="The event's id")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: standard output)")
    ] = None,
    size: Annotated[int | None, typer.Option(min=1, help="A checkpointed tree size")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant id (platform admin keys)")] = None,
    server: Annotated[str, typer.Option(envvar="TRAILKEEP_URL", help="Server URL")] = (
        DEFAULT_SERVER
    ),
    api_key: Annotated[
        str | None, typer.Option(envvar="TRAILKEEP_API_KEY", show_default=False)
    ] = None,
) -> None:
    """Save an event's receipt (C2SP tlog-proof with the event and signed checkpoint)."""
    import httpx

    from trailkeep.integrity.monitor import _error_text, _http_client

    if not server.startswith(("http://", "https://")):
        raise typer.BadParameter(
            f"{server!r} is not an http:// or https:// URL", param_hint="--server"
        )
    params: dict[str, str | int] = {"format": "tlog-proof"}
    if size is not None:
        params["size"] = size
    if tenant:
        params["tenant_id"] = tenant
    url = f"{server.rstrip('/')}/v1/events/{quote(event_id, safe='')}/proof"
    try:
        with _http_client(api_key, 30.0, None) as client:
            response = client.get(url, params=params)
    except httpx.HTTPError as exc:
        typer.echo(f"error: {server}: {exc} (is the server running?)", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        typer.echo(f"error: {_error_text(response.status_code, response.content)}", err=True)
        raise typer.Exit(1)
    if out is None:
        typer.echo(response.text, nl=False)
    else:
        out.write_bytes(response.content)
        typer.echo(f"saved the receipt of {event_id} to {out}", err=True)
