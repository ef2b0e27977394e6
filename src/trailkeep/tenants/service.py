"""Tenant operations; also answers "does this tenant exist?" quickly for ingest."""

from __future__ import annotations

from typing import Any

from trailkeep.errors import Conflict, NotFound
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.kit.ttl_cache import TtlCache
from trailkeep.privacy.settings import effective, merged
from trailkeep.store.models import TenantRecord
from trailkeep.store.protocol import Store
from trailkeep.tenants.models import TenantCreate, TenantOut, TenantUpdate

_EXISTS_TTL = 2.0


def to_out(record: TenantRecord) -> TenantOut:
    return TenantOut(
        id=record.id,
        display_name=record.display_name,
        retention_days=record.retention_days,
        legal_hold=record.legal_hold,
        privacy=effective(record.privacy),
        created_at=format_us(record.created_at),
        updated_at=format_us(record.updated_at),
    )


class TenantService:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Only existence is kept: a tenant made by another process is found at once.
        self._known: TtlCache[str, bool] = TtlCache(_EXISTS_TTL, keep=bool)

    async def create(self, body: TenantCreate) -> TenantRecord:
        now = now_us()
        record = TenantRecord(
            id=body.id,
            display_name=body.display_name or body.id,
            retention_days=body.retention_days,
            legal_hold=body.legal_hold,
            created_at=now,
            updated_at=now,
            privacy=None if body.privacy is None else merged(None, body.privacy),
        )
        if await self._store.get_tenant(body.id) is None and (
            await self._store.latest_checkpoint(body.id) is not None
        ):
            # A deleted tenant's signed checkpoints are kept: a new log under the same
            # origin would contradict them, and auditors holding them would see a fork.
            raise Conflict(
                f"tenant id '{body.id}' belonged to a deleted tenant whose log was signed;"
                " the id of a signed log is never reused, choose another"
            )
        if not await self._store.create_tenant(record):
            raise Conflict(f"tenant '{body.id}' already exists")
        return record

    async def get(self, tenant_id: str) -> TenantRecord:
        record = await self._store.get_tenant(tenant_id)
        if record is None:
            raise NotFound(f"tenant '{tenant_id}' not found")
        return record

    async def list(self, after: str | None, limit: int) -> list[TenantRecord]:
        return await self._store.list_tenants(after, limit)

    async def update(self, tenant_id: str, body: TenantUpdate) -> TenantRecord:
        changes = body.model_dump(exclude_unset=True, exclude={"privacy"})
        if body.privacy is not None:
            current = await self.get(tenant_id)
            changes["privacy"] = merged(current.privacy, body.privacy)
        if "display_name" in changes and changes["display_name"] is None:
            del changes["display_name"]
        if "legal_hold" in changes and changes["legal_hold"] is None:
            del changes["legal_hold"]
        changes["updated_at"] = now_us()
        if not await self._store.update_tenant(tenant_id, changes):
            raise NotFound(f"tenant '{tenant_id}' not found")
        return await self.get(tenant_id)

    async def delete(self, tenant_id: str) -> None:
        record = await self.get(tenant_id)
        if record.legal_hold:
            raise Conflict(f"tenant '{tenant_id}' is under legal hold; lift it before deleting")
        if not await self._store.delete_tenant(tenant_id):
            raise NotFound(f"tenant '{tenant_id}' not found")
        self._known.forget(tenant_id)

    async def privacy_settings(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's stored privacy settings (None: the defaults); 404 if no tenant."""
        return (await self.get(tenant_id)).privacy

    async def require_exists(self, tenant_id: str) -> None:
        """404 unless the tenant exists (cached for a moment: this runs on every ingest)."""
        if not await self._known.get(tenant_id, lambda: self._exists(tenant_id)):
            raise NotFound(f"tenant '{tenant_id}' not found")

    async def _exists(self, tenant_id: str) -> bool:
        return await self._store.get_tenant(tenant_id) is not None
