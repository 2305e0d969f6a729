"""`glassbox train` and `glassbox.train()`: start.py (settings, run folder) -> classifier.py (labelled examples, with
the task's classify.py or regression.py) or lm.py (a corpus) -> finish.py (summary.json, report, closing lines);
after_training.py (a classifier's calibration, groups, control) and cost.py (the cost ledger) on the way."""
