"""Reading events: the page planner, row-by-row conditions, full-text pages."""
