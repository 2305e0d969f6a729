"""`glassbox audit`: what is wrong with the data, before any training. The data is read as `glassbox train` reads
it (run/data.py), and the checks are the ones a training run's audit gate makes (run/audit_step.py)."""
from __future__ import annotations

import sys

from glassbox.config import make_config
from glassbox.errors import UserError
from glassbox.run.audit_step import audit_corpus_at, audit_examples
from glassbox.data.kinds import detect
from glassbox.run.data import load_test, settle_task, split_for
from glassbox.run.out_of_fold import too_few


def audit_data(data: str | None = None, label_errors: bool = True, folds: int = 5, show: bool = True, **settings):
    """Load the data as `train` would and run every check; returns the AuditReport."""
    cfg = make_config({**settings, "data": data or settings.get("data")})
    if not cfg.data:
        raise UserError("give the data to audit: glassbox audit DATA --label COL (or CORPUS --task lm)")
    if cfg.task == "lm":  # a language-model corpus: repeated lines, near-copied passages, validation in training
        report = audit_corpus_at(cfg.data, cfg.val_fraction)
    else:
        kind = detect(cfg.data, cfg)
        ex, note = settle_task(kind.load(cfg.data, cfg), cfg)
        if note and show:
            print(note, file=sys.stderr, flush=True)
        kind.check(ex)  # the checks training makes as it fits the encoder (a table's column with a stray 'inf' or word)
        test = load_test(cfg, ex) if cfg.test else None
        if label_errors and show and kind.fold.costly and not too_few(ex, folds):
            print(f"training {folds} small models on the {len(ex):,} {kind.plural}, each scoring the ones it did not see, for "
                  f"the likely-label-errors check (--no-label-errors skips it)", file=sys.stderr, flush=True)
        split = None
        if test is None:  # leakage across the split `glassbox train` would make (same seed and fractions)
            split = split_for(ex, cfg, has_test=False)
            split = split if all(len(idx) for idx in split.values()) else None
        report = audit_examples(ex, test, split, folds=folds, seed=cfg.seed, device=cfg.device, label_errors=label_errors,
                                show=show)
    if show:
        report.render()
    return report
