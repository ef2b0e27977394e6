"""An auditor's receipt for one event: a C2SP tlog-proof (``c2sp.org/tlog-proof@v1``).

::

    c2sp.org/tlog-proof@v1
    extra <base64 of the event's stored bytes>
    index <seq>
    <base64 hash>            one per line: the RFC 6962 inclusion proof, leaf side first
    ...
    <empty line>
    <the signed checkpoint note, verbatim>

The spec's ``extra`` line carries "data necessary to reconstruct the record hash": here
the stored event itself, so the receipt is self-contained. It is not trusted: its leaf
hash, SHA-256(0x00 || RFC 8785 bytes), must sit at ``index`` under the checkpoint's
signed root, and its ``seq`` and tenant must be that index and that log's. Pure: the
caller reads the file and the verifier key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from trailkeep.integrity.checkpoint import Checkpoint
from trailkeep.integrity.note import Verifier
from trailkeep.integrity.verify_inputs import VerifyError, open_checkpoint_bytes, tenant_of
from trailkeep.kit import merkle
from trailkeep.kit.canonical import CanonicalizationError, canonical_json

HEADER = "c2sp.org/tlog-proof@v1"
MEDIA_TYPE = "text/plain; charset=utf-8"


def format_tlog_proof(index: int, proof: list[bytes], note: str, entry: bytes | None) -> str:
    lines = [HEADER]
    if entry is not None:
        lines.append(f"extra {base64.b64encode(entry).decode()}")
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in proof]
    return "\n".join(lines) + "\n\n" + note


@dataclass(frozen=True, slots=True)
class TlogProof:
    index: int
    proof: list[bytes]
    note: bytes
    extra: bytes | None


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerifyError(f"tlog-proof: {what} is not base64") from None


def parse_tlog_proof(data: bytes) -> TlogProof:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise VerifyError("tlog-proof: not UTF-8 text") from None
    head, sep, note = text.partition("\n\n")
    if not sep or not note:
        raise VerifyError("tlog-proof: no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise VerifyError(f"tlog-proof: the first line must be {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest.pop(0)[6:], "the extra line")
    if not rest or not rest[0].startswith("index "):
        raise VerifyError("tlog-proof: no 'index N' line")
    digits = rest.pop(0)[6:]
    if not digits.isascii() or not digits.isdigit() or (digits != "0" and digits[0] == "0"):
        raise VerifyError(f"tlog-proof: index {digits!r} is not a decimal without leading zeros")
    hashes = [_b64(line, f"proof line {i + 1}") for i, line in enumerate(rest)]
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise VerifyError("tlog-proof: a proof line is not a 32-byte hash")
    return TlogProof(int(digits), hashes, note.encode(), extra)


@dataclass(frozen=True, slots=True)
class ProofCheck:
    ok: bool
    message: str
    checkpoint: Checkpoint | None = None
    index: int | None = None
    event: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "mode": "proof",
            "message": self.message,
            "origin": None if cp is None else cp.origin,
            "tree_size": None if cp is None else cp.size,
            "index": self.index,
            "event_id": None if self.event is None else self.event.get("id"),
        }


def verify_tlog_proof(data: bytes, verifier: Verifier, entry: bytes | None = None) -> ProofCheck:
    """Check a receipt: the checkpoint's signature, then the entry (``entry``, or the
    one in the extra line) at its index under the signed root."""
    parsed = parse_tlog_proof(data)
    checkpoint = open_checkpoint_bytes(parsed.note, verifier, "the tlog-proof's checkpoint")
    body = entry if entry is not None else parsed.extra
    if body is None:
        raise VerifyError("the tlog-proof carries no event: give the event with --event")
    try:
        event = orjson.loads(body)
        canon = canonical_json(event)
    except (orjson.JSONDecodeError, CanonicalizationError, TypeError, ValueError):
        return ProofCheck(False, "the event is not a JSON event", checkpoint, parsed.index)
    if not isinstance(event, dict):
        return ProofCheck(False, "the event is not a JSON object", checkpoint, parsed.index)
    if event.get("tenant_id") != tenant_of(checkpoint.origin):
        return ProofCheck(False, "the event belongs to another tenant's log", checkpoint)
    if event.get("seq") != parsed.index:
        what = f"the event has seq {event.get('seq')!r}, the proof is for index {parsed.index}"
        return ProofCheck(False, what, checkpoint, parsed.index, event)
    if parsed.index >= checkpoint.size:
        what = f"index {parsed.index} is not in the checkpoint's tree of {checkpoint.size}"
        return ProofCheck(False, what, checkpoint, parsed.index, event)
    try:
        included = merkle.verify_inclusion(
            merkle.leaf_hash(canon), parsed.index, checkpoint.size, parsed.proof,
            checkpoint.root_hash,
        )  # fmt: skip
    except merkle.ProofError as exc:
        return ProofCheck(False, f"the proof is malformed: {exc}", checkpoint, parsed.index)
    if not included:
        what = "the event is not in the log as signed (changed event or altered proof)"
        return ProofCheck(False, what, checkpoint, parsed.index, event)
    what = f"event {event.get('id')!r} is entry {parsed.index} of {checkpoint.origin}"
    return ProofCheck(
        True, f"{what} (tree size {checkpoint.size})", checkpoint, parsed.index, event
    )
