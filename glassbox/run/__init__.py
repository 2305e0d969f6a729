"""The jobs, on top of every layer: a folder per command, each reading top to bottom, and at this level what they
all share.

    train/             `glassbox train` and `glassbox.train()`: settings and run folder, the labelled examples' or the
                       corpus's middle, the shared finish
    api.py             `glassbox.train()` from Python: what it takes, and the `Run` it returns (summary, predictor,
                       report inline in Jupyter, board)
    in_memory.py       a DataFrame, (X, y) or (texts, labels) given to `glassbox.train`, written as Parquet into the
                       run folder and read as a file is
    audit/             `glassbox audit`
    eval/              `glassbox eval`
    explain/           `glassbox explain`
    curve/             `glassbox curve`

    settings.py        the user's settings -> one typed config with the source of every value; what is refused
    folder.py          the run folder, and the record of the data files --resume checks
    data.py            reading the user's data (through its kind, glassbox/data/kinds), its labels and test file,
                       and the split
    audit_step.py      the data audit and the gate that stops a run on its errors
    out_of_fold.py     the audit's fold models (k quick models, each scoring the examples it never saw)
    model_for_data.py  which encoder and model the data gets (its kind's encoder, the model table's config)
"""
