"""Storage: the Store protocol and its backends. Imports only trailkeep.kit,
trailkeep.errors and trailkeep.query.filter (the filter model of page reads)."""
