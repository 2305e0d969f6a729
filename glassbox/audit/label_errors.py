"""Likely label errors: examples whose given label a model trained without them does not believe.

The probabilities must be out-of-fold (each example scored by a model that never saw it; see
glassbox/run/out_of_fold.py): a model scored on its own training data agrees with every label, wrong or not.
cleanlab's confident learning estimates how many labels are wrong (the off-diagonal of the calibrated
confident joint) and we flag that many of the least believable examples, ranked by the probability the
model gives their label. On SMS spam with 5% of labels flipped this finds more of them than cleanlab's
default filter (prune_by_noise_rate) at the same or better precision (recall 0.89 vs 0.87, flip seed 0).
"""
from __future__ import annotations

import numpy as np

from glassbox.audit.report import Finding, flagged_rows
from glassbox.data.examples import Examples

MANY = 0.05  # flagging more than this share of the examples gets a word on what that usually means
MIN_SKILL = 0.25  # fold models that close less of the gap from the majority class to perfect know too little to doubt a label


def import_cleanlab() -> None:
    """Load cleanlab's modules now (about a second, mostly the scikit-learn they import), e.g. while fold models
    train in other processes, instead of when `label_errors` first runs."""
    import warnings

    with warnings.catch_warnings():  # in a notebook without ipywidgets, tqdm.auto warns as cleanlab imports it;
        warnings.filterwarnings("ignore", message="IProgress not found")  # cleanlab's bars are never shown here
        import cleanlab.filter  # noqa: F401
        import cleanlab.rank  # noqa: F401


def label_errors(ex: Examples, pred_probs: np.ndarray, filter_by: str = "calibrated_count") -> Finding:
    """Flag the examples the model believes least, most suspicious first.

    filter_by: "calibrated_count" (cleanlab's calibrated estimate of how many labels are wrong, that many
               lowest self-confidence examples), or any `filter_by` of cleanlab.filter.find_label_issues."""
    import_cleanlab()
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.shape != (len(ex), len(ex.classes)):
        raise ValueError(f"pred_probs must have shape {(len(ex), len(ex.classes))} (examples, classes). "
                         f"Got {probs.shape} instead.")
    probs = probs / probs.sum(axis=1, keepdims=True)
    present = np.bincount(ex.labels, minlength=len(ex.classes)) > 0
    if present.sum() < 2:
        return Finding("label_errors", "Likely label errors", "info", 0, "not checked: only one class is present.")
    accuracy = float((probs.argmax(axis=1) == ex.labels).mean())
    majority = float(np.bincount(ex.labels).max() / len(ex))
    skill = (accuracy - majority) / (1 - majority) if majority < 1 else 0.0
    if skill < MIN_SKILL:
        # On 250 photos of cats and dogs the fold models score 0.55 against 0.50 and doubt 45% of the labels:
        # their doubts are about what they failed to learn, not about the labels.
        return Finding("label_errors", "Likely label errors", "info", 0,
                       f"not checked: the fold models learned too little to doubt a label (out-of-fold accuracy "
                       f"{accuracy:.2f}, against {majority:.2f} from always answering the commonest class); with more "
                       f"examples per class the check becomes meaningful.",
                       stats={"out_of_fold_accuracy": accuracy, "majority_share": majority, "skill": skill})
    if filter_by == "calibrated_count":
        n = num_label_issues(ex.labels, probs, estimation_method="off_diagonal_calibrated")
        scores = get_label_quality_scores(ex.labels, probs, method="self_confidence")
        rows = np.argsort(scores, kind="stable")[:n]
    else:
        rows = find_label_issues(ex.labels, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence")
    rows = np.asarray(rows, dtype=np.int64)
    predicted = probs[rows].argmax(axis=1)
    names = np.asarray(ex.classes, dtype=object)
    flagged = flagged_rows(ex, rows, predicted=names[predicted], confidence=probs[rows, predicted],
                           given_label_prob=probs[rows, ex.labels[rows]])
    stats = {"method": f"cleanlab, {filter_by}, on out-of-fold probabilities",
             "flagged_share": len(rows) / max(1, len(ex)), "out_of_fold_accuracy": accuracy,
             "majority_share": majority, "skill": skill}
    if not len(rows):
        return Finding("label_errors", "Likely label errors", "info", 0,
                       "no label stands out as likely wrong: models trained without each example agree with "
                       "its label as often as expected.", flagged, stats)
    msg = (f"{len(rows):,} examples ({len(rows) / len(ex):.1%}) look mislabelled: a model trained without them "
           f"predicts another label with confidence, beyond the mistakes it makes elsewhere. Check them, most "
           f"suspicious first, and fix the labels that are wrong; the rest are hard cases worth keeping.")
    if len(rows) > MANY * len(ex):
        msg += (f" So many (over {MANY:.0%}) often means the inputs do not settle the label (a noisy task, such as "
                f"predicting income from a census record) more than that the labels are wrong: expect most of "
                f"them to be hard cases, and the clear mistakes near the top.")
    return Finding("label_errors", "Likely label errors", "warning", len(rows), msg, flagged, stats)
