"""Sealing one field of the stored form: AES-256-GCM, a salted commitment, a blind index.

A sealed field is stored as ``{"tk_enc": 1, "ct": C, "cm": M, "bi": B}`` (base64url,
no padding):

- ``C`` = nonce (12 bytes) || AES-256-GCM(data key, salt (16 bytes) || JCS(value)),
  with the tenant id, the event id and the field path as associated data, so a
  ciphertext moved to another field or event no longer opens;
- ``M`` = SHA-256("trailkeep/commit/v1" || salt || JCS(value)): whoever is given the
  value and its salt (decrypting gives both) can show that this leaf held exactly it;
  without the salt, a guess of a low-entropy value (an email) cannot be tested;
- ``B`` = BLAKE2b-128 keyed with the tenant index key (a MAC: RFC 7693) of path ||
  0x00 || JCS(value): equal values of a field give equal ``B``, so exact-match search
  works without plaintext in any index (privacy/search.py). Keyed BLAKE2b rather than
  HMAC-SHA256: one C call, a quarter of the time, on every sealed field at ingest.

The Merkle leaf hashes this stored form, so erasing the data key (crypto-shredding)
changes no leaf and every proof keeps verifying.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.sealed import SEALED_MARK

_COMMIT_PREFIX = b"trailkeep/commit/v1"
_NONCE = 12
_SALT = 16
_BLIND_BYTES = 16


class SealError(ValueError):
    """A sealed field that does not open with the key it names (altered, or misplaced)."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64(data: bytes) -> str:
    """base64url without padding (binascii: a third of ``base64.urlsafe_b64encode``)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def unb64(text: str) -> bytes:
    """The bytes of base64url ``text`` (padding optional); binascii.Error if malformed."""
    raw = text.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)


def associated_data(tenant_id: str, event_id: str, path: str) -> bytes:
    return b"\x00".join((tenant_id.encode(), event_id.encode(), path.encode()))


def _blind(index_key: bytes, path: str, encoded: bytes) -> str:
    mac = hashlib.blake2b(
        path.encode() + b"\x00" + encoded, key=index_key, digest_size=_BLIND_BYTES
    )
    return b64(mac.digest())


def blind_index(index_key: bytes, path: str, value: Any) -> str:
    return _blind(index_key, path, canonical_json(value))


def seal(aead: AESGCM, index_key: bytes, aad: bytes, path: str, value: Any) -> dict[str, Any]:
    encoded = canonical_json(value)
    random = os.urandom(_NONCE + _SALT)  # one system call for both
    nonce, salt = random[:_NONCE], random[_NONCE:]
    ciphertext = aead.encrypt(nonce, salt + encoded, aad)
    commitment = hashlib.sha256(_COMMIT_PREFIX + salt + encoded).digest()
    return {
        SEALED_MARK: 1,
        "ct": b64(nonce + ciphertext),
        "cm": b64(commitment),
        "bi": _blind(index_key, path, encoded),
    }


def open_sealed(aead: AESGCM, aad: bytes, sealed: dict[str, Any]) -> tuple[bytes, bytes]:
    """(salt, JCS bytes of the value) of a sealed field; SealError if it does not open."""
    try:
        raw = unb64(sealed["ct"])
        plain = aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad)
    except (InvalidTag, ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise SealError("the sealed field does not open with its subject's key") from None
    return plain[:_SALT], plain[_SALT:]


def commitment_holds(sealed: dict[str, Any], salt: bytes, encoded: bytes) -> bool:
    expected = hashlib.sha256(_COMMIT_PREFIX + salt + encoded).digest()
    try:
        return hmac.compare_digest(unb64(sealed["cm"]), expected)
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        return False
