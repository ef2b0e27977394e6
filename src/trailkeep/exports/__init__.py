"""Exports: a tenant's events for a time range as a verifiable archive, kept locally or in S3."""
