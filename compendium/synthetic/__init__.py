"""The synthetic world."""
