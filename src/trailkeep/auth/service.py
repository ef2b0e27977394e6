"""Authenticating requests, and creating, listing and revoking API keys."""

from __future__ import annotations

from dataclasses import dataclass

from trailkeep.auth import keys
from trailkeep.auth.jwt_tokens import JwtVerifier
from trailkeep.auth.principal import Principal, Role
from trailkeep.config import Settings
from trailkeep.errors import NotFound, Unauthenticated
from trailkeep.kit.timeutil import now_us
from trailkeep.kit.ttl_cache import TtlCache
from trailkeep.store.models import ApiKeyRecord
from trailkeep.store.protocol import Store


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    token: str


class AuthService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._jwt = JwtVerifier(settings)
        self._cache: TtlCache[str, ApiKeyRecord | None] = TtlCache(settings.auth_cache_seconds)
        self._last_used: dict[str, int] = {}

    # -- authentication ------------------------------------------------------------
    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("missing credentials: send 'Authorization: Bearer <key>'")
        if keys.looks_like_api_key(token):
            return await self._from_api_key(token)
        return self._jwt.verify(token)

    async def _lookup(self, key_id: str) -> ApiKeyRecord | None:
        return await self._cache.get(key_id, lambda: self._store.get_key(key_id))

    async def _from_api_key(self, token: str) -> Principal:
        parsed = keys.parse(token)
        if parsed is None:
            raise Unauthenticated("malformed API key")
        key_id, secret = parsed
        record = await self._lookup(key_id)
        if record is None or not keys.matches(secret, record.secret_hash):
            raise Unauthenticated("unknown API key")
        if record.revoked_at is not None:
            raise Unauthenticated("this API key has been revoked")
        self._last_used[key_id] = now_us()
        return Principal(
            subject=f"key:{key_id}",
            tenant_id=record.tenant_id,
            roles=frozenset({Role(record.role)}),
            key_id=key_id,
        )

    async def flush_last_used(self) -> None:
        """Persist last-used times (batched: one write every few seconds, not per request)."""
        if not self._last_used:
            return
        pending, self._last_used = self._last_used, {}
        await self._store.touch_keys(pending)

    # -- key management ------------------------------------------------------------
    async def create_key(self, tenant_id: str | None, role: Role, name: str) -> CreatedKey:
        new = keys.generate()
        record = ApiKeyRecord(
            id=new.key_id,
            tenant_id=tenant_id,
            role=role.value,
            name=name,
            secret_hash=new.secret_hash,
            created_at=now_us(),
            revoked_at=None,
            last_used_at=None,
        )
        await self._store.create_key(record)
        return CreatedKey(record, new.token)

    async def list_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]:
        return await self._store.list_keys(tenant_id)

    async def revoke_key(self, key_id: str, tenant_id: str | None) -> None:
        if not await self._store.revoke_key(key_id, tenant_id, now_us()):
            raise NotFound("no such active API key")
        self._cache.forget(key_id)

    def forget_tenant_keys(self) -> None:
        self._cache.clear()
