"""Credentials (API keys, JWT bearer tokens), principals and roles."""
