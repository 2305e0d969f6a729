"""`glassbox eval`: score a frozen classifier or regression on a labelled file, read exactly as `glassbox train` reads data
(run/data.py): overall, per class, per group, and apart on the examples the model already saw."""
from __future__ import annotations

import numpy as np

from glassbox.config import make_config
from glassbox.data.regression import as_regression
from glassbox.data.kinds import for_encoder
from glassbox.run.data import align_test


def evaluate_artifact(artifact: str, data: str, label: str | None = None, text: str | None = None,
                      columns=None, group=(), label_from_name: str | None = None, seed: int = 0) -> dict:
    """`glassbox eval`: score a frozen artifact on a labelled file, overall, per class and per group."""
    from glassbox.evaluate.calibration import accuracy, brier, ece, mce, nll
    from glassbox.evaluate.classification import per_class_report
    from glassbox.evaluate.groups import groups_report
    from glassbox.infer.predictor import Predictor
    from glassbox.report.words import groups as group_words

    predictor = Predictor(artifact)
    kind = for_encoder(predictor.manifest["preprocessing"]["type"])
    given = {"label": label, "text": text, "columns": columns, "label_from_name": label_from_name}
    trained = predictor.manifest.get("data_format") or {}  # flags not given: read the file as training read its data
    cfg = make_config({**{k: v if v is not None else trained.get(k) for k, v in given.items()},
                       "group": list(group or []), "seed": seed})
    ex = kind.load(data, cfg, classes=predictor.classes or None, **kind.encoder_shape(predictor.encoder))
    if predictor.regression:
        return regression_eval(predictor, kind, as_regression(ex, must_vary=False), artifact, data)
    ex = align_test(ex, predictor.classes)
    inputs = kind.model_inputs(predictor.encoder, ex.inputs)
    probs = predictor.predict_proba(inputs).numpy()
    y = ex.labels
    out = {"artifact": str(artifact), "data": str(data), "n": len(y), "calibrated": predictor.calibrated,
           "temperature": predictor.temperature, "accuracy": accuracy(probs, y), "nll": nll(probs, y),
           "ece": ece(probs, y), "mce": mce(probs, y), "brier": brier(probs, y),
           "per_class": per_class_report(y, probs.argmax(1), predictor.classes)}
    if ex.groups:
        positive = 1 if len(predictor.classes) == 2 else None
        groups = groups_report(probs, y, ex.groups, positive_class=positive, seed=seed)
        out["groups"] = group_words.worded(groups, list(predictor.classes))
    seen = seen_rows(artifact, predictor.manifest, ex, out)
    if seen is not None and 0 < seen.sum() < len(seen):
        fresh = ~seen
        out["unseen"] = {"n": int(fresh.sum()), "accuracy": accuracy(probs[fresh], y[fresh]),
                         "nll": nll(probs[fresh], y[fresh]), "ece": ece(probs[fresh], y[fresh])}
    return out


def seen_rows(artifact: str, manifest: dict, ex, out: dict) -> np.ndarray | None:
    """Which of these examples the model trained on or was tuned on (None: the artifact does not record them);
    out["seen"] gets their count, share and every one's file line (or image file), to remove them."""
    from glassbox.export.artifact import hash_keys, load_seen

    seen_hashes = load_seen(artifact, manifest)
    if seen_hashes is None:
        return None
    seen = np.isin(hash_keys(ex.keys), seen_hashes)
    out["seen"] = {"count": int(seen.sum()), "share": float(seen.mean()) if len(seen) else 0.0,
                   "lines": [_plain(ex.lines[i]) if ex.lines else int(i) + 1 for i in np.flatnonzero(seen)]}
    return seen


def regression_eval(predictor, kind, ex, artifact: str, data: str) -> dict:
    """A regression artifact on labelled data: RMSE, MAE and R^2, the prediction intervals' coverage, per-group
    errors, and the same apart on the rows it never saw."""
    from glassbox.evaluate.regression import coverage, errors, group_errors
    from glassbox.report.words.regression import worded_groups

    pred = predictor.predict_values(kind.model_inputs(predictor.encoder, ex.inputs))
    y = ex.targets
    interval = {**predictor.interval, "guaranteed_at_most": predictor.manifest["interval"]["guaranteed_at_most"]}
    out = {"artifact": str(artifact), "data": str(data), "task": "regression", **errors(y, pred),
           "interval": {**interval, "test": coverage(y, pred, interval)}}
    if ex.groups:
        out["groups"] = worded_groups(group_errors(y, pred, ex.groups))
    seen = seen_rows(artifact, predictor.manifest, ex, out)
    if seen is not None and 0 < seen.sum() < len(seen):
        out["unseen"] = errors(y[~seen], pred[~seen])
    return out


def _plain(x):
    """A line number as an int, a file name as a str (JSON-safe either way)."""
    return int(x) if isinstance(x, (int, np.integer)) else str(x)
