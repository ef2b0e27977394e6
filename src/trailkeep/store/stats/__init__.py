"""Stats: the rollups ingest keeps, their writes, and the reads that answer from them."""
