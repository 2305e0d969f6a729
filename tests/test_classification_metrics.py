"""Confusion matrix and per-class metrics, checked against scikit-learn."""
import json

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from glassbox.evaluate.classification import confusion_matrix, per_class_report


@pytest.fixture(scope="module")
def digits_predictions():
    """Real predictions: a small logistic regression on scikit-learn's 8x8 digits."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=0.5, random_state=0, stratify=y)
    # One BLAS thread: with torch's OpenMP threads also alive, a 2-core machine otherwise
    # spends ~10 s instead of 0.1 s on this fit.
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=300).fit(x_tr, y_tr)
    return y_te, model.predict(x_te)


def test_confusion_matrix_matches_sklearn_on_digits(digits_predictions):
    labels, preds = digits_predictions
    ours = confusion_matrix(labels, preds, 10)
    np.testing.assert_array_equal(ours, skm.confusion_matrix(labels, preds, labels=range(10)))
    assert ours.sum() == len(labels)


def test_confusion_matrix_hand_case():
    # true 0 predicted 0 twice, true 0 predicted 1 once, true 2 predicted 1 once.
    cm = confusion_matrix([0, 0, 0, 2], [0, 0, 1, 1], 3)
    assert cm.tolist() == [[2, 1, 0], [0, 0, 0], [0, 1, 0]]


def test_per_class_report_matches_sklearn_on_digits(digits_predictions):
    labels, preds = digits_predictions
    rep = per_class_report(labels, preds, [str(i) for i in range(10)])
    p, r, f, s = skm.precision_recall_fscore_support(labels, preds, labels=range(10), zero_division=0)
    np.testing.assert_allclose([c["precision"] for c in rep["classes"]], p, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in rep["classes"]], r, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in rep["classes"]], f, atol=1e-12)
    assert [c["support"] for c in rep["classes"]] == s.tolist()
    assert rep["macro"]["f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro"), abs=1e-12)
    assert rep["weighted"]["f1"] == pytest.approx(skm.f1_score(labels, preds, average="weighted"), abs=1e-12)
    assert rep["macro"]["precision"] == pytest.approx(
        skm.precision_score(labels, preds, average="macro"), abs=1e-12)
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds), abs=1e-12)
    json.dumps(rep)  # JSON-safe


def test_class_never_predicted_scores_zero_like_sklearn():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 0, 0, 1, 1, 1])  # class 2 is never predicted
    rep = per_class_report(labels, preds, ["a", "b", "c"])
    c = rep["classes"][2]
    assert (c["precision"], c["recall"], c["f1"], c["support"], c["predicted"]) == (0.0, 0.0, 0.0, 2, 0)
    # class b: 1 right of 3 predicted, 1 of 2 found -> P 1/3, R 1/2, F1 0.4
    b = rep["classes"][1]
    assert b["precision"] == pytest.approx(1 / 3) and b["recall"] == 0.5 and b["f1"] == pytest.approx(0.4)
    assert rep["macro"]["f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    assert rep["worst_class"] == "c"


def test_out_of_range_label_is_refused():
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
