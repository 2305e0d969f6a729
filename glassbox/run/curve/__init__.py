"""`glassbox curve`: what more examples buy (curve.py), with one group cut down (skew.py) or by corpus size (lm.py);
what every curve trains and measures is in training.py."""

REPEATS = 3  # trainings per size (or per side of a skew), each its own seed: verdicts allow for their spread
