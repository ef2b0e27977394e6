"""Stats: counts over time and the top groups of a query (GET /v1/stats)."""
