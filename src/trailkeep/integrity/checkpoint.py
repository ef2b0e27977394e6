"""C2SP transparency-log checkpoints (https://c2sp.org/tlog-checkpoint).

A checkpoint is the text of a signed note::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]

Parsing is strict because an offline verifier must never accept a checkpoint that
another implementation would read differently: one spelling of the size (no
leading zeros, no sign, ASCII digits only, at most 2**64 - 1), canonical base64 of
exactly 32 bytes, no empty lines anywhere in the body.

The origin is only required to be non-empty when *reading* (the spec says clients
MUST NOT assume more); the defence against a checkpoint of another log is to pass
the ``origin`` you expect. When *writing*, we hold ourselves to the spec's SHOULD
(no Unicode spaces, no '+'), so our origins can also serve as key names.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trailkeep.integrity.note import (
    NoteError,
    Signer,
    Verifier,
    check_key_name,
    check_note_chars,
    decode_base64,
    open_note,
    sign_note,
)
from trailkeep.kit.merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "format_checkpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]

# ASCII only: str.isdigit() would also take e.g. Arabic-Indic digits.
_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)


class CheckpointError(NoteError):
    """A checkpoint body that is malformed, or is not from the expected log."""


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"checkpoint {what} is empty")
    if "\n" in line:
        raise CheckpointError(f"checkpoint {what} contains a newline")
    try:
        check_note_chars(line, f"checkpoint {what}")
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: ``size`` leaves whose RFC 6962 root is ``root_hash``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validated here so that no Checkpoint, parsed or built, can format into
        # a body that parse_checkpoint would refuse.
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("checkpoint tree size must be an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root_hash, bytes):
            raise CheckpointError("checkpoint root hash must be bytes")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}"
            )
        for number, line in enumerate(self.extensions, start=1):
            _check_line(line, f"extension line {number}")


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text of ``checkpoint``; its origin must also be a valid key name."""
    try:
        check_key_name(checkpoint.origin)
    except NoteError as exc:
        raise CheckpointError(f"checkpoint origin is not usable: {exc}") from exc
    root = base64.b64encode(checkpoint.root_hash).decode("ascii")
    lines = [checkpoint.origin, str(checkpoint.size), root, *checkpoint.extensions]
    return "".join(f"{line}\n" for line in lines)


def _parse_size(line: str) -> int:
    if not _SIZE_RE.fullmatch(line):
        raise CheckpointError(
            f"checkpoint tree size {line[:40]!r} is not a decimal number without leading zeros"
        )
    # Compare lengths first so a megabyte of digits is not converted to an int.
    if len(line) > len(str(MAX_TREE_SIZE)) or int(line) > MAX_TREE_SIZE:
        raise CheckpointError("checkpoint tree size does not fit in 64 bits")
    return int(line)


def _parse_root(line: str) -> bytes:
    try:
        root = decode_base64(line, "checkpoint root hash")
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash is {len(root)} bytes, want {HASH_SIZE}")
    return root


def parse_checkpoint(text: str, *, origin: str | None = None) -> Checkpoint:
    """Parse a checkpoint body; with ``origin``, also require that exact origin."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"checkpoint has {len(lines)} line(s), want origin, tree size and root hash"
        )
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CheckpointError(f"checkpoint line {number} is empty")
    if origin is not None and lines[0] != origin:
        raise CheckpointError(f"checkpoint origin {lines[0][:200]!r} is not {origin!r}")
    return Checkpoint(
        origin=lines[0],
        size=_parse_size(lines[1]),
        root_hash=_parse_root(lines[2]),
        extensions=tuple(lines[3:]),
    )


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> str:
    """The signed note of ``checkpoint``."""
    return sign_note(format_checkpoint(checkpoint), *signers)


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note, then parse its body (see :func:`parse_checkpoint`).

    The signature is checked first: the body of an unverified note must not be
    interpreted at all.
    """
    return parse_checkpoint(open_note(note, verifiers).text, origin=origin)
