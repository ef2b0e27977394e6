"""Key-encryption keys: who wraps the data keys.

Data keys (one per data subject, and one index key per tenant) are random 256-bit AES
keys, stored only wrapped by their tenant's key-encryption key (KEK). A
:class:`KeyProvider` wraps and unwraps them; the KEK itself never reaches the database.

:class:`LocalKeyProvider`, the default, holds one 256-bit master key read from a file
(``<data_dir>/privacy.key``, created by ``trailkeep init``, mode 0600) and derives each
tenant's KEK from it with HKDF-SHA256. A KMS or Vault provider implements the same two
methods (wrap: e.g. KMS ``Encrypt`` with the tenant id as encryption context; unwrap:
``Decrypt``); docs/privacy.md describes the contract.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trailkeep.config import ConfigError, Settings

_FILE_PREFIX = "trailkeep-kek-v1:"
_NONCE = 12


class KeyUnavailable(Exception):
    """A wrapped key that this provider cannot unwrap (another KEK, or altered bytes)."""


class KeyProvider(Protocol):
    def wrap(self, tenant_id: str, purpose: str, key: bytes) -> bytes:
        """``key`` wrapped by the tenant's KEK; ``purpose`` is bound to it as context."""
        ...

    def unwrap(self, tenant_id: str, purpose: str, wrapped: bytes) -> bytes:
        """The key ``wrap`` was given; KeyUnavailable when it cannot be recovered."""
        ...


class LocalKeyProvider:
    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._master = master
        self._keks: dict[str, AESGCM] = {}

    def _kek(self, tenant_id: str) -> AESGCM:
        kek = self._keks.get(tenant_id)
        if kek is None:
            derived = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"trailkeep/kek/v1/" + tenant_id.encode(),
            ).derive(self._master)
            kek = self._keks[tenant_id] = AESGCM(derived)
        return kek

    @staticmethod
    def _context(tenant_id: str, purpose: str) -> bytes:
        return b"trailkeep/wrap/v1\x00" + tenant_id.encode() + b"\x00" + purpose.encode()

    def wrap(self, tenant_id: str, purpose: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        context = self._context(tenant_id, purpose)
        return nonce + self._kek(tenant_id).encrypt(nonce, key, context)

    def unwrap(self, tenant_id: str, purpose: str, wrapped: bytes) -> bytes:
        try:
            context = self._context(tenant_id, purpose)
            return self._kek(tenant_id).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], context)
        except (InvalidTag, ValueError):
            raise KeyUnavailable(
                f"a key of tenant '{tenant_id}' does not unwrap with this master key"
            ) from None


def new_master_key_text() -> str:
    return _FILE_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def _parse(text: str, where: str) -> bytes:
    text = text.strip()
    if not text.startswith(_FILE_PREFIX):
        raise ConfigError(f"the privacy key in {where} is not a Trailkeep key ({_FILE_PREFIX}...)")
    try:
        master = base64.b64decode(text[len(_FILE_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"the privacy key in {where} is not valid base64") from None
    if len(master) != 32:
        raise ConfigError(f"the privacy key in {where} is not 32 bytes long")
    return master


def load_key_provider(settings: Settings) -> LocalKeyProvider:
    """The configured master key; ConfigError (what to do, in one line) when there is none."""
    if settings.privacy_key is not None:
        return LocalKeyProvider(
            _parse(settings.privacy_key.get_secret_value(), "TRAILKEEP_PRIVACY_KEY")
        )
    path = settings.resolved_privacy_key_file
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        raise ConfigError(
            f"no privacy key: {path} does not exist; run `trailkeep init` to create one,"
            " or set TRAILKEEP_PRIVACY_KEY or TRAILKEEP_PRIVACY_KEY_FILE (docs/privacy.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the privacy key file {path}: {exc}") from None
    return LocalKeyProvider(_parse(text, str(path)))


def ensure_key_file(settings: Settings) -> Path | None:
    """Create the master key file (mode 0600) unless a key is configured; the path if created."""
    path = settings.resolved_privacy_key_file
    if settings.privacy_key is not None or path.exists():
        load_key_provider(settings)  # a broken key fails init, not the first request
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new_master_key_text() + "\n")
    return path
