"""Alembic migrations, one version history per backend (versions_sqlite, versions_postgresql).

Run them with ``trailkeep migrate``; store/migrations/runner.py drives Alembic from code.
"""
