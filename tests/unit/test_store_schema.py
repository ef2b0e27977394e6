"""The table definitions: tenant data is keyed and indexed by tenant first."""

from __future__ import annotations

from trailkeep.store.tables import postgres_metadata, sqlite_metadata


def test_every_index_of_tenant_data_is_led_by_tenant_id() -> None:
    tables = [*postgres_metadata.tables.values(), *sqlite_metadata.tables.values()]
    for table in tables:
        if table.name == "tenants":
            continue
        # API keys are found by their own id (a credential names no tenant up front).
        primary = [] if table.name == "api_keys" else [table.primary_key]
        keys = [*primary, *table.indexes, *table.constraints]
        for key in keys:
            if key is table.primary_key and table.name == "api_keys":
                continue
            # A GIN index cannot lead with a btree column (that takes the btree_gin
            # extension); searches add tenant_id = ? and PostgreSQL rechecks it.
            if key.name == "ix_events_search":
                continue
            columns = [c.name for c in getattr(key, "columns", [])]
            if columns:
                assert columns[0] == "tenant_id", (table.name, key.name, columns)
