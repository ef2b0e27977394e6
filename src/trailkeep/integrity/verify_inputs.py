"""What ``trailkeep verify`` starts from: the auditor's key and a signed checkpoint.

Both are small files or strings the auditor got from somewhere; every way they can be
wrong (missing, empty, garbage, a private key by mistake, the wrong key, an altered
or forged checkpoint, a checkpoint of another log) becomes one :class:`VerifyError`
whose message says which, and never echoes key material. Used by the offline check
(integrity/verify.py) and by the monitor (integrity/monitor.py).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from trailkeep.integrity.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from trailkeep.integrity.note import (
    InvalidSignatureError,
    NoteError,
    UnverifiedNoteError,
    Verifier,
    parse_verifier,
)

__all__ = [
    "VerifyError",
    "load_checkpoint",
    "load_verifier",
    "note_of",
    "open_checkpoint_bytes",
    "read_small",
    "tenant_of",
]

MAX_SMALL_FILE = 64 << 10
"""Checkpoints and keys are a few hundred bytes; anything this big is something else."""


class VerifyError(Exception):
    """An input that stops the audit before it starts (unreadable file, bad key or checkpoint)."""


def read_small(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SMALL_FILE + 1)
    except OSError as exc:
        raise VerifyError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise VerifyError(f"{what} {path} is empty")
    if len(data) > MAX_SMALL_FILE:
        raise VerifyError(f"{what} {path} is over {MAX_SMALL_FILE // 1024} KiB: not a {what}")
    return data


def _is_file(arg: str) -> bool:
    try:
        return Path(arg).is_file()
    except (OSError, ValueError):  # a name too long for the OS, or with a NUL in it
        return False


def load_verifier(arg: str) -> Verifier:
    """The verifier key ``arg`` names: a vkey string, or a file holding one.

    The file may also be the JSON of ``GET /v1/integrity/key``. A private signer key
    is refused without echoing it: it is a secret that should not be on this machine.
    """
    text = arg
    if _is_file(arg):
        raw = read_small(Path(arg), "key file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError(f"key file {arg} is not UTF-8 text") from None
        text = _vkey_from_json(text, arg) if text.lstrip().startswith("{") else text
    text = text.strip()
    if text.startswith("PRIVATE+KEY+"):
        raise VerifyError("--key is a private signer key; pass the public verifier key (vkey)")
    if "+" not in text:
        raise VerifyError(
            f"--key {arg[:100]!r} is neither a file nor a verifier key <name>+<key id>+<key>"
        )
    if "\n" in text:
        raise VerifyError("--key: want one verifier key, found several lines")
    try:
        return parse_verifier(text)
    except NoteError as exc:
        raise VerifyError(f"--key: {exc}") from None


def _vkey_from_json(text: str, where: str) -> str:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise VerifyError(f"key file {where} is neither a verifier key nor JSON") from None
    vkey = value.get("vkey") if isinstance(value, dict) else None
    if not isinstance(vkey, str):
        raise VerifyError(f'key file {where} is JSON without a "vkey" string')
    return vkey


def tenant_of(origin: str) -> str:
    """The tenant of a checkpoint origin ``<log host>/t/<tenant_id>``."""
    _, sep, tenant = origin.rpartition("/t/")
    if not sep or not tenant or "/" in tenant:
        raise VerifyError(f"checkpoint origin {origin!r} is not <log host>/t/<tenant id>")
    return tenant


def open_checkpoint_bytes(data: bytes, verifier: Verifier, what: str = "checkpoint") -> Checkpoint:
    """Verify a signed checkpoint note (or the JSON of GET /v1/checkpoint holding one).

    The key's name must be the checkpoint's origin: a per-tenant key signs only that
    tenant's log, so a checkpoint of another log never verifies.
    """
    note = note_of(data, what)
    try:
        checkpoint = open_checkpoint(note, [verifier], origin=verifier.name)
    except UnverifiedNoteError as exc:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in exc.note.unverified)
        raise VerifyError(
            f"{what} is not signed by key {verifier.name}+{verifier.key_id:08x}"
            f" (it is signed by {names}): wrong key, or a checkpoint of another log"
        ) from None
    except InvalidSignatureError:
        raise VerifyError(
            f"{what}: the signature of {verifier.name} does not verify: the checkpoint was"
            " altered or forged"
        ) from None
    except CheckpointError as exc:
        raise VerifyError(f"{what} is signed but not a valid checkpoint: {exc}") from None
    except NoteError as exc:
        raise VerifyError(f"{what} is not a signed note: {exc}") from None
    tenant_of(checkpoint.origin)
    return checkpoint


def note_of(data: bytes, what: str = "checkpoint") -> bytes:
    """The signed note in ``data``: ``data`` itself, or the "note" of GET /v1/checkpoint's JSON."""
    if not data.lstrip().startswith(b"{"):
        return data
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise VerifyError(f"{what} starts like JSON but is not JSON") from None
    note = value.get("note") if isinstance(value, dict) else None
    if not isinstance(note, str):
        raise VerifyError(f'{what} is JSON without a "note" string (the signed checkpoint)')
    return note.encode("utf-8", "surrogatepass")


def load_checkpoint(path: Path, verifier: Verifier) -> Checkpoint:
    """Read and verify the checkpoint file at ``path``."""
    data = read_small(path, "checkpoint file")
    return open_checkpoint_bytes(data, verifier, f"checkpoint file {path}")
