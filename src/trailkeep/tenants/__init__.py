"""Tenants: create, list, read, update and delete, with their settings."""
