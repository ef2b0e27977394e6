"""Privacy at ingest and on read: redact, seal personal fields, present events by role.

Ingest (:meth:`PrivacyService.protect`) runs on every event after validation and before
the event is sequenced and hashed, so the leaf is the hash of the stored form: redacted
values and plaintext of sealed fields never reach the writer. Reads
(:meth:`PrivacyService.viewer`) give the one masking function (privacy/masking.py) the
keys a page needs. Erasure and subject access live in privacy/subjects.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trailkeep.auth.principal import Principal
from trailkeep.config import ConfigError
from trailkeep.kit.query_ast import IpMatch, Term, TextMatch
from trailkeep.kit.sealed import SUBJECT_MEMBER, is_sealed
from trailkeep.kit.timeutil import now_us
from trailkeep.kit.ttl_cache import TtlCache
from trailkeep.privacy.key_cache import ExpiringMap
from trailkeep.privacy.key_provider import KeyProvider, KeyUnavailable
from trailkeep.privacy.masking import Viewer, present, subject_key_id
from trailkeep.privacy.paths import locate
from trailkeep.privacy.sealing import associated_data, seal
from trailkeep.privacy.search import blind_terms
from trailkeep.privacy.settings import Policy, compile_policy
from trailkeep.store.models import EventDraft, SubjectKey
from trailkeep.store.protocol import Store

_POLICY_TTL = 2.0
INDEX_KEY_PURPOSE = "index-key"
ANONYMOUS_SUBJECT = "anonymous"
SEALED_NEEDLE = b'"tk_enc"'  # in a stored body only where a field is sealed


def _subject_key_purpose(key_id: str) -> str:
    return f"subject-key:{key_id}"


class PrivacyService:
    def __init__(
        self,
        store: Store,
        settings_of: Callable[[str], Awaitable[dict[str, Any] | None]],
        provider: KeyProvider,
        key_ttl: float,
    ) -> None:
        """``settings_of(tenant_id)``: the tenant's stored privacy settings (the tenants
        service answers it; passed in so that privacy does not import tenants, whose
        API models use privacy's settings model)."""
        self._store = store
        self._settings_of = settings_of
        self._provider = provider
        self._policies: TtlCache[str, Policy] = TtlCache(_POLICY_TTL)
        self._index_keys: dict[str, bytes] = {}
        self._live: ExpiringMap[tuple[str, str], tuple[str, AESGCM]] = ExpiringMap(key_ttl)
        self._by_id: ExpiringMap[tuple[str, str], AESGCM | None] = ExpiringMap(key_ttl)

    # -- start-up ------------------------------------------------------------------
    async def check_master_key(self) -> None:
        """Refuse to start with a master key that does not open this database's keys:
        ingest would otherwise seal new events under keys nothing else can read."""
        sample = await self._store.sample_tenant_index_key()
        if sample is None:
            return
        tenant_id, wrapped = sample
        try:
            self._provider.unwrap(tenant_id, INDEX_KEY_PURPOSE, wrapped)
        except KeyUnavailable:
            raise ConfigError(
                "the privacy key does not open the keys stored in this database (another"
                " key file, or TRAILKEEP_PRIVACY_KEY changed?); start with the key this"
                " database was created with (docs/privacy.md)"
            ) from None

    # -- settings ------------------------------------------------------------------
    async def policy(self, tenant_id: str) -> Policy:
        async def load() -> Policy:
            return compile_policy(await self._settings_of(tenant_id))

        return await self._policies.get(tenant_id, load)

    def forget_policy(self, tenant_id: str) -> None:
        self._policies.forget(tenant_id)

    # -- keys ----------------------------------------------------------------------
    async def index_key(self, tenant_id: str) -> bytes:
        """The tenant's key for blind indexes and redaction hashes (made on first use)."""
        key = self._index_keys.get(tenant_id)
        if key is None:
            wrapped = await self._store.tenant_index_key(tenant_id)
            if wrapped is None:
                fresh = self._provider.wrap(tenant_id, INDEX_KEY_PURPOSE, os.urandom(32))
                wrapped = await self._store.add_tenant_index_key(tenant_id, fresh, now_us())
            key = self._index_keys[tenant_id] = self._provider.unwrap(
                tenant_id, INDEX_KEY_PURPOSE, wrapped
            )
        return key

    def _unwrap(self, record: SubjectKey) -> AESGCM | None:
        if record.wrapped is None:
            return None
        purpose = _subject_key_purpose(record.key_id)
        return AESGCM(self._provider.unwrap(record.tenant_id, purpose, record.wrapped))

    async def _live_keys(self, tenant_id: str, subjects: set[str]) -> dict[str, tuple[str, AESGCM]]:
        keys: dict[str, tuple[str, AESGCM]] = {}
        missing: list[str] = []
        for subject in subjects:
            found, cached = self._live.get((tenant_id, subject))
            if found and cached is not None:
                keys[subject] = cached
            else:
                missing.append(subject)
        if missing:
            records = await self._store.live_subject_keys(tenant_id, missing)
            new = [s for s in missing if s not in records]
            if new:
                records.update(
                    await self._store.add_subject_keys(tenant_id, self._fresh(tenant_id, new))
                )
            for subject, record in records.items():
                aead = self._unwrap(record)
                assert aead is not None  # live keys are never erased
                keys[subject] = (record.key_id, aead)
                self._live.put((tenant_id, subject), keys[subject])
                self._by_id.put((tenant_id, record.key_id), aead)
        return keys

    def _fresh(self, tenant_id: str, subjects: list[str]) -> list[SubjectKey]:
        at = now_us()
        fresh = []
        for subject in subjects:
            key_id = os.urandom(16).hex()
            wrapped = self._provider.wrap(tenant_id, _subject_key_purpose(key_id), os.urandom(32))
            fresh.append(SubjectKey(tenant_id, key_id, subject, wrapped, at))
        return fresh

    async def keys_by_id(self, tenant_id: str, key_ids: set[str]) -> dict[str, AESGCM | None]:
        keys: dict[str, AESGCM | None] = {}
        missing: list[str] = []
        for key_id in key_ids:
            found, aead = self._by_id.get((tenant_id, key_id))
            if found:
                keys[key_id] = aead
            else:
                missing.append(key_id)
        if missing:
            records = await self._store.subject_keys_by_id(tenant_id, missing)
            for key_id in missing:
                record = records.get(key_id)
                keys[key_id] = None if record is None else self._unwrap(record)
                self._by_id.put((tenant_id, key_id), keys[key_id])
        return keys

    def forget_subject(self, tenant_id: str, subject_id: str, key_ids: list[str]) -> None:
        self._live.forget([(tenant_id, subject_id)])
        self._by_id.forget([(tenant_id, k) for k in key_ids])

    # -- ingest --------------------------------------------------------------------
    async def protect(self, tenant_id: str, drafts: list[EventDraft]) -> list[list[str]]:
        """Redact and seal the drafts of one tenant in place, before they are hashed.

        Returns, per draft, the field paths the redaction rules changed (never values).
        """
        policy = await self.policy(tenant_id)
        index_key = await self.index_key(tenant_id)
        redact_key = hmac.new(index_key, b"trailkeep/redact/v1", hashlib.sha256).digest()
        redacted = [policy.rules.apply(draft.doc, redact_key) for draft in drafts]
        for draft in drafts:
            # The retry fingerprint hashes what the client sent, secrets and personal
            # fields included: keyed, it cannot be used to test guesses of them offline.
            mac = hmac.new(index_key, b"trailkeep/request/v1" + draft.request_hash, "sha256")
            draft.request_hash = mac.digest()[:16]
        places = [_personal_places(draft.doc, policy) for draft in drafts]
        subjects = {_subject_of(d.doc) for d, found in zip(drafts, places, strict=True) if found}
        keys = await self._live_keys(tenant_id, subjects)
        for draft, found in zip(drafts, places, strict=True):
            subject = _subject_of(draft.doc)
            explicit = draft.doc.pop("subject_id", None)
            if not found:
                if explicit is not None:
                    draft.doc[SUBJECT_MEMBER] = {"id": explicit}
                continue
            key_id, aead = keys[subject]
            event_id = str(draft.doc["id"])
            for parent, key, path, pattern in found:
                aad = associated_data(tenant_id, event_id, path)
                parent[key] = seal(aead, index_key, aad, pattern, parent[key])
            draft.doc[SUBJECT_MEMBER] = {"id": subject, "key": key_id}
        return redacted

    # -- reads ---------------------------------------------------------------------
    async def reveals(self, principal: Principal, tenant_id: str) -> bool:
        """Whether ``principal`` reads the tenant's personal fields decrypted."""
        if principal.is_platform_admin:
            return True
        policy = await self.policy(tenant_id)
        return any(role.value in policy.reveal_to for role in principal.roles)

    async def present(
        self, principal: Principal, tenant_id: str, bodies: list[bytes]
    ) -> list[bytes]:
        """Stored event bodies as ``principal`` may see them: the masking function
        (privacy/masking.py) with the keys these events need."""
        reveal = await self.reveals(principal, tenant_id)
        if reveal and not any(SEALED_NEEDLE in body for body in bodies):
            return bodies
        policy = await self.policy(tenant_id)
        docs = [orjson.loads(body) for body in bodies]
        needed = {k for doc in docs if (k := subject_key_id(doc)) is not None}
        keys = await self.keys_by_id(tenant_id, needed) if needed else {}
        viewer = Viewer(tenant_id, reveal, policy.encrypt, keys.get)
        return [
            body
            if reveal and SEALED_NEEDLE not in body
            else orjson.dumps(
                present(doc, viewer, body.count(SEALED_NEEDLE)), option=orjson.OPT_SORT_KEYS
            )
            for body, doc in zip(bodies, docs, strict=True)
        ]

    async def present_docs(
        self, principal: Principal, tenant_id: str, bodies: list[bytes]
    ) -> list[dict[str, Any]]:
        """What :meth:`present` shows, as parsed documents, with the CPU work (parsing,
        decrypting, masking) in a worker thread: for bulk readers such as exports, so a
        batch of thousands never holds up the event loop that serves ingest."""
        reveal = await self.reveals(principal, tenant_id)
        docs: list[dict[str, Any]] = await asyncio.to_thread(_parse_all, bodies)
        counts = [body.count(SEALED_NEEDLE) for body in bodies]
        if reveal and not any(counts):
            return docs
        policy = await self.policy(tenant_id)
        needed = {k for doc in docs if (k := subject_key_id(doc)) is not None}
        keys = await self.keys_by_id(tenant_id, needed) if needed else {}
        viewer = Viewer(tenant_id, reveal, policy.encrypt, keys.get)

        def render() -> list[dict[str, Any]]:
            return [
                doc if reveal and not count else present(doc, viewer, count)
                for doc, count in zip(docs, counts, strict=True)
            ]

        return await asyncio.to_thread(render)

    async def searchable(self, tenant_id: str, terms: Sequence[Term]) -> list[Term]:
        """Query terms with those on sealed fields matched by blind index (search.py)."""
        policy = await self.policy(tenant_id)
        if not policy.encrypt or not any(isinstance(t, TextMatch | IpMatch) for t in terms):
            return list(terms)
        return blind_terms(terms, policy, await self.index_key(tenant_id))


