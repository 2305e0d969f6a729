"""`glassbox audit`: the data's audit before any training (audit.py)."""
