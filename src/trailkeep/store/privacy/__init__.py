"""Storage for privacy: subjects' data keys, the tenant's index key (keys_sql.py) and
the events per subject that the indexer counts (subject_counts.py)."""
