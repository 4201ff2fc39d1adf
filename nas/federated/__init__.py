"""econas federated (see plugin.py)."""
