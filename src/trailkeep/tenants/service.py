"""Tenant operations; also answers "does this tenant exist?" quickly for ingest."""

from __future__ import annotations

from typing import Any

from trailkeep.errors import BadRequest, Conflict, NotFound, ValidationFailed
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.kit.ttl_cache import TtlCache
from trailkeep.privacy.settings import effective, merged
from trailkeep.retention.policy import LegalHoldIn, RetentionPolicy, effective_policy
from trailkeep.store.models import TenantRecord
from trailkeep.store.protocol import Store
from trailkeep.tenants.models import TenantCreate, TenantOut, TenantUpdate

_EXISTS_TTL = 2.0


def to_out(record: TenantRecord) -> TenantOut:
    return TenantOut(
        id=record.id,
        display_name=record.display_name,
        retention_days=record.retention_days,
        retention=effective_policy(record.retention, record.retention_days).model_dump(),
        legal_hold=record.legal_hold,
        legal_hold_info=record.legal_hold_info if record.legal_hold else None,
        privacy=effective(record.privacy),
        created_at=format_us(record.created_at),
        updated_at=format_us(record.updated_at),
    )


class TenantService:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Only existence is kept: a tenant made by another process is found at once.
        self._known: TtlCache[str, bool] = TtlCache(_EXISTS_TTL, keep=bool)

    async def create(self, body: TenantCreate, by: str = "system") -> TenantRecord:
        now = now_us()
        retention = _retention_changes(
            body.retention, body.retention_days, set_days="retention_days" in body.model_fields_set
        )
        hold = _hold_changes(body.legal_hold, by, now)
        record = TenantRecord(
            id=body.id,
            display_name=body.display_name or body.id,
            retention_days=retention.get("retention_days"),
            legal_hold=hold["legal_hold"],
            created_at=now,
            updated_at=now,
            privacy=None if body.privacy is None else merged(None, body.privacy),
            retention=retention.get("retention"),
            legal_hold_info=hold["legal_hold_info"],
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

    async def update(self, tenant_id: str, body: TenantUpdate, by: str = "system") -> TenantRecord:
        now = now_us()
        given = body.model_fields_set
        changes: dict[str, Any] = {}
        if body.display_name is not None:
            changes["display_name"] = body.display_name
        if body.privacy is not None:
            current = await self.get(tenant_id)
            changes["privacy"] = merged(current.privacy, body.privacy)
        if "retention" in given or "retention_days" in given:
            policy: RetentionPolicy | None = body.retention
            if policy is None and "retention_days" in given:
                # the alias alone: keep the rest of the policy, change its default
                current_policy = effective_policy((await self.get(tenant_id)).retention, None)
                policy = current_policy.model_copy(update={"default_days": body.retention_days})
            changes |= _retention_changes(policy, body.retention_days, "retention_days" in given)
        if body.legal_hold is not None:
            changes |= _hold_changes(body.legal_hold, by, now)
        changes["updated_at"] = now
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


def _retention_changes(
    policy: RetentionPolicy | None, days: int | None, set_days: bool
) -> dict[str, Any]:
    """The columns of a policy: ``retention`` and its alias ``retention_days``."""
    if policy is None:
        return {"retention_days": days, "retention": None} if set_days else {}
    if set_days and policy.default_days != days:
        raise BadRequest("retention_days and retention.default_days disagree; send one of them")
    return {"retention_days": policy.default_days, "retention": policy.model_dump()}


def _hold_changes(hold: bool | LegalHoldIn, by: str, at: int) -> dict[str, Any]:
    """The columns of a legal hold: ``legal_hold`` and who set it, when and why."""
    on, reason = (hold, None) if isinstance(hold, bool) else (hold.on, hold.reason)
    if isinstance(hold, LegalHoldIn) and on and not reason:
        raise ValidationFailed('a legal hold needs a reason: {"on": true, "reason": "..."}')
    info = {"reason": reason, "set_by": by, "set_at": format_us(at)} if on else None
    return {"legal_hold": on, "legal_hold_info": info}
