"""Principal.scope: which tenant a request acts on, and with which permissions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.auth.principal import Permission, Principal, Role
from trailkeep.errors import BadRequest, Forbidden

P = Permission
# The rules, written out: what each role may do.
ALLOWED = {
    Role.ADMIN: set(Permission),
    Role.TENANT_ADMIN: {
        P.INGEST,
        P.READ,
        P.MANAGE_KEYS,
        P.VIEW_TENANT,
        P.READ_SUBJECTS,
        P.ERASE_SUBJECTS,
        P.MANAGE_PRIVACY,
        P.EXPORT,
        P.MANAGE_RETENTION,
    },
    Role.WRITER: {P.INGEST},
    Role.READER: {P.READ, P.VIEW_TENANT},
    Role.AUDITOR: {P.READ, P.VIEW_TENANT, P.READ_SUBJECTS, P.EXPORT},
}
TENANT_ROLES = [Role.TENANT_ADMIN, Role.WRITER, Role.READER, Role.AUDITOR]


def tenant_principal(*roles: Role, tenant: str = "acme") -> Principal:
    return Principal(subject="key:k1", tenant_id=tenant, roles=frozenset(roles), key_id="k1")


ADMIN = Principal(subject="key:root", tenant_id=None, roles=frozenset({Role.ADMIN}))


@pytest.mark.parametrize("role", TENANT_ROLES)
@pytest.mark.parametrize("permission", list(Permission))
def test_tenant_roles_act_on_their_own_tenant_only(role: Role, permission: Permission) -> None:
    who = tenant_principal(role)
    if permission in ALLOWED[role]:
        assert who.can(permission)
        who.require(permission)
        assert who.scope(permission, None) == "acme"
        assert who.scope(permission, "acme") == "acme"
        with pytest.raises(Forbidden):
            who.scope(permission, "globex")
    else:
        assert not who.can(permission)
        with pytest.raises(Forbidden):
            who.require(permission)
        for requested in (None, "acme", "globex"):
            with pytest.raises(Forbidden):
                who.scope(permission, requested)


@pytest.mark.parametrize("permission", list(Permission))
def test_platform_admin_must_name_a_tenant(permission: Permission) -> None:
    assert ADMIN.is_platform_admin and ADMIN.can(permission)
    assert ADMIN.scope(permission, "globex") == "globex"
    assert ADMIN.scope(permission, "acme") == "acme"
    for missing in (None, ""):
        with pytest.raises(BadRequest) as info:
            ADMIN.scope(permission, missing)
        assert info.value.status == 400
        assert info.value.details == {"field": "tenant_id"}


def test_tenant_admin_is_not_a_platform_admin() -> None:
    who = tenant_principal(Role.TENANT_ADMIN)
    assert not who.is_platform_admin
    with pytest.raises(Forbidden):
        who.scope(P.MANAGE_TENANTS, "acme")


def test_roles_combine() -> None:
    who = tenant_principal(Role.WRITER, Role.READER)
    assert who.scope(P.INGEST, None) == "acme"
    assert who.scope(P.READ, None) == "acme"
    with pytest.raises(Forbidden):
        who.scope(P.MANAGE_KEYS, None)
    with pytest.raises(Forbidden):
        who.scope(P.READ, "globex")


def test_errors_carry_their_status() -> None:
    with pytest.raises(Forbidden) as info:
        tenant_principal(Role.READER).scope(P.READ, "globex")
    assert info.value.status == 403 and info.value.code == "forbidden"
    with pytest.raises(Forbidden) as info:
        tenant_principal(Role.WRITER).require(P.READ)
    assert "read" in info.value.message


TENANT_NAMES = st.text(min_size=1, max_size=20)


@settings(max_examples=200)
@given(
    own=TENANT_NAMES,
    requested=st.none() | TENANT_NAMES,
    role=st.sampled_from(TENANT_ROLES),
    permission=st.sampled_from(list(Permission)),
)
def test_a_tenant_credential_never_reaches_another_tenant(
    own: str, requested: str | None, role: Role, permission: Permission
) -> None:
    who = tenant_principal(role, tenant=own)
    try:
        scoped = who.scope(permission, requested)
    except Forbidden:
        assert permission not in ALLOWED[role] or requested not in (None, own)
    else:
        assert scoped == own
        assert permission in ALLOWED[role] and requested in (None, own)
