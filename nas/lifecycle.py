"""Lifecycle carbon (issue 5): filled in by its own change."""
