"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, as pure functions.

A signed note is UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``"— <key name> <base64(4-byte key ID || signature)>\\n"``. Keys are
written as in golang.org/x/mod/sumdb/note, which the C2SP spec documents:

* verifier key (vkey): ``<name>+<hex8 key ID>+<base64(0x01 || 32-byte public key)>``
* signer key: ``PRIVATE+KEY+<name>+<hex8 key ID>+<base64(0x01 || 32-byte seed)>``

with ``key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]`` read big-endian.

Behaviour follows the Go reference where it is specified, and is stricter where
strictness costs honest signers nothing:

* every base64 field must be the canonical encoding of its bytes, so that a note has
  exactly one spelling and a mutated note can never verify as the original text;
* every signature from a known key is verified (the spec's MUST); Go skips repeats
  from one key, we only skip byte-identical repeated lines;
* passing the same key twice is harmless; two *different* keys sharing a name and
  key ID are an error only if a signature names them (as in Go).

Anything malformed raises :class:`NoteError` (a ``ValueError``) whose message names
the problem, meant for the auditor or operator who supplied the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "SIGNATURE_PREFIX",
    "InvalidSignatureError",
    "NoteError",
    "OpenedNote",
    "Signature",
    "Signer",
    "UnverifiedNoteError",
    "Verifier",
    "check_key_name",
    "check_note_chars",
    "decode_base64",
    "generate_signer",
    "key_hash",
    "open_note",
    "parse_signer",
    "parse_verifier",
    "sign_note",
    "signer_from_seed",
    "verifier_key",
]

ALG_ED25519 = 0x01
"""Signature type byte for Ed25519 (C2SP signed-note, "Signature types")."""

MAX_SIGNATURES = 100
"""Signature lines accepted per note. The spec demands at least 16; Go uses 100."""

SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash and a space."""

_SIGNER_PREFIX = "PRIVATE+KEY+"
_KEY_SIZE = 32  # Ed25519 public keys and seeds
_SIGNATURE_SIZE = 64
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class NoteError(ValueError):
    """A malformed note, key or checkpoint, or a note that does not verify."""


class InvalidSignatureError(NoteError):
    """A signature from a known key failed to verify: the note must be rejected."""

    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")
        self.name = name
        self.key_id = key_id


class UnverifiedNoteError(NoteError):
    """The note parsed, but no signature came from a known key.

    ``note`` holds what was found so that a caller can report which keys signed;
    its text must not be trusted.
    """

    def __init__(self, note: OpenedNote) -> None:
        found = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.unverified)
        super().__init__(f"note has no signature from a known key (signed by: {found})")
        self.note = note


# ---------------------------------------------------------------------------
# Shared validation helpers (also used by checkpoint.py)


def decode_base64(text: str, what: str) -> bytes:
    """Decode standard padded base64, accepting only the canonical spelling.

    Python (and Go) accept non-zero padding bits, so ``YR==`` decodes like ``YQ==``;
    refusing that keeps one byte string to one encoding.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def check_note_chars(text: str, what: str) -> bytes:
    """Return ``text`` as UTF-8, refusing what no signed note may contain."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates in a Python str
        raise NoteError(f"{what} is not valid UTF-8") from exc
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"{what} contains control character U+{ord(ch):04X}")
    return data


def check_key_name(name: str) -> None:
    """Key names: non-empty, no Unicode spaces, no '+', and (our addition) no controls.

    ``str.isspace`` is Go's ``unicode.IsSpace`` plus U+001C..U+001F; the control
    characters are refused anyway because a name that cannot appear in a note is
    useless.
    """
    if not name:
        raise NoteError("key name is empty")
    for ch in name:
        if ch.isspace():
            raise NoteError(f"key name {name!r} contains whitespace")
        if ch == "+":
            raise NoteError(f"key name {name!r} contains '+'")
        if ch < " ":
            raise NoteError(f"key name {name!r} contains a control character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"key name {name!r} is not valid UTF-8") from exc


# ---------------------------------------------------------------------------
# Keys


def key_hash(name: str, public_key: bytes) -> int:
    """The 32-bit key ID of an Ed25519 ``public_key`` (32 raw bytes) under ``name``."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _encoded_key(raw: bytes) -> str:
    return base64.b64encode(bytes([ALG_ED25519]) + raw).decode("ascii")


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 public key under a name; build it with :func:`parse_verifier`."""

    name: str
    key_id: int
    public_key: bytes  # 32 raw bytes

    def __post_init__(self) -> None:
        # A hand-built Verifier with a wrong ID would silently never match a note.
        check_key_name(self.name)
        if len(self.public_key) != _KEY_SIZE:
            raise NoteError(f"Ed25519 public key must be {_KEY_SIZE} bytes")
        if key_hash(self.name, self.public_key) != self.key_id:
            raise NoteError(f"key id {self.key_id:08x} does not match name and key")

    @property
    def vkey(self) -> str:
        """The verifier key string, as published to auditors."""
        return f"{self.name}+{self.key_id:08x}+{_encoded_key(self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """An Ed25519 private key under a name; build it with :func:`parse_signer`."""

    name: str
    key_id: int
    # repr=False: a logged Signer must never leak the private key.
    _private: Ed25519PrivateKey = field(repr=False, compare=False)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, _raw_public(self._private.public_key()))

    def under_name(self, name: str) -> Signer:
        """The same private key under another name (its key id changes with the name)."""
        return signer_from_seed(name, self._private.private_bytes_raw())

    def derived(self, name: str, info: bytes) -> Signer:
        """Another Ed25519 key, derived from this one with HKDF-SHA256 (RFC 5869) and
        ``info``, under ``name``: one secret to keep, a key of its own per use."""
        seed = HKDF(algorithm=hashes.SHA256(), length=_KEY_SIZE, salt=None, info=info).derive(
            self._private.private_bytes_raw()
        )
        return signer_from_seed(name, seed)


def signer_from_seed(name: str, seed: bytes) -> Signer:
    """A signer for the 32-byte Ed25519 ``seed`` (RFC 8032 private key) under ``name``."""
    check_key_name(name)
    if len(seed) != _KEY_SIZE:
        raise NoteError(f"Ed25519 seed must be {_KEY_SIZE} bytes, got {len(seed)}")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return Signer(name, key_hash(name, _raw_public(private.public_key())), private)


def verifier_key(name: str, public_key: bytes) -> str:
    """The vkey string for a raw 32-byte Ed25519 ``public_key`` under ``name``."""
    check_key_name(name)
    if len(public_key) != _KEY_SIZE:
        raise NoteError(f"Ed25519 public key must be {_KEY_SIZE} bytes, got {len(public_key)}")
    return Verifier(name, key_hash(name, public_key), public_key).vkey


def _signer_key_string(name: str, key_id: int, seed: bytes) -> str:
    return f"{_SIGNER_PREFIX}{name}+{key_id:08x}+{_encoded_key(seed)}"


def generate_signer(name: str) -> tuple[str, str]:
    """A fresh key pair for ``name``: (signer key string, vkey string)."""
    check_key_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    signer = signer_from_seed(name, seed)
    return _signer_key_string(name, signer.key_id, seed), signer.verifier.vkey


def _split_key(rest: str, what: str) -> tuple[str, int, bytes]:
    """Split ``<name>+<hex8>+<base64(0x01 || 32 bytes)>`` into name, key ID, key bytes.

    Base64 may itself contain '+', hence at most two splits, as Go's ``chop`` does.
    """
    parts = rest.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"malformed {what}: want <name>+<key id>+<key>")
    name, hex_id, key64 = parts
    check_key_name(name)
    if len(hex_id) != 8 or not set(hex_id) <= _HEX_DIGITS:
        raise NoteError(f"malformed {what}: key id {hex_id!r} is not 8 hex digits")
    data = decode_base64(key64, f"{what} data")
    if not data:
        raise NoteError(f"malformed {what}: key data is empty")
    if data[0] != ALG_ED25519:
        raise NoteError(f"{what} uses unknown algorithm 0x{data[0]:02x} (only Ed25519, 0x01)")
    if len(data) != 1 + _KEY_SIZE:
        raise NoteError(
            f"malformed {what}: Ed25519 key must be {_KEY_SIZE} bytes, got {len(data) - 1}"
        )
    return name, int(hex_id, 16), data[1:]


def parse_verifier(vkey: str) -> Verifier:
    """Parse a vkey string ``<name>+<hex8>+<base64(0x01 || public key)>``."""
    name, key_id, public_key = _split_key(vkey, "verifier key")
    if key_hash(name, public_key) != key_id:
        raise NoteError(f"verifier key id {key_id:08x} does not match name and key")
    return Verifier(name, key_id, public_key)


def parse_signer(skey: str) -> Signer:
    """Parse a signer key string ``PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>``.

    Messages never quote the key data: it is the secret.
    """
    if not skey.startswith(_SIGNER_PREFIX):
        raise NoteError("malformed signer key: must start with PRIVATE+KEY+")
    name, key_id, seed = _split_key(skey[len(_SIGNER_PREFIX) :], "signer key")
    # The key ID hashes the *public* key, which only exists once derived from the seed.
    signer = signer_from_seed(name, seed)
    if signer.key_id != key_id:
        raise NoteError(f"signer key id {key_id:08x} does not match name and key")
    return signer


# ---------------------------------------------------------------------------
# Notes


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the base64 exactly as written."""

    name: str
    key_id: int
    base64: str


