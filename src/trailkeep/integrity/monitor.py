"""``trailkeep verify --server``: check that a live log only ever grew since a saved checkpoint.

A monitor keeps the last checkpoint it trusted. Each run fetches the server's latest
signed checkpoint and asks for the consistency proof between the two sizes; if the
proof holds, every event the saved checkpoint covered is still there, unchanged, in
the same place. Because both checkpoints are signed by the tenant's key, a failure is
evidence anyone can check: a smaller signed size (the log shrank), two signed roots
for one size (a fork), or a proof that does not connect them (history rewritten).

Anything that is not such a verdict - the server unreachable, an HTTP error, an
answer that is not what the API promises - is a :class:`MonitorError`: no statement
about the log either way. This module also fetches tiles over HTTP for the offline
check (``--tiles URL``). Network I/O is httpx, synchronous; the checks are kit/merkle.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from trailkeep.integrity.checkpoint import Checkpoint
from trailkeep.integrity.note import NoteError, Verifier, decode_base64
from trailkeep.integrity.verify_inputs import (
    VerifyError,
    note_of,
    open_checkpoint_bytes,
    read_small,
    tenant_of,
)
from trailkeep.integrity.verify_tiles import TileSourceError
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.merkle import HASH_SIZE, ProofError, verify_consistency
from trailkeep.kit.tiles import TILE_WIDTH, tile_path

__all__ = ["HttpTiles", "LogClient", "MonitorError", "MonitorResult", "monitor", "write_atomic"]

_MAX_ANSWER = 1 << 20  # a checkpoint or a proof is a few KiB; more is not an answer
_MAX_TILE = TILE_WIDTH * HASH_SIZE + 1  # one byte over a full tile shows an oversized one


class MonitorError(Exception):
    """The check could not be made (network, HTTP error, malformed answer): no verdict."""


def _http_client(
    api_key: str | None, timeout: float, transport: httpx.BaseTransport | None
) -> httpx.Client:
    headers = {"User-Agent": "trailkeep-verify"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(headers=headers, timeout=timeout, transport=transport)


def _error_text(status: int, body: bytes) -> str:
    """``HTTP 404 not_found: message`` from the API's error body, else a short excerpt."""
    try:
        error = orjson.loads(body).get("error", {})
        detail = f" {error['code']}: {error['message']}"
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace").strip()
        detail = f": {text!r}" if text else ""
    hint = " (pass --api-key or set TRAILKEEP_API_KEY)" if status in (401, 403) else ""
    return f"HTTP {status}{detail}{hint}"


def _get(
    http: httpx.Client, url: str, params: dict[str, Any], accept: str, limit: int
) -> tuple[int, bytes]:
    """GET ``url``: (status, body), reading at most ``limit`` bytes of body."""
    try:
        with http.stream("GET", url, params=params, headers={"Accept": accept}) as answer:
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise MonitorError(f"{url}: the answer is over {limit:,} bytes")
            return answer.status_code, bytes(body)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise MonitorError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None


