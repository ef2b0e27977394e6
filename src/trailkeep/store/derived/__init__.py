"""Data derived from the log (full-text rows, stats rollups), kept by the indexer that
follows the log after commit (log/follower.py), and its recomputation check."""
