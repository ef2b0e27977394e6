"""Response shapes of the integrity endpoints, for the OpenAPI document.

The examples are real: a three-event log signed with a published example key (seed
0x07 * 32, log host ``audit.example.com``), so a reader can check them by hand.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import signer_from_seed
from trailkeep.kit import merkle

_ORIGIN = "audit.example.com/t/acme"
_SIGNER = signer_from_seed(_ORIGIN, b"\x07" * 32)
_LEAVES = [merkle.leaf_hash(f'{{"seq":{i}}}'.encode()) for i in range(3)]
_ROOT = merkle.root_from_leaf_hashes(_LEAVES)
_NOTE = sign_checkpoint(Checkpoint(_ORIGIN, 3, _ROOT), _SIGNER)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


EXAMPLE_NOTE = _NOTE
EXAMPLE_TILE_NOTE = "Concatenated 32-byte hashes; tile/0/000.p/3 of this log is 96 bytes."


class CheckpointOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "origin": _ORIGIN,
                    "tree_size": 3,
                    "root_hash": _b64(_ROOT),
                    "signed_at": "2026-11-22T10:00:00.000000Z",
                    "note": _NOTE,
                    "log_size": 3,
                    "unsigned_events": 0,
                    "age_seconds": 0.4,
                    "signing_stopped": None,
                }
            ]
        }
    )
    origin: str
    tree_size: int
    root_hash: str = Field(description="base64")
    signed_at: str
    note: str = Field(description="The C2SP signed note: checkpoint body, blank line, signature")
    # GET /v1/checkpoint only: how far behind the log this checkpoint is.
    log_size: int | None = Field(None, description="Events in the log now")
    unsigned_events: int | None = Field(None, description="Events not yet in a checkpoint")
    age_seconds: float | None = Field(None, description="Since the checkpoint was signed")
    signing_stopped: str | None = Field(
        None, description="Why the tenant is no longer signed (an integrity fault), if so"
    )


class CheckpointList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "origin": _ORIGIN,
                            "tree_size": 3,
                            "root_hash": _b64(_ROOT),
                            "signed_at": "2026-11-22T10:00:00.000000Z",
                            "note": _NOTE,
                        }
                    ],
                    "next_before": None,
                }
            ]
        }
    )
    data: list[CheckpointOut]
    next_before: int | None = Field(description="Pass as `before` for the next page")


class InclusionProofOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0190f0c5-7a1e-7cc2-9a6b-3f1e2d4c5b6a",
                    "seq": 2,
                    "leaf_index": 2,
                    "tree_size": 3,
                    "leaf_hash": _b64(_LEAVES[2]),
                    "root_hash": _b64(_ROOT),
                    "proof": [_b64(merkle.node_hash(_LEAVES[0], _LEAVES[1]))],
                    "checkpoint": _NOTE,
                }
            ]
        }
    )
    id: str
    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str] = Field(description="base64 hashes, RFC 9162 order")
    checkpoint: str | None = Field(description="The signed checkpoint of tree_size, if any")


class ConsistencyProofOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": 2,
                    "to": 3,
                    "from_root_hash": _b64(merkle.root_from_leaf_hashes(_LEAVES[:2])),
                    "to_root_hash": _b64(_ROOT),
                    "proof": [_b64(_LEAVES[2])],
                    "checkpoint": _NOTE,
                }
            ]
        },
        populate_by_name=True,
    )
    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    from_root_hash: str
    to_root_hash: str
    proof: list[str]
    checkpoint: str | None


class VerifierKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "origin": _ORIGIN,
                    "key_name": _ORIGIN,
                    "algorithm": "Ed25519",
                    "vkey": _SIGNER.verifier.vkey,
                    "legacy_vkey": _SIGNER.verifier.vkey,
                }
            ]
        }
    )
    origin: str
    key_name: str
    algorithm: str
    vkey: str = Field(description="The tenant's own key: verifies its checkpoints")
    legacy_vkey: str = Field(
        description="The service key under the tenant's name: checkpoints signed before"
        " per-tenant keys, and their co-signatures (docs/integrity.md)"
    )


def text_example(example: str) -> dict[str, Any]:
    return {"content": {"text/plain; charset=utf-8": {"example": example}}}


def binary_example(description: str) -> dict[str, Any]:
    return {
        "content": {
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "example": description,
            }
        }
    }
