"""Sealing one field of the stored form: AES-256-GCM, a salted commitment, a blind index.

A sealed field is stored as ``{"tk_enc": 1, "ct": C, "cm": M, "bi": B}`` (base64url,
no padding):

- ``C`` = nonce (12 bytes) || AES-256-GCM(data key, salt (16 bytes) || JCS(value)),
  with the tenant id, the event id and the field path as associated data, so a
  ciphertext moved to another field or event no longer opens;
- ``M`` = SHA-256("trailkeep/commit/v1" || salt || JCS(value)): whoever is given the
  value and its salt (decrypting gives both) can show that this leaf held exactly it;
  without the salt, a guess of a low-entropy value (an email) cannot be tested;
- ``B`` = the first 16 bytes of HMAC-SHA256(tenant index key, path || 0x00 ||
  JCS(value)): equal values of a field give equal ``B``, so exact-match search works
  without plaintext in any index (privacy/search.py).

The Merkle leaf hashes this stored form, so erasing the data key (crypto-shredding)
changes no leaf and every proof keeps verifying.
"""

from __future__ import annotations

import base64
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


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(tenant_id: str, event_id: str, path: str) -> bytes:
    return b"\x00".join((tenant_id.encode(), event_id.encode(), path.encode()))


def blind_index(index_key: bytes, path: str, value: Any) -> str:
    mac = hmac.new(index_key, path.encode() + b"\x00" + canonical_json(value), hashlib.sha256)
    return b64(mac.digest()[:_BLIND_BYTES])


def seal(aead: AESGCM, index_key: bytes, aad: bytes, path: str, value: Any) -> dict[str, Any]:
    encoded = canonical_json(value)
    salt = os.urandom(_SALT)
    nonce = os.urandom(_NONCE)
    ciphertext = aead.encrypt(nonce, salt + encoded, aad)
    commitment = hashlib.sha256(_COMMIT_PREFIX + salt + encoded).digest()
    return {
        SEALED_MARK: 1,
        "ct": b64(nonce + ciphertext),
        "cm": b64(commitment),
        "bi": blind_index(index_key, path, value),
    }


def open_sealed(aead: AESGCM, aad: bytes, sealed: dict[str, Any]) -> tuple[bytes, bytes]:
    """(salt, JCS bytes of the value) of a sealed field; SealError if it does not open."""
    try:
        raw = unb64(sealed["ct"])
        plain = aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad)
    except (InvalidTag, ValueError, KeyError, TypeError):
        raise SealError("the sealed field does not open with its subject's key") from None
    return plain[:_SALT], plain[_SALT:]


def commitment_holds(sealed: dict[str, Any], salt: bytes, encoded: bytes) -> bool:
    expected = hashlib.sha256(_COMMIT_PREFIX + salt + encoded).digest()
    try:
        return hmac.compare_digest(unb64(sealed["cm"]), expected)
    except (ValueError, KeyError, TypeError):
        return False
