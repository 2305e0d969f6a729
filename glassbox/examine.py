"""Look at data, or at a frozen model, without training: `glassbox audit` and `glassbox eval`.

Both load data exactly as `glassbox train` does (the loaders in pipeline.py)."""
from __future__ import annotations

import sys

import numpy as np

from glassbox.config import make_config
from glassbox.audit.duplicates import split_keys
from glassbox.data.split import split_indices
from glassbox.errors import UserError
from glassbox.out_of_fold import label_check, too_few
from glassbox.load_data import align_test, check_labels, kind_of, load_examples, load_test


def audit_data(data: str | None = None, label_errors: bool = True, folds: int = 5, show: bool = True, **settings):
    """`glassbox audit`: load the data as `train` would and run every check; returns the AuditReport."""
    from glassbox.audit import run_audit

    cfg = make_config({**settings, "data": data or settings.get("data")})
    if not cfg.data:
        raise UserError("give the data to audit: glassbox audit DATA --label COL (or CORPUS --task lm)")
    if cfg.task == "lm":  # a language-model corpus: repeated lines, near-copied passages, validation in training
        from glassbox.audit.corpus import audit_corpus
        from glassbox.data.corpus import corpus_files

        files = corpus_files(cfg.data)
        if not any(text.strip() for _, text in files):
            raise UserError(f"the corpus {cfg.data} is empty; give a text file with some text in it")
        report = audit_corpus(files, cfg.val_fraction)
        if show:
            report.render()
        return report
    kind = kind_of(cfg.data, cfg)
    ex = load_examples(cfg.data, cfg, kind)
    check_labels(ex)
    if ex.kind == "tabular":  # the column checks training makes (a numeric column with a stray 'inf' or word)
        from glassbox.data.tabular import TabularEncoder

        TabularEncoder().fit(ex)
    test = None
    if cfg.test:
        test = load_test(cfg, ex)
    if label_errors and show and ex.kind == "image" and not too_few(ex, folds):
        print(f"training {folds} small CNNs on the {len(ex):,} images, each scoring the ones it did not see, for the "
              f"likely-label-errors check (--no-label-errors skips it)", file=sys.stderr, flush=True)
    probs, note = label_check(ex, folds, cfg.seed, cfg.device) if label_errors else (None, "not checked (--no-label-errors).")
    split = None
    if test is None:  # leakage across the split `glassbox train` would make (same seed and fractions)
        split = split_indices(split_keys(ex), ex.labels, (1 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction,
                                                          cfg.test_fraction), cfg.seed)
        split = split if all(len(idx) for idx in split.values()) else None
    report = run_audit(ex, test=test, split=split, pred_probs=probs, label_errors_note=note)
    if show:
        report.render()
    return report


def evaluate_artifact(artifact: str, data: str, label: str | None = None, text: str | None = None,
                      columns=None, group=(), label_from_name: str | None = None, seed: int = 0) -> dict:
    """`glassbox eval`: score a frozen artifact on a labelled file, overall, per class and per group."""
    from glassbox.evaluate.calibration import accuracy, brier, ece, mce, nll
    from glassbox.export.artifact import hash_keys, load_seen
    from glassbox.evaluate.classification import per_class_report
    from glassbox.evaluate.groups import groups_report
    from glassbox.infer.predictor import Predictor

    predictor = Predictor(artifact)
    if predictor.manifest["task"] != "classify":
        raise UserError("glassbox eval scores classifiers; for a language model see its run's summary and report")
    kind = {"tabular": "tabular", "image": "image"}.get(predictor.manifest["preprocessing"]["type"], "text")
    given = {"label": label, "text": text, "columns": columns, "label_from_name": label_from_name}
    trained = predictor.manifest.get("data_format") or {}  # flags not given: read the file as training read its data
    cfg = make_config({**{k: v if v is not None else trained.get(k) for k, v in given.items()},
                       "group": list(group or []), "seed": seed})
    ex = load_examples(data, cfg, kind, classes=predictor.classes if kind == "image" else None,
                       size=predictor.encoder.size if kind == "image" else None)
    ex = align_test(ex, predictor.classes)
    inputs = predictor.encoder.frame(ex.inputs) if kind == "tabular" else ex.inputs
    probs = predictor.predict_proba(inputs).numpy()
    y = ex.labels
    out = {"artifact": str(artifact), "data": str(data), "n": len(y), "calibrated": predictor.calibrated,
           "temperature": predictor.temperature, "accuracy": accuracy(probs, y), "nll": nll(probs, y),
           "ece": ece(probs, y), "mce": mce(probs, y), "brier": brier(probs, y),
           "per_class": per_class_report(y, probs.argmax(1), predictor.classes)}
    if ex.groups:
        out["groups"] = groups_report(probs, y, ex.groups, positive_class=1 if len(predictor.classes) == 2 else None, seed=seed)
    seen_hashes = load_seen(artifact, predictor.manifest)
    if seen_hashes is not None:  # which of these examples the model trained on or was tuned on
        seen = np.isin(hash_keys(ex.keys), seen_hashes)
        rows = np.flatnonzero(seen)
        out["seen"] = {"count": int(seen.sum()), "share": float(seen.mean()) if len(seen) else 0.0,
                       # every one, to remove them: the file line, or for images the file itself
                       "lines": [_plain(ex.lines[i]) if ex.lines else int(i) + 1 for i in rows]}
        if 0 < seen.sum() < len(seen):
            fresh = ~seen
            out["unseen"] = {"n": int(fresh.sum()), "accuracy": accuracy(probs[fresh], y[fresh]),
                             "nll": nll(probs[fresh], y[fresh]), "ece": ece(probs[fresh], y[fresh])}
    return out


def _plain(x):
    """A line number as an int, a file name as a str (JSON-safe either way)."""
    return int(x) if isinstance(x, (int, np.integer)) else str(x)
