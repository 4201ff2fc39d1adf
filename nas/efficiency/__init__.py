"""econas efficiency (see plugin.py)."""
