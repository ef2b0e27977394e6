"""Pure helpers. This package imports nothing else of Trailkeep."""
