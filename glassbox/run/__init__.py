"""Running jobs, on top of every layer: `glassbox train` (start.py: the shared front; classifier.py and lm.py:
the middles; finish.py: the shared end), `glassbox audit` (audit_data.py) and `glassbox eval` (eval_artifact.py).

    settings.py        the user's settings -> one typed config with the source of every value; what is refused
    folder.py          the run folder, and the record of the data files --resume checks
    data.py            reading the user's data, its labels and test file, and the split
    audit_step.py      the data audit and the gate that stops a run on its errors
    out_of_fold.py     the audit's fold models (k quick models, each scoring the examples it never saw)
    model_for_data.py  which encoder and model each kind of data gets
    after_training.py  calibration, per-class and per-group figures, the memorisation control
    cost.py            the cost ledger of a finished run
"""
