"""A tenant log built in-process the way the service builds it, for the verify tests.

Events with seq/tenant_id, RFC 8785 leaves, tlog-tiles written by TileFrontier, a
checkpoint signed with a key from generate_signer. Used by tests/unit/integrity/
test_verify*.py and tests/e2e/test_verify_cli.py.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import generate_signer, parse_signer
from trailkeep.integrity.verify import verify_export
from trailkeep.integrity.verify_report import Report
from trailkeep.integrity.verify_tiles import DirectoryTiles
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.merkle import CompactRange, consistency_proof, leaf_hash
from trailkeep.kit.tiles import TileFrontier, tile_path

HOST = "log.example"
ORIGIN = f"{HOST}/t/acme"
Handler = Callable[[httpx.Request], httpx.Response]


def make_event(seq: int, tenant: str = "acme") -> dict[str, Any]:
    """A stored event; some take the slow paths (a float, a character beyond the BMP)."""
    event: dict[str, Any] = {
        "seq": seq,
        "tenant_id": tenant,
        "id": f"ev_{seq:05d}",
        "action": "user.login" if seq % 3 else "document.updated",
        "actor": {"id": f"u_{seq % 7}", "name": "Zoë" if seq % 5 == 0 else "Ada"},
        "received_at": f"2026-01-01T00:00:{seq % 60:02d}.000000Z",
        "metadata": {"n": seq},
    }
    if seq % 11 == 0:
        event["metadata"]["ratio"] = seq / 8
    if seq % 13 == 0:
        event["metadata"]["emoji"] = "\U0001f600"
    return event


@dataclass
class Log:
    directory: Path
    lines: list[bytes]
    checkpoint: Checkpoint
    note: str
    vkey: str
    skey: str

    @property
    def events_path(self) -> Path:
        return self.directory / "events.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.directory / "checkpoint.txt"

    @property
    def vkey_path(self) -> Path:
        return self.directory / "vkey.txt"

    def write(self, lines: list[bytes] | None = None, end: bytes = b"\n") -> Path:
        self.events_path.write_bytes(b"\n".join(self.lines if lines is None else lines) + end)
        return self.events_path

    def check(self, lines: list[bytes] | None = None, end: bytes = b"\n", **kwargs: Any) -> Report:
        return verify_export(self.write(lines, end), self.checkpoint, **kwargs)

    def check_tiles(self, lines: list[bytes] | None = None, **kwargs: Any) -> Report:
        tiles = DirectoryTiles(self.directory)
        return self.check(lines, tiles=tiles, tiles_label="tiles", **kwargs)


def write_tiles(directory: Path, lines: list[bytes]) -> None:
    for (level, index), data in TileFrontier().extend(leaf_hash(x) for x in lines).items():
        path = directory / tile_path(level, index, len(data) // 32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def build_log(
    directory: Path, count: int, tenant: str = "acme", signed_size: int | None = None
) -> Log:
    """``count`` events written as events.jsonl, with tiles, a vkey and a checkpoint at
    ``signed_size`` (default: all of them)."""
    directory.mkdir(parents=True, exist_ok=True)
    origin = f"{HOST}/t/{tenant}"
    lines = [canonical_json(make_event(seq, tenant)) for seq in range(count)]
    size = count if signed_size is None else signed_size
    frontier = TileFrontier()
    frontier.extend(leaf_hash(x) for x in lines[:size])
    write_tiles(directory, lines)
    skey, vkey = generate_signer(origin)
    checkpoint = Checkpoint(origin, size, frontier.root())
    note = sign_checkpoint(checkpoint, parse_signer(skey))
    log = Log(directory, lines, checkpoint, note, vkey, skey)
    log.checkpoint_path.write_text(note)
    log.vkey_path.write_text(vkey + "\n")
    log.write()
    return log


def with_field(line: bytes, **changes: Any) -> bytes:
    return canonical_json({**orjson.loads(line), **changes})


# ------------------------------------------------------------------ a fake server


def leaves(count: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(b"\x00" + salt + i.to_bytes(8, "big")).digest() for i in range(count)]


class FakeLog:
    """GET /v1/checkpoint and /v1/proofs/consistency of a tree of ``leaves``."""

    def __init__(self, skey: str, hashes: list[bytes]) -> None:
        self.signer = parse_signer(skey)
        self.leaves = hashes
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, Handler] = {}

    def note(self, size: int | None = None) -> str:
        size = len(self.leaves) if size is None else size
        frontier = CompactRange()
        frontier.extend(self.leaves[:size])
        return sign_checkpoint(Checkpoint(ORIGIN, size, frontier.root()), self.signer)

    def proof(self, old: int, new: int) -> list[str]:
        nodes = {(n.level, n.index): n.hash for n in CompactRange().extend(self.leaves[:new])}
        hashes = consistency_proof(old, new, lambda level, index: nodes[(level, index)])
        return [base64.b64encode(h).decode("ascii") for h in hashes]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is not None:
            return route(request)
        if request.url.path == "/v1/checkpoint":
            return httpx.Response(200, text=self.note(), headers={"Content-Type": "text/plain"})
        if request.url.path == "/v1/proofs/consistency":
            old, new = int(request.url.params["from"]), int(request.url.params["to"])
            return httpx.Response(200, json={"from": old, "to": new, "proof": self.proof(old, new)})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}})
