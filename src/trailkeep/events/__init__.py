"""Events: the schema, the ingest and query services, and their HTTP endpoints."""
