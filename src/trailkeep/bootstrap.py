"""First-run set-up: the platform admin key and, on request, a demo tenant with keys.

Secrets are shown once and only hashes are stored. For the demo, the keys are also kept
in ``<data_dir>/demo-credentials.json`` (mode 0600) so that ``make run`` can show them
again; never use the demo in production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from trailkeep.auth.principal import Role
from trailkeep.auth.service import AuthService
from trailkeep.config import Settings
from trailkeep.kit.jsonutil import dumps, loads
from trailkeep.store.protocol import Store
from trailkeep.tenants.models import TenantCreate
from trailkeep.tenants.service import TenantService

DEMO_TENANT = "demo"


@dataclass
class InitResult:
    database: str
    admin_key: str | None = None  # set only when created now
    demo: dict[str, str] = field(default_factory=dict)


def _demo_file(settings: Settings) -> Path:
    return settings.data_dir / "demo-credentials.json"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


async def _demo_keys_valid(auth: AuthService, saved: dict[str, str]) -> bool:
    try:
        for token in saved.values():
            await auth.authenticate(token)
    except Exception:
        return False
    return True


async def initialize(store: Store, settings: Settings, *, demo: bool) -> InitResult:
    auth = AuthService(store, settings)
    tenants = TenantService(store)
    result = InitResult(database=settings.database().redacted)
    if not await store.list_keys(None):
        created = await auth.create_key(None, Role.ADMIN, "bootstrap admin")
        result.admin_key = created.token
    if not demo:
        return result
    path = _demo_file(settings)
    if path.exists():
        saved: dict[str, str] = loads(path.read_bytes())
        if await _demo_keys_valid(auth, saved):
            result.demo = saved
            return result
    if await store.get_tenant(DEMO_TENANT) is None:
        await tenants.create(TenantCreate(id=DEMO_TENANT, display_name="Demo tenant"), "init")
    demo_keys: dict[str, str] = {}
    if result.admin_key is None:
        platform = await auth.create_key(None, Role.ADMIN, "demo platform admin")
        demo_keys["platform_admin"] = platform.token
    else:
        demo_keys["platform_admin"] = result.admin_key
    for role in (Role.TENANT_ADMIN, Role.WRITER, Role.READER, Role.AUDITOR):
        created = await auth.create_key(DEMO_TENANT, role, f"demo {role.value}")
        demo_keys[role.value] = created.token
    _write_private(path, dumps(demo_keys))
    result.demo = demo_keys
    return result
