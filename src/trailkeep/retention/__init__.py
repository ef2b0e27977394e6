"""Retention: per-tenant policies, legal hold, archive-before-delete, tombstones."""
