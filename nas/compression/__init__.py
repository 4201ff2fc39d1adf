"""econas compression (see plugin.py)."""
