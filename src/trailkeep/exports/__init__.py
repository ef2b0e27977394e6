"""Exports: a tenant's events (a seq range, optionally filtered) as a verifiable archive
of CSV, JSONL or Parquet with its proof bundle, kept in a local folder or in S3."""
