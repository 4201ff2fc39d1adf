"""Green-window scheduling and carbon budget in a study (issue 4): filled in by its own change."""
