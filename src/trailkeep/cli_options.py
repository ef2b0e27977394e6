"""What the ``trailkeep`` subcommands share: their common options, the error exit and
the JSON printer (cli.py registers the commands; these modules import this one)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from trailkeep.config import ConfigError, Settings
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


def load_settings(**overrides: Any) -> Settings:
    """The settings (environment, then the given options); exit 1 naming the problem."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
        settings.check_secrets()
        settings.database()
    except (ValidationError, ConfigError) as exc:
        raise fail(f"invalid configuration: {exc}") from None
    return settings


def print_json(value: Any) -> None:
    sys.stdout.write(dumps(value).decode() + "\n")
