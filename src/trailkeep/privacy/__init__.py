"""Privacy: redaction at ingest, sealed personal fields, masking by role, erasure."""
