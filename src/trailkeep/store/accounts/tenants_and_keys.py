"""Tenants and API keys: plain SQL that both backends run.

SQLite runs these on its writer thread (writes) or a reader connection; PostgreSQL on a
pooled connection through the qmark adapter (store/postgres/qmark.py).
"""

from __future__ import annotations

from typing import Any

from trailkeep.kit import jsonutil
from trailkeep.store.connection import SqlConnection
from trailkeep.store.models import ApiKeyRecord, TenantRecord

_TENANT_COLUMNS = (
    "id, display_name, retention_days, legal_hold, created_at, updated_at, privacy,"
    " retention, legal_hold_info"
)
_JSON_COLUMNS = ("privacy", "retention", "legal_hold_info")
_KEY_COLUMNS = "id, tenant_id, role, name, secret_hash, created_at, revoked_at, last_used_at"
_TENANT_UPDATABLE = {
    "display_name",
    "retention_days",
    "legal_hold",
    "updated_at",
    "privacy",
    "retention",
    "legal_hold_info",
}


def _json_text(value: dict[str, Any] | None) -> str | None:
    # TEXT, not the bytes orjson writes: SQLite would store bytes as a BLOB.
    return None if value is None else jsonutil.dumps(value).decode()


def _json_of(text: str | None) -> dict[str, Any] | None:
    return None if text is None else jsonutil.loads(text)


def _tenant(row: tuple[Any, ...]) -> TenantRecord:
    return TenantRecord(
        row[0],
        row[1],
        row[2],
        bool(row[3]),
        row[4],
        row[5],
        _json_of(row[6]),
        _json_of(row[7]),
        _json_of(row[8]),
    )


def _key(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], row[2], row[3], bytes(row[4]), row[5], row[6], row[7])


def insert_tenant(conn: SqlConnection, t: TenantRecord) -> bool:
    cur = conn.execute(
        f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (id) DO NOTHING",
        (
            t.id,
            t.display_name,
            t.retention_days,
            t.legal_hold,
            t.created_at,
            t.updated_at,
            _json_text(t.privacy),
            _json_text(t.retention),
            _json_text(t.legal_hold_info),
        ),
    )
    return bool(cur.rowcount == 1)


def select_tenant(conn: SqlConnection, tenant_id: str) -> TenantRecord | None:
    row = conn.execute(
        f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = ?", (tenant_id,)
    ).fetchone()
    return None if row is None else _tenant(row)


def select_tenants(conn: SqlConnection, after: str | None, limit: int) -> list[TenantRecord]:
    rows = conn.execute(
        f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id > ? ORDER BY id LIMIT ?",
        (after or "", limit),
    ).fetchall()
    return [_tenant(r) for r in rows]


def update_tenant(conn: SqlConnection, tenant_id: str, changes: dict[str, Any]) -> bool:
    """Set the named columns; ``privacy`` takes the settings object (None: the defaults)."""
    unknown = set(changes) - _TENANT_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return select_tenant(conn, tenant_id) is not None
    changes = {k: _json_text(v) if k in _JSON_COLUMNS else v for k, v in changes.items()}
    assignments = ", ".join(f"{name} = ?" for name in changes)
    cur = conn.execute(
        f"UPDATE tenants SET {assignments} WHERE id = ?", (*changes.values(), tenant_id)
    )
    return bool(cur.rowcount == 1)


def delete_tenant(conn: SqlConnection, tenant_id: str, data_tables: tuple[str, ...]) -> bool:
    """Delete a tenant and everything it owns (``data_tables``: see store/tables.py)."""
    cur = conn.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
    if cur.rowcount != 1:
        return False
    for table in data_tables:
        conn.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant_id,))
    return True


def insert_key(conn: SqlConnection, k: ApiKeyRecord) -> None:
    conn.execute(
        f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
        (
            k.id,
            k.tenant_id,
            k.role,
            k.name,
            k.secret_hash,
            k.created_at,
            k.revoked_at,
            k.last_used_at,
        ),
    )


def select_key(conn: SqlConnection, key_id: str) -> ApiKeyRecord | None:
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else _key(row)


def select_keys(conn: SqlConnection, tenant_id: str | None) -> list[ApiKeyRecord]:
    if tenant_id is None:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id IS NULL ORDER BY created_at"
        rows = conn.execute(sql).fetchall()
    else:
        sql = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at"
        rows = conn.execute(sql, (tenant_id,)).fetchall()
    return [_key(r) for r in rows]


def revoke_key(conn: SqlConnection, key_id: str, tenant_id: str | None, at: int) -> bool:
    """Revoke a key; with ``tenant_id`` only if the key belongs to that tenant."""
    sql = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
    args: tuple[Any, ...] = (at, key_id)
    if tenant_id is not None:
        sql += " AND tenant_id = ?"
        args = (*args, tenant_id)
    return bool(conn.execute(sql, args).rowcount == 1)


def touch_keys(conn: SqlConnection, last_used: dict[str, int]) -> None:
    conn.executemany(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND"
        " (last_used_at IS NULL OR last_used_at < ?)",
        [(at, key_id, at) for key_id, at in last_used.items()],
    )
