"""``trailkeep verify``: the auditor's offline check of an export, and the log monitor.

Registered by cli.py. Imports of the verification code are deferred to the call so that
``trailkeep --help`` and the other commands do not pay for them. Exit codes: 0 verified,
1 not verified (a finding, or an input that cannot be checked), 2 usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from trailkeep.integrity.monitor import MonitorResult
    from trailkeep.integrity.verify_report import Report
    from trailkeep.integrity.verify_tiles import FetchTile

__all__ = ["verify"]

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _usage(message: str, hint: str) -> NoReturn:
    # typer.BadParameter is a usage error of typer's own (vendored) click: exit status 2.
    raise typer.BadParameter(message, param_hint=hint)


def _emit_error(message: str, json_out: bool, mode: str) -> typer.Exit:
    if json_out:
        _print_json({"ok": False, "mode": mode, "error": message})
    else:
        _err.print(Text.assemble(("error: ", "red"), message))
    return typer.Exit(1)


def _print_json(value: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _check_usage(events: str | None, server: str | None, given: dict[str, bool]) -> None:
    """Offline and monitor mode take different options; mixing them is a usage error."""
    offline_only = ("--checkpoint", "--tiles", "--any-order")
    monitor_only = ("--since", "--init", "--update", "--tenant")
    if given["--proof"]:
        if events is not None or server is not None or given["--checkpoint"]:
            _usage("--proof checks one receipt: no EVENTS, --server or --checkpoint", "--proof")
        return
    if given["--event"]:
        _usage("only goes with --proof", "--event")
    if server is None:
        if events is None:
            _usage("give EVENTS.jsonl (offline check) or --server URL (monitor)", "EVENTS.jsonl")
        wrong = [name for name in monitor_only if given[name]]
        if wrong:
            _usage("only goes with --server (the monitor)", ", ".join(wrong))
        if given["bundle"]:
            if given["--checkpoint"] or given["--tiles"]:
                _usage("an export bundle carries its own checkpoint and proofs", "--checkpoint")
            return
        if not given["--checkpoint"]:
            _usage("the offline check needs the signed checkpoint", "--checkpoint")
    else:
        if events is not None:
            _usage("give EVENTS.jsonl or --server, not both", "EVENTS.jsonl")
        wrong = [name for name in offline_only if given[name]]
        if wrong:
            _usage("only goes with EVENTS.jsonl (the offline check)", ", ".join(wrong))
        if not given["--since"]:
            _usage("--server needs the saved checkpoint (add --init on the first run)", "--since")
        if not server.startswith(("http://", "https://")):
            _usage(f"{server!r} is not an http:// or https:// URL", "--server")


def verify(
    events: Annotated[
        str | None,
        typer.Argument(
            metavar="EVENTS.jsonl",
            help="Exported events, one per line ('-': stdin), or an export bundle (folder or zip)",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Signed checkpoint note (or GET /v1/checkpoint JSON)")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="The tenant's verifier key (vkey), or a file")
    ] = None,
    tiles: Annotated[
        str | None, typer.Option(help="tlog-tiles directory or URL prefix, to locate changes")
    ] = None,
    any_order: Annotated[
        bool, typer.Option("--any-order", help="Accept events in any seq order")
    ] = False,
    server: Annotated[str | None, typer.Option(help="Monitor this server (base URL)")] = None,
    since: Annotated[Path | None, typer.Option(help="The saved checkpoint to check from")] = None,
    init: Annotated[
        bool, typer.Option("--init", help="No saved checkpoint yet: trust the server's (TOFU)")
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", help="Save the new checkpoint to --since when verified")
    ] = False,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant id, for platform admin API keys")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TRAILKEEP_API_KEY", show_default=False, help="Bearer API key"),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="HTTP timeout, seconds")] = 30.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON report")] = False,
    proof: Annotated[
        Path | None, typer.Option(help="A receipt (C2SP tlog-proof) of one event to check")
    ] = None,
    stale_after: Annotated[
        float, typer.Option(min=0, help="Monitor: warn when unsigned events wait this long, s")
    ] = 60.0,
    sample: Annotated[
        int, typer.Option(min=0, help="Monitor: check the newest N stored events against proofs")
    ] = 0,
    event: Annotated[
        Path | None, typer.Option(help="With --proof: the event, if the receipt lacks it")
    ] = None,
) -> None:
    """Verify a tenant's audit log: an export offline, or a live server.

    [bold]Export bundle[/bold]: trailkeep verify EXPORT_DIR_OR_ZIP --key VKEY

    Checks an export of GET /v1/exports/{id}/download (docs/exports.md): every file
    against manifest.json, the bundled checkpoint's signature, and every row (JSONL,
    CSV or Parquet) against the proofs: complete for a seq range, each event proven
    for a filtered export. Problems name the file, row and seq.

    [bold]Receipt[/bold]: trailkeep verify --proof EVENT.tlog-proof --key VKEY

    Checks one event's C2SP tlog-proof (GET /v1/events/{id}/proof?format=tlog-proof,
    or trailkeep proof): the checkpoint's signature, then the event (in the receipt's
    extra line, or --event FILE) at its index under the signed root.

    [bold]Offline[/bold]: trailkeep verify EVENTS.jsonl --checkpoint CHECKPOINT --key VKEY

    Checks every event of the export (one stored event per line, as GET /v1/events/{id}
    returns it; '-' reads standard input) against a signed checkpoint: the checkpoint's
    signature and origin, then every seq 0..size-1 present exactly once, in order, and
    hashing to the signed root. Lines that are not events, events of another tenant,
    duplicate, missing and out-of-order seqs are named by line and seq. Events past the
    checkpoint are listed as not verified. A root mismatch alone cannot say which event
    changed: --tiles (a tlog-tiles directory, or a URL such as
    https://HOST/v1/tenants/T/log/) locates it, after checking the tiles themselves
    against the signed root.

    [bold]Monitor[/bold]: trailkeep verify --server URL --since SAVED.txt --key VKEY [--update]

    Fetches the server's latest signed checkpoint and checks, with a consistency proof,
    that the log only grew since the saved checkpoint: not shrunk, forked or rewritten.
    --update then saves the new checkpoint (atomically) for the next run. The first run
    needs --init: it trusts the server's current checkpoint (trust on first use) and
    saves it to --since.

    Exit status: 0 verified, 1 not verified or could not be checked, 2 usage error.
    """
    given = {
        "--checkpoint": checkpoint is not None,
        "--tiles": tiles is not None,
        "--any-order": any_order,
        "--since": since is not None,
        "--init": init,
        "--update": update,
        "--tenant": tenant is not None,
        "bundle": events not in (None, "-") and _is_bundle(Path(str(events))),
        "--proof": proof is not None,
        "--event": event is not None,
    }
    _check_usage(events, server, given)
    if key is None:
        _usage("the tenant's verifier key (vkey), or a file holding it, is required", "--key")
    mode = "offline" if server is None else "server"
    try:
        if proof is not None:
            _receipt(proof, event, key, json_out)
        elif given["bundle"]:
            assert events is not None
            _bundle(Path(events), key, json_out)
        elif server is None:
            assert events is not None and checkpoint is not None
            _offline(events, checkpoint, key, tiles, any_order, api_key, timeout, json_out)
        else:
            assert since is not None
            _monitor(
                server, since, key, api_key, tenant, timeout, update, init, json_out,
                stale_after, sample,
            )  # fmt: skip
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # never a traceback: name the failure instead
        raise _failure(exc, json_out, mode) from None


def _failure(exc: Exception, json_out: bool, mode: str) -> typer.Exit:
    from trailkeep.integrity.monitor import MonitorError
    from trailkeep.integrity.verify_inputs import VerifyError
    from trailkeep.integrity.verify_tiles import TileSourceError

    if isinstance(exc, VerifyError | MonitorError | TileSourceError):
        return _emit_error(str(exc), json_out, mode)
    if isinstance(exc, OSError):
        return _emit_error(f"{exc.strerror or exc}", json_out, mode)
    return _emit_error(f"unexpected {type(exc).__name__}: {exc}", json_out, mode)


def _receipt(proof: Path, event: Path | None, key: str, json_out: bool) -> None:
    from trailkeep.integrity.tlog_proof import verify_tlog_proof
    from trailkeep.integrity.verify_inputs import VerifyError, load_verifier

    try:
        data = proof.read_bytes()
        entry = None if event is None else event.read_bytes()
    except OSError as exc:
        raise VerifyError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    result = verify_tlog_proof(data, load_verifier(key), entry)
    if json_out:
        _print_json(result.to_json())
    else:
        style = "bold green" if result.ok else "bold red"
        _out.print(Text.assemble(("OK" if result.ok else "FAILED", style), f": {result.message}"))
    if not result.ok:
        raise typer.Exit(1)


def _is_bundle(path: Path) -> bool:
    from trailkeep.exports.verify_bundle import is_bundle

    return is_bundle(path)


def _bundle(path: Path, key: str, json_out: bool) -> None:
    """One export bundle, or every segment of an archive folder."""
    from trailkeep.exports.verify_bundle import bundle_folders, verify_bundle
    from trailkeep.integrity.verify_inputs import load_verifier

    verifier = load_verifier(key)
    reports = [verify_bundle(folder, verifier) for folder in bundle_folders(path) or [path]]
    if json_out:
        if len(reports) == 1:
            _print_json(reports[0].to_json())
        else:
            _print_json(
                {
                    "ok": all(r.ok for r in reports),
                    "mode": "archive",
                    "segments": [r.to_json() for r in reports],
                    "rows": sum(r.rows for r in reports),
                }
            )
    else:
        for report in reports:
            _print_bundle_report(report)
        if len(reports) > 1:
            good = sum(r.ok for r in reports)
            _out.print(Text(f"{good} of {len(reports)} bundles verified"))
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def _print_bundle_report(report: Any) -> None:
    style = "bold green" if report.ok else "bold red"
    verdict, _, rest = report.summary().partition(":")
    _out.print(Text.assemble((verdict, style), ":" + rest))
    for line in report.problems:
        _out.print(Text(f"  {line}"))
    if report.problem_total > len(report.problems):
        _out.print(Text(f"  … and {report.problem_total - len(report.problems)} more"))
    if report.sealed_shown:
        _out.print(
            Text(
                f"  {report.sealed_shown} personal value(s) shown decrypted or masked:"
                " their ciphertext is proven, the values shown are not"
            )
        )


def _tile_source(tiles: str, api_key: str | None, timeout: float) -> tuple[FetchTile, Any]:
    """The fetcher for ``--tiles`` and what to close afterwards (None for a directory)."""
    from trailkeep.integrity.monitor import HttpTiles
    from trailkeep.integrity.verify_tiles import DirectoryTiles

    if tiles.startswith(("http://", "https://")):
        fetcher = HttpTiles(tiles, api_key=api_key, timeout=timeout)
        return fetcher, fetcher
    return DirectoryTiles(Path(tiles)), None


def _offline(
    events: str,
    checkpoint_path: Path,
    key: str,
    tiles: str | None,
    any_order: bool,
    api_key: str | None,
    timeout: float,
    json_out: bool,
) -> None:
    from trailkeep.integrity.verify import verify_export
    from trailkeep.integrity.verify_inputs import load_checkpoint, load_verifier

    verifier = load_verifier(key)
    checkpoint = load_checkpoint(checkpoint_path, verifier)
    source = sys.stdin.buffer if events == "-" else Path(events)
    fetch, closer = (None, None) if tiles is None else _tile_source(tiles, api_key, timeout)
    try:
        report = verify_export(
            source, checkpoint, tiles=fetch, tiles_label=tiles or "", any_order=any_order
        )
    finally:
        if closer is not None:
            closer.close()
    _show_report(report, json_out)
    if not report.ok:
        raise typer.Exit(1)


def _show_report(report: Report, json_out: bool) -> None:
    if json_out:
        _print_json(report.to_json())
        return
    style = "bold green" if report.ok else "bold red"
    verdict, _, rest = report.summary().partition(":")
    _out.print(Text.assemble((verdict, style), ":" + rest))
    for line in report.details():
        _out.print(Text(f"  {line}"))


def _monitor(
    server: str,
    since: Path,
    key: str,
    api_key: str | None,
    tenant: str | None,
    timeout: float,
    update: bool,
    init: bool,
    json_out: bool,
    stale_after: float = 60.0,
    sample: int = 0,
) -> None:
    from trailkeep.integrity.monitor import LogClient, monitor
    from trailkeep.integrity.verify_inputs import load_verifier

    verifier = load_verifier(key)
    with LogClient(server, api_key=api_key, tenant=tenant, timeout=timeout) as client:
        result = monitor(
            client, since, verifier, tenant=tenant, update=update, init=init,
            stale_after=stale_after, sample=sample,
        )  # fmt: skip
    _show_monitor(result, json_out)
    if not result.ok:
        raise typer.Exit(1)


def _show_monitor(result: MonitorResult, json_out: bool) -> None:
    if json_out:
        _print_json(result.to_json())
        return
    verdict = "OK" if result.ok else "FAILED"
    style = "bold green" if result.ok else "bold red"
    _out.print(Text.assemble((verdict, style), f": {result.origin}: {result.message}"))
    for warning in result.warnings:
        _out.print(Text.assemble(("  warning: ", "yellow"), warning))
    if result.sampled:
        _out.print(Text(f"  {result.sampled} stored events checked against the signed tree"))
    if result.updated and result.status == "ok":
        _out.print(Text(f"  saved the checkpoint at size {result.new.size:,} for the next run"))
