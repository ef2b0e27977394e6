"""The one masking function: what a reader is shown of a stored event.

Every path by which an event leaves Trailkeep decoded (the API, the CLI through it,
and the exports, streams, sinks and console built on it) calls :func:`present`, so a
role sees the same thing everywhere:

- a sealed field (privacy/sealing.py) whose subject key was erased reads ``"[erased]"``
  for everyone;
- otherwise it is decrypted, then shown as is to a role the tenant reveals personal
  data to, and masked for every other role (``a***@example.com``, ``203.0.113.x``,
  ``A***``);
- a personal field stored in clear (before encryption was turned on, or a path the
  tenant does not encrypt but lists) is masked the same way for those other roles.

The stored form itself (``?form=stored``, the verifiable JSONL) carries only
ciphertext for sealed fields, so it needs no masking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trailkeep.kit.sealed import ERASED, SUBJECT_MEMBER, is_sealed
from trailkeep.privacy.paths import locate
from trailkeep.privacy.sealing import SealError, associated_data, commitment_holds, open_sealed

UNREADABLE = "[unreadable]"  # a sealed field whose bytes were altered: never a guess


@dataclass(frozen=True, slots=True)
class Viewer:
    """What one credential may see of one tenant's events."""

    tenant_id: str
    reveal: bool
    personal: tuple[tuple[str, ...], ...]
    key_of: Callable[[str], AESGCM | None]  # data key by key id; None once erased


def mask_value(path: str, value: Any) -> Any:
    """A masked stand-in that keeps just enough to recognise the value."""
    if not isinstance(value, str):
        return "***"
    leaf = path.rsplit(".", 1)[-1]
    if "@" in value and (leaf == "email" or value.count("@") == 1):
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if leaf == "ip_address":
        try:
            address = ip_address(value)
        except ValueError:
            return "***"
        if isinstance(address, IPv4Address):
            return ".".join(str(address).split(".")[:3]) + ".x"
        assert isinstance(address, IPv6Address)
        return ":".join(address.exploded.split(":")[:3]) + ":x"
    return f"{value[:1]}***" if len(value) > 1 else "***"


def subject_key_id(doc: dict[str, Any]) -> str | None:
    subject = doc.get(SUBJECT_MEMBER)
    if isinstance(subject, dict) and isinstance(subject.get("key"), str):
        return str(subject["key"])
    return None


def _open(doc: dict[str, Any], sealed: dict[str, Any], path: str, viewer: Viewer) -> Any:
    key_id = subject_key_id(doc)
    aead = viewer.key_of(key_id) if key_id is not None else None
    if aead is None:
        return ERASED
    aad = associated_data(viewer.tenant_id, str(doc.get("id", "")), path)
    try:
        salt, encoded = open_sealed(aead, aad, sealed)
    except SealError:
        return UNREADABLE
    if not commitment_holds(sealed, salt, encoded):
        return UNREADABLE
    value = orjson.loads(encoded)
    return value if viewer.reveal else mask_value(path, value)


def _unseal(node: Any, doc: dict[str, Any], prefix: str, viewer: Viewer) -> Any:
    if isinstance(node, dict):
        if is_sealed(node):
            return _open(doc, node, prefix[:-1], viewer)
        for key, value in node.items():
            if isinstance(value, dict | list):
                node[key] = _unseal(value, doc, f"{prefix}{key}.", viewer)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                node[index] = _unseal(value, doc, f"{prefix}{index}.", viewer)
    return node


def present(doc: dict[str, Any], viewer: Viewer, sealed: int = -1) -> dict[str, Any]:
    """``doc`` (a parsed stored event, changed in place) as ``viewer`` may see it.

    ``sealed``: how many sealed fields the stored bytes hold (``-1``: unknown). When the
    tenant's paths account for all of them, the rest of the document is not walked.
    """
    opened = 0
    for segments in viewer.personal:
        for parent, key, path in list(locate(doc, segments)):
            value = parent[key]
            if is_sealed(value):
                parent[key] = _open(doc, value, path, viewer)
                opened += 1
            elif value is not None and not viewer.reveal:
                parent[key] = mask_value(path, value)
    if opened != sealed:  # sealed under an earlier setting, or count unknown
        _unseal(doc, doc, "", viewer)
    return doc
