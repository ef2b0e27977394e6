"""The log's signing key: loading it, creating it at init, and one key per tenant log.

The service keeps one Ed25519 secret (the key file; its name is the log host). Each
tenant ``T``'s log, origin ``<host>/t/T``, is signed by a key of its own, derived from
that secret with HKDF-SHA256 and the tenant id, under the name of its origin (C2SP
tlog-checkpoint: the key name should be the origin). So a checkpoint of one tenant,
relabelled with another's name and key id, never verifies under the other's key: the
key differs, not only the name.

Before per-tenant keys, every tenant was signed by the service key itself under the
tenant's name (the "legacy" key). A tenant whose log has checkpoints signed that way
keeps getting a second signature by the legacy key on each new checkpoint while
``legacy_cosign`` is on, so auditors who pinned the legacy key go on verifying while
they move to the tenant's own key (docs/integrity.md, "Per-tenant keys").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from trailkeep.config import ConfigError, Settings
from trailkeep.integrity.note import NoteError, Signer, generate_signer, parse_signer

# A host name, optionally with a port and a path: what may precede "/t/<tenant>".
_HOST_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~-]+)*$"
)


_TENANT_KEY_INFO = b"trailkeep/checkpoint-key/v1\x00"


@dataclass
class LogKey:
    signer: Signer  # named after the log host
    legacy_cosign: bool = True
    _per_tenant: dict[str, Signer] = field(default_factory=dict, repr=False)
    _legacy: dict[str, Signer] = field(default_factory=dict, repr=False)

    @property
    def host(self) -> str:
        return self.signer.name

    def origin(self, tenant_id: str) -> str:
        return f"{self.host}/t/{tenant_id}"

    def signer_for(self, tenant_id: str) -> Signer:
        """The tenant's own checkpoint key."""
        signer = self._per_tenant.get(tenant_id)
        if signer is None:
            info = _TENANT_KEY_INFO + tenant_id.encode()
            signer = self.signer.derived(self.origin(tenant_id), info)
            self._per_tenant[tenant_id] = signer
        return signer

    def legacy_signer_for(self, tenant_id: str) -> Signer:
        """The service key under the tenant's name: what signed before per-tenant keys."""
        signer = self._legacy.get(tenant_id)
        if signer is None:
            signer = self._legacy[tenant_id] = self.signer.under_name(self.origin(tenant_id))
        return signer

    def vkey_for(self, tenant_id: str) -> str:
        return self.signer_for(tenant_id).verifier.vkey

    def legacy_vkey_for(self, tenant_id: str) -> str:
        return self.legacy_signer_for(tenant_id).verifier.vkey


def check_log_host(host: str) -> None:
    if not _HOST_RE.fullmatch(host):
        raise ConfigError(
            f"log host {host[:80]!r} must be a host name, optionally with :port and a path"
            " (letters, digits, '.', '-'; no '+' or spaces), e.g. audit.example.com"
        )


def _parse(text: str, where: str) -> LogKey:
    try:
        signer = parse_signer(text.strip())
    except NoteError as exc:
        raise ConfigError(f"the signing key in {where} is not usable: {exc}") from None
    check_log_host(signer.name)
    return LogKey(signer)


def with_settings(key: LogKey, settings: Settings) -> LogKey:
    key.legacy_cosign = settings.checkpoint_legacy_cosign
    return key


def load_log_key(settings: Settings) -> LogKey:
    """The configured key; ConfigError (one line saying what to do) when there is none."""
    if settings.signing_key is not None:
        key = _parse(settings.signing_key.get_secret_value(), "TRAILKEEP_SIGNING_KEY")
    else:
        path = settings.resolved_signing_key_file
        try:
            text = path.read_text("ascii")
        except FileNotFoundError:
            raise ConfigError(
                f"no checkpoint signing key: {path} does not exist; run `trailkeep init`"
                " to create one, or set TRAILKEEP_SIGNING_KEY or TRAILKEEP_SIGNING_KEY_FILE"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the signing key file {path}: {exc}") from None
        key = _parse(text, str(path))
    if "log_host" in settings.model_fields_set and settings.log_host != key.host:
        raise ConfigError(
            f"TRAILKEEP_LOG_HOST is {settings.log_host!r} but the signing key is named"
            f" {key.host!r}; a log's origin cannot change (docs/integrity.md, key rotation)"
        )
    return with_settings(key, settings)


def ensure_log_key(settings: Settings) -> tuple[LogKey, Path | None]:
    """Load the key, creating the key file (mode 0600) when none is configured.

    Returns the key and the path of a file created now (None when it existed).
    """
    path = settings.resolved_signing_key_file
    if settings.signing_key is not None or path.exists():
        return load_log_key(settings), None
    check_log_host(settings.log_host)
    secret, _ = generate_signer(settings.log_host)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two inits racing never overwrite each other's key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return load_log_key(settings), path
