"""Confusion matrix and per-class precision, recall and F1: where the errors fall, class by class.

Accuracy alone hides a class the model never gets right; these figures show it.
Definitions follow scikit-learn (rows of the confusion matrix are true classes, columns
predicted ones; a ratio with nothing to divide by is 0.0, as with `zero_division=0`).
"""
from __future__ import annotations

import numpy as np


def _as_class_ids(values, k: int, what: str) -> np.ndarray:
    """Integer class ids in [0, k), or a ValueError naming the bad value."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of class ids; got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must hold integer class ids; got dtype {arr.dtype}.")
    if arr.size and (arr.min() < 0 or arr.max() >= k):
        bad = arr[(arr < 0) | (arr >= k)][0]
        raise ValueError(f"{what} holds class id {bad}, outside 0..{k - 1}; pass k = the number of classes.")
    return arr.astype(np.int64)


def confusion_matrix(labels, preds, k: int) -> np.ndarray:
    """(k, k) int64 counts: entry [i, j] is how many examples of true class i were predicted as j."""
    labels = _as_class_ids(labels, k, "labels")
    preds = _as_class_ids(preds, k, "preds")
    if len(labels) != len(preds):
        raise ValueError(f"labels and preds differ in length: {len(labels)} vs {len(preds)}.")
    # One bincount over the flattened (true, predicted) index is the whole table.
    return np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0.0 where den is 0 (a class never predicted has precision 0, as in sklearn)."""
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_report(labels, preds, class_names: list[str]) -> dict:
    """Precision, recall, F1 and support for each class, their macro and support-weighted means.

    Returns a JSON-safe dict:
      {"accuracy", "n", "classes": [{"name", "precision", "recall", "f1", "support", "predicted"}],
       "macro": {"precision", "recall", "f1"}, "weighted": {...}, "confusion_matrix": [[int]],
       "worst_class": name with the lowest F1 among classes that occur}
    Macro F1 is the mean of the per-class F1 scores (sklearn's definition), not the F1 of macro P and R.
    """
    k = len(class_names)
    cm = confusion_matrix(labels, preds, k)
    true_pos = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)       # how many of each class there really are
    predicted = cm.sum(axis=0)     # how many times the model said each class
    precision = _ratio(true_pos, predicted)
    recall = _ratio(true_pos, support)
    f1 = _ratio(2 * precision * recall, precision + recall)

    n = int(cm.sum())
    weights = support / n if n else np.zeros(k)
    classes = [
        {"name": str(name), "precision": float(p), "recall": float(r), "f1": float(f),
         "support": int(s), "predicted": int(c)}
        for name, p, r, f, s, c in zip(class_names, precision, recall, f1, support, predicted)
    ]
    present = [c for c in classes if c["support"] > 0]
    return {
        "accuracy": float(true_pos.sum() / n) if n else 0.0,
        "n": n,
        "classes": classes,
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                  "f1": float(f1.mean())},
        "weighted": {"precision": float(weights @ precision), "recall": float(weights @ recall),
                     "f1": float(weights @ f1)},
        "confusion_matrix": cm.tolist(),
        "worst_class": min(present, key=lambda c: c["f1"])["name"] if present else None,
    }
