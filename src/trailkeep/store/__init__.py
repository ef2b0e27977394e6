"""Storage: the Store protocol and its backends. Imports only trailkeep.kit."""
