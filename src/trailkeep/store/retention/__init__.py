"""Retention's storage: pruning rows into tombstones, runs, archive segments."""
