"""What the ``trailkeep`` subcommands share: their common options, the error exit and
the JSON printer (cli.py registers the commands; these modules import this one)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from trailkeep.kit.jsonutil import dumps

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory [env TRAILKEEP_DATA_DIR]")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="[env TRAILKEEP_DATABASE_URL]")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")]

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise (1: failed, 2: usage)."""
    _err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value).decode() + "\n")
