"""`glassbox eval`: a frozen artifact scored on a labelled file (artifact.py)."""