def _parse_all(bodies: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(body) for body in bodies]


def _subject_of(doc: dict[str, Any]) -> str:
    explicit = doc.get("subject_id")
    if isinstance(explicit, str):
        return explicit
    actor = doc.get("actor")
    actor_id = actor.get("id") if isinstance(actor, dict) else None
    return actor_id if isinstance(actor_id, str) else ANONYMOUS_SUBJECT


Place = tuple[dict[str, Any], str, str, str]  # parent, key, concrete path, policy path


def _personal_places(doc: dict[str, Any], policy: Policy) -> list[Place]:
    """Where ``doc`` holds a value the policy seals (not yet sealed, not null)."""
    found: list[Place] = []
    for segments, pattern in zip(policy.encrypt, policy.encrypt_names, strict=True):
        if len(segments) == 2:  # actor.email, context.ip_address: no list to cross
            parent = doc.get(segments[0])
            if isinstance(parent, dict):
                value = parent.get(segments[1])
                if value is not None and not is_sealed(value):
                    found.append((parent, segments[1], pattern, pattern))
                continue
            if not isinstance(parent, list):
                continue
        for parent, key, path in locate(doc, segments):
            value = parent[key]
            if value is not None and not is_sealed(value):
                found.append((parent, key, path, pattern))
    return found
