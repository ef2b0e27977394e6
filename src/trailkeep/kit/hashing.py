"""Hash helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest16(data: bytes) -> bytes:
    """A short, collision-resistant fingerprint (BLAKE2b-128) for comparing request bodies."""
    return hashlib.blake2b(data, digest_size=16).digest()


def file_sha256(path: Path, block: int = 1 << 20) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in ``block``-sized pieces."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while data := handle.read(block):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size
