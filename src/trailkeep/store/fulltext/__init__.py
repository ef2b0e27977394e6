"""What the full-text index holds per stored event, on both backends."""