class LogClient:
    """The log's HTTP API, as much of it as the monitor reads."""

    def __init__(
        self,
        server: str,
        *,
        api_key: str | None = None,
        tenant: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._tenant = {"tenant_id": tenant} if tenant else {}
        self._http = _http_client(api_key, timeout, transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint_note(self) -> bytes:
        """The latest signed checkpoint note (text/plain; the JSON form is accepted too)."""
        url = f"{self.server}/v1/checkpoint"
        status, body = _get(self._http, url, self._tenant, "text/plain", _MAX_ANSWER)
        if status != 200:
            raise MonitorError(f"{url}: {_error_text(status, body)}")
        return body

    def _json(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.server}{path}"
        status, body = _get(
            self._http, url, {**self._tenant, **params}, "application/json", _MAX_ANSWER
        )
        if status != 200:
            raise MonitorError(f"{url}: {_error_text(status, body)}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MonitorError(f"{url}: the answer is not JSON") from None

    def checkpoint_status(self) -> dict[str, Any]:
        """The latest checkpoint as JSON: with ``unsigned_events``, ``age_seconds`` and
        ``signing_stopped``, how current it is."""
        found: dict[str, Any] = self._json("/v1/checkpoint", {})
        return found

    def newest_stored(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` events in their stored form (what the leaves hash)."""
        page = self._json("/v1/events", {"limit": limit, "form": "stored"})
        data: list[dict[str, Any]] = page.get("data", [])
        return data

    def inclusion_proof(self, event_id: str, size: int) -> list[bytes]:
        answer = self._json(f"/v1/events/{quote(event_id, safe='')}/proof", {"size": size})
        return [base64.b64decode(h) for h in answer.get("proof", [])]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof hashes from ``old_size`` to ``new_size``, checked for shape only."""
        url = f"{self.server}/v1/proofs/consistency"
        params = {**self._tenant, "from": old_size, "to": new_size}
        status, body = _get(self._http, url, params, "application/json", _MAX_ANSWER)
        if status != 200:
            raise MonitorError(f"{url}: {_error_text(status, body)}")
        return _parse_proof(body, old_size, new_size, url)


def _parse_proof(body: bytes, old_size: int, new_size: int, url: str) -> list[bytes]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MonitorError(f"{url}: the answer is not JSON") from None
    proof = value.get("proof") if isinstance(value, dict) else None
    if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
        raise MonitorError(f'{url}: the answer has no "proof" list of base64 hashes')
    assert isinstance(value, dict)
    if (value.get("from"), value.get("to")) not in ((old_size, new_size), (None, None)):
        raise MonitorError(
            f"{url}: asked for a proof from {old_size} to {new_size}, got one from"
            f" {value.get('from')!r} to {value.get('to')!r}"
        )
    hashes = []
    for number, text in enumerate(proof):
        try:
            digest = decode_base64(text, f"proof hash {number}")
        except NoteError as exc:
            raise MonitorError(f"{url}: {exc}") from None
        if len(digest) != HASH_SIZE:
            raise MonitorError(f"{url}: proof hash {number} is {len(digest)} bytes, want 32")
        hashes.append(digest)
    return hashes


class HttpTiles:
    """``FetchTile`` over HTTP: ``<prefix>tile/L/N[.p/W]``, e.g. prefix
    ``https://log.example/v1/tenants/acme/log/``. 404 means the tile does not exist."""

    def __init__(
        self,
        prefix: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._http = _http_client(api_key, timeout, transport)

    def close(self) -> None:
        self._http.close()

    def __call__(self, level: int, index: int, width: int) -> bytes | None:
        url = self.prefix + tile_path(level, index, width)
        try:
            status, body = _get(self._http, url, {}, "application/octet-stream", _MAX_TILE)
        except MonitorError as exc:
            raise TileSourceError(str(exc)) from None
        if status == 404:
            return None
        if status != 200:
            raise TileSourceError(f"{url}: {_error_text(status, body)}")
        return body


# ------------------------------------------------------------------ the check


@dataclass
class MonitorResult:
    """The verdict. ``status``: ok, initialized, shrunk, forked or inconsistent."""

    status: str
    message: str
    origin: str
    old: Checkpoint | None
    new: Checkpoint
    new_note: str
    updated: bool = False
    warnings: list[str] = field(default_factory=list)
    sampled: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "initialized")

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": "server",
            "status": self.status,
            "message": self.message,
            "origin": self.origin,
            "old": _checkpoint_json(self.old),
            "new": _checkpoint_json(self.new),
            "new_note": self.new_note,
            "updated": self.updated,
            "warnings": self.warnings,
            "sampled": self.sampled,
        }


def _checkpoint_json(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    root = base64.b64encode(checkpoint.root_hash).decode("ascii")
    return {"size": checkpoint.size, "root_hash": root}


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a checkpoint is public
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where possible
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _save(path: Path, note: bytes) -> None:
    try:
        write_atomic(path, note)
    except OSError as exc:
        raise VerifyError(f"cannot write {path}: {exc.strerror or exc}") from None


def _compare(client: LogClient, old: Checkpoint, new: Checkpoint) -> tuple[str, str]:
    """(status, message) for the step from ``old`` to ``new``, both signed by the key."""
    if new.size < old.size:
        return "shrunk", (
            f"the log shrank: the server signs size {new.size:,}, after size {old.size:,};"
            " both checkpoints are signed: keep them as evidence"
        )
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            return "forked", (
                f"two different signed roots for size {new.size:,}: the log forked;"
                " both checkpoints are signed: keep them as evidence"
            )
        return "ok", f"unchanged at size {new.size:,}"
    proof = [] if old.size == 0 else client.consistency_proof(old.size, new.size)
    try:
        consistent = verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except ProofError as exc:
        raise MonitorError(f"the server's consistency proof is malformed: {exc}") from None
    if not consistent:
        return "inconsistent", (
            f"the log at size {new.size:,} does not extend the saved checkpoint at size"
            f" {old.size:,}: events it covered were changed, removed or reordered"
        )
    return "ok", f"the log grew from {old.size:,} to {new.size:,} events, append-only"


def _check_tenant(checkpoint: Checkpoint, tenant: str | None) -> None:
    if tenant is not None and tenant_of(checkpoint.origin) != tenant:
        raise VerifyError(
            f"the key and checkpoints are of tenant {tenant_of(checkpoint.origin)!r},"
            f" not --tenant {tenant!r}"
        )


def _freshness(client: LogClient, stale_after: float) -> list[str]:
    """Warnings when the server's signer has stopped or lags behind its log (none from a
    server that does not say: the check of the log itself stands on its own)."""
    try:
        status = client.checkpoint_status()
    except MonitorError:
        return []
    if status.get("signing_stopped"):
        return [f"the server stopped signing this log: {status['signing_stopped']}"]
    unsigned, age = status.get("unsigned_events"), status.get("age_seconds")
    if (
        isinstance(unsigned, int)
        and isinstance(age, int | float)
        and unsigned > 0
        and age > stale_after
    ):
        return [
            f"stale checkpoint: {unsigned:,} events are not yet signed and the latest"
            f" checkpoint is {age:,.0f} s old (more than {stale_after:g} s)"
        ]
    return []


def _sample(client: LogClient, new: Checkpoint, count: int) -> tuple[int, str | None]:
    """Check the newest ``count`` stored events against the signed tree: an event whose
    stored body was edited no longer hashes to its leaf. (checked, problem)."""
    checked = 0
    for event in client.newest_stored(count):
        seq, event_id = event.get("seq"), event.get("id")
        if not isinstance(seq, int) or not isinstance(event_id, str) or seq >= new.size:
            continue  # beyond the checkpoint: not signed yet
        leaf = merkle.leaf_hash(canonical_json(event))
        proof = client.inclusion_proof(event_id, new.size)
        try:
            included = merkle.verify_inclusion(leaf, seq, new.size, proof, new.root_hash)
        except merkle.ProofError:
            included = False
        if not included:
            return checked, (
                f"event {event_id!r} (seq {seq}) as the server serves it is not in the signed"
                " tree: its stored body was changed"
            )
        checked += 1
    return checked, None


def monitor(
    client: LogClient,
    since: Path,
    verifier: Verifier,
    *,
    tenant: str | None = None,
    update: bool = False,
    init: bool = False,
    stale_after: float = 60.0,
    sample: int = 0,
) -> MonitorResult:
    """Check the server's latest checkpoint against the one saved in ``since``.

    Raises :class:`VerifyError` for a bad saved checkpoint or key and
    :class:`MonitorError` when the server cannot be asked; returns the verdict else.
    """
    if not since.exists() and not init:
        raise VerifyError(
            f"saved checkpoint {since} does not exist; run once with --init to trust the"
            " server's current checkpoint (trust on first use)"
        )
    old = None
    if since.exists():
        saved = read_small(since, "saved checkpoint")
        old = open_checkpoint_bytes(saved, verifier, f"saved checkpoint {since}")
        _check_tenant(old, tenant)
    what = f"the checkpoint of {client.server}"
    note = note_of(client.checkpoint_note(), what)
    new = open_checkpoint_bytes(note, verifier, what)  # verified: the note is valid UTF-8
    _check_tenant(new, tenant)
    new_note = note.decode("utf-8")
    if old is None:
        _save(since, note)
        message = f"trusted on first use: saved the checkpoint at size {new.size:,} to {since}"
        return MonitorResult("initialized", message, new.origin, None, new, new_note, True)
    status, message = _compare(client, old, new)
    result = MonitorResult(status, message, new.origin, old, new, new_note)
    if result.ok:
        result.warnings = _freshness(client, stale_after)
    if result.ok and sample:
        result.sampled, problem = _sample(client, new, sample)
        if problem is not None:
            result.status, result.message = "tampered", problem
    if result.ok and update and new.size > old.size:
        _save(since, note)
        result.updated = True
    return result
