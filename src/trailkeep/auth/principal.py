"""Who is calling, and what they may do. Tenant scoping is decided here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from trailkeep.errors import BadRequest, Forbidden


class Role(StrEnum):
    ADMIN = "admin"  # platform operator: every tenant
    TENANT_ADMIN = "tenant_admin"  # one tenant: read, write, manage its keys
    WRITER = "writer"  # one tenant: ingest only
    READER = "reader"  # one tenant: read only
    AUDITOR = "auditor"  # one tenant: read, verify, export, subject reports; no keys


class Permission(StrEnum):
    INGEST = "ingest"
    READ = "read"
    MANAGE_KEYS = "manage_keys"
    VIEW_TENANT = "view_tenant"
    MANAGE_TENANTS = "manage_tenants"
    READ_SUBJECTS = "read_subjects"  # data-subject access reports
    ERASE_SUBJECTS = "erase_subjects"
    MANAGE_PRIVACY = "manage_privacy"  # the tenant's redaction/encryption settings
    EXPORT = "export"  # start, read and download export jobs
    MANAGE_RETENTION = "manage_retention"  # policy, legal hold, retention runs, archives


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.TENANT_ADMIN: frozenset(
        {
            Permission.INGEST,
            Permission.READ,
            Permission.MANAGE_KEYS,
            Permission.VIEW_TENANT,
            Permission.READ_SUBJECTS,
            Permission.ERASE_SUBJECTS,
            Permission.MANAGE_PRIVACY,
            Permission.EXPORT,
            Permission.MANAGE_RETENTION,
        }
    ),
    Role.WRITER: frozenset({Permission.INGEST}),
    Role.READER: frozenset({Permission.READ, Permission.VIEW_TENANT}),
    # Whether a role reads personal fields decrypted is the tenant's setting
    # (privacy/settings.py: reveal_to), not a permission here.
    Role.AUDITOR: frozenset(
        {Permission.READ, Permission.VIEW_TENANT, Permission.READ_SUBJECTS, Permission.EXPORT}
    ),
}


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # "key:<id>" or "jwt:<sub>"
    tenant_id: str | None  # None only for platform admins
    roles: frozenset[Role]
    key_id: str | None = None
    # Derived from roles once: checked for every event of a batch.
    permissions: frozenset[Permission] = field(init=False)

    def __post_init__(self) -> None:
        granted = frozenset().union(*(_GRANTS[role] for role in self.roles))
        object.__setattr__(self, "permissions", granted)

    @property
    def is_platform_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(f"this credential lacks the '{permission.value}' permission")

    def scope(self, permission: Permission, requested: str | None) -> str:
        """The tenant this request acts on.

        A tenant credential acts on its own tenant only; a platform admin must name one.
        """
        self.require(permission)
        if self.is_platform_admin:
            if not requested:
                raise BadRequest(
                    "platform admin credentials must name a tenant (tenant_id)",
                    details={"field": "tenant_id"},
                )
            return requested
        assert self.tenant_id is not None
        if requested is not None and requested != self.tenant_id:
            raise Forbidden("this credential may only act on its own tenant")
        return self.tenant_id