@dataclass(frozen=True)
class OpenedNote:
    """A parsed note. ``text`` is trustworthy only if ``verified`` is non-empty."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` (which must end in a newline) with each of ``signers``.

    Refuses text that :func:`open_note` would refuse, so the service can never
    publish a note nobody can open. Text with blank lines is fine: the signatures
    start after the *last* blank line, and a signature line is never empty.
    """
    if not signers:
        raise NoteError("sign_note needs at least one signer")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    message = check_note_chars(text, "note text")
    seen: set[tuple[str, int]] = set()
    lines = []
    for signer in signers:
        check_key_name(signer.name)
        if (signer.name, signer.key_id) in seen:
            raise NoteError(f"signer {signer.name}+{signer.key_id:08x} given twice")
        seen.add((signer.name, signer.key_id))
        raw = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(raw).decode('ascii')}\n")
    return text + "\n" + "".join(lines)


def _split_note(note: str | bytes) -> tuple[str, list[str]]:
    """Split a whole note into its text and its signature lines (without newlines)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(f"note is not valid UTF-8 (byte {exc.start})") from exc
    check_note_chars(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines after the blank line")
    if not block.endswith("\n"):
        raise NoteError("note signature block must end with a newline")
    lines = block[:-1].split("\n")
    # Checked before any parsing or verifying so a hostile note cannot cost much.
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    return text, lines


def _parse_signature_line(line: str, number: int) -> tuple[Signature, bytes]:
    """Parse one signature line into its :class:`Signature` and raw signature bytes."""
    where = f"signature line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"{where} does not start with an em dash and a space")
    name, space, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not b64:
        raise NoteError(f"{where} has no signature after the key name")
    try:
        check_key_name(name)
    except NoteError as exc:
        raise NoteError(f"{where}: {exc}") from exc
    raw = decode_base64(b64, f"{where} signature")
    if len(raw) < 5:  # a 4-byte key ID and at least one byte of signature, as in Go
        raise NoteError(f"{where} signature is too short ({len(raw)} bytes)")
    return Signature(name, int.from_bytes(raw[:4], "big"), b64), raw[4:]


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier | None]:
    """Map (name, key ID) to its verifier, or to None when two different keys collide."""
    known: dict[tuple[str, int], Verifier | None] = {}
    for v in verifiers:
        slot = (v.name, v.key_id)
        if slot in known and known[slot] != v:
            known[slot] = None
        else:
            known.setdefault(slot, v)
    return known


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse ``note`` and verify its signatures against the known ``verifiers``.

    Signatures from unknown keys are ignored (listed in ``unverified``); a
    signature from a known key that fails rejects the whole note; and at least one
    known key must have signed, else :class:`UnverifiedNoteError`.
    """
    text, lines = _split_note(note)
    message = text.encode("utf-8")
    known = _index_verifiers(verifiers)
    verified: dict[tuple[str, int], Signature] = {}
    unverified: list[Signature] = []
    seen_lines: set[str] = set()
    for number, line in enumerate(lines, start=1):
        sig, raw = _parse_signature_line(line, number)
        if line in seen_lines:  # an identical repeat adds nothing; Go drops it too
            continue
        seen_lines.add(line)
        slot = (sig.name, sig.key_id)
        if slot not in known:
            unverified.append(sig)
            continue
        verifier = known[slot]
        if verifier is None:
            raise NoteError(f"ambiguous key {sig.name}+{sig.key_id:08x}: two keys given")
        if not verifier.verify(message, raw):
            raise InvalidSignatureError(sig.name, sig.key_id)
        verified.setdefault(slot, sig)
    opened = OpenedNote(text, tuple(verified.values()), tuple(unverified))
    if not opened.verified:
        raise UnverifiedNoteError(opened)
    return opened
