"""Reuse, screening and early-stopping plugin (issue 6): filled in by its own change."""
