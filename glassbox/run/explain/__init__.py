"""`glassbox explain`: one training step taken apart (explain.py), its arithmetic (step.py), its words (words.py),
and the same from a finished run's earliest checkpoint (from_run.py)."""
