"""Data subjects: what is held about one (an access request), and erasing one.

Erasure is crypto-shredding: the subject's data key is deleted (its wrapped bytes set
to NULL), which is one row update however many events the subject has. The sealed
fields stay in the log as ciphertext nobody can open, so every leaf, and every proof
ever issued, is unchanged; every read then shows them as ``"[erased]"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from trailkeep.auth.principal import Permission, Principal
from trailkeep.errors import NotFound
from trailkeep.kit.sealed import SUBJECT_MEMBER, is_sealed
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.privacy.service import PrivacyService
from trailkeep.store.models import SubjectKey
from trailkeep.store.protocol import Store

ERASE_ACTION = "trailkeep.subject.erased"


@dataclass(frozen=True, slots=True)
class Erasure:
    subject_id: str
    keys_erased: int
    already_erased: bool
    events_affected: int
    counted_through_seq: int
    erased_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "erased": True,
            "already_erased": self.already_erased,
            "keys_erased": self.keys_erased,
            "events_affected": self.events_affected,
            "counted_through_seq": self.counted_through_seq,
            "erased_at": format_us(self.erased_at),
        }


def _key_json(key: SubjectKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "created_at": format_us(key.created_at),
        "erased_at": None if key.erased_at is None else format_us(key.erased_at),
        "erased_by": key.erased_by,
    }


def _sealed_paths(node: Any, prefix: str, found: set[str]) -> None:
    if isinstance(node, dict):
        if is_sealed(node):
            found.add(prefix[:-1])
            return
        for key, value in node.items():
            _sealed_paths(value, f"{prefix}{key}.", found)
    elif isinstance(node, list):
        for value in node:  # the path of a field in a list is the same for every item
            _sealed_paths(value, prefix, found)


class SubjectService:
    def __init__(self, store: Store, privacy: PrivacyService) -> None:
        self._store = store
        self._privacy = privacy

    async def erase(self, principal: Principal, tenant_id: str, subject_id: str) -> Erasure:
        principal.require(Permission.ERASE_SUBJECTS)
        at = now_us()
        erased = await self._store.erase_subject_keys(tenant_id, subject_id, at, principal.subject)
        history = erased or await self._store.subject_key_history(tenant_id, subject_id)
        if not history:
            raise NotFound(f"no data of subject '{subject_id}' is held in this tenant")
        self._privacy.forget_subject(tenant_id, subject_id, [k.key_id for k in history])
        counted = await self._store.indexed_through(tenant_id)
        stats = await self._store.subject_stats(tenant_id, subject_id)
        return Erasure(
            subject_id=subject_id,
            keys_erased=len(erased),
            already_erased=not erased,
            events_affected=0 if stats is None else stats.events,
            counted_through_seq=counted,
            erased_at=at if erased else max(k.erased_at or 0 for k in history),
        )

    async def describe(
        self, principal: Principal, tenant_id: str, subject_id: str
    ) -> dict[str, Any]:
        """A data-subject access report: what Trailkeep holds about ``subject_id``."""
        principal.require(Permission.READ_SUBJECTS)
        history = await self._store.subject_key_history(tenant_id, subject_id)
        stats = await self._store.subject_stats(tenant_id, subject_id)
        if not history and stats is None:
            raise NotFound(f"no data of subject '{subject_id}' is held in this tenant")
        fields: set[str] = set()
        if stats is not None:
            for seq in {stats.first_seq, stats.last_seq}:
                body = await self._store.get_event_at(tenant_id, seq)
                if body is not None:
                    _sealed_paths(orjson.loads(body), "", fields)
        fields.discard(SUBJECT_MEMBER)
        live = [k for k in history if k.erased_at is None]
        return {
            "subject_id": subject_id,
            "events": 0 if stats is None else stats.events,
            "first_seen": None if stats is None else format_us(stats.first_at),
            "last_seen": None if stats is None else format_us(stats.last_at),
            "first_seq": None if stats is None else stats.first_seq,
            "last_seq": None if stats is None else stats.last_seq,
            "counted_through_seq": await self._store.indexed_through(tenant_id),
            "fields_held": sorted(fields),
            "erased": bool(history) and not live,
            "keys": [_key_json(k) for k in history],
        }
