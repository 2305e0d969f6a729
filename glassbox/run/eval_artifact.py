"""`glassbox eval`: score a frozen classifier on a labelled file, read exactly as `glassbox train` reads data
(run/data.py): overall, per class, per group, and apart on the examples the model already saw."""
from __future__ import annotations

import numpy as np

from glassbox.config import make_config
from glassbox.errors import UserError
from glassbox.run.data import align_test, load_examples


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
        positive = 1 if len(predictor.classes) == 2 else None
        out["groups"] = groups_report(probs, y, ex.groups, positive_class=positive, seed=seed,
                                      classes=list(predictor.classes))
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
