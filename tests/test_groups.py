"""Per-group metrics: hand-computed figures, the bootstrap checked against plain resampling, real census groups."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from glassbox.evaluate.groups import group_metrics, groups_report
from glassbox.report.words.groups import column_sentence, group_lines, worded

ADULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "uci_adult" / "adult.data"

# Ten examples of a binary task, positive-class probability p1; group A has 6, group B has 4.
P1 = [0.9, 0.85, 0.3, 0.65, 0.25, 0.7] + [0.1, 0.55, 0.95, 0.45]
LABELS = np.array([1, 1, 0, 0, 0, 1] + [0, 0, 1, 1])
GROUPS = ["A"] * 6 + ["B"] * 4


def _probs(p1):
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1 - p1, p1], axis=1)


def test_every_figure_equals_the_hand_computation():
    rep = group_metrics(_probs(P1), LABELS, GROUPS, min_size=4, n_boot=200, name="g")
    a, b = rep["groups"]
    assert rep["positive_class"] == 1   # binary default
    # A: predictions 1 1 0 1 0 1 vs labels 1 1 0 0 0 1 -> 5 of 6 right, 4 predicted positive, 3 labelled positive.
    assert (a["value"], a["size"], a["too_small"]) == ("A", 6, False)
    assert a["accuracy"] == pytest.approx(5 / 6)
    assert a["positive_rate"] == pytest.approx(4 / 6) and a["label_positive_rate"] == pytest.approx(3 / 6)
    assert a["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.85, 0.7, 0.35, 0.75, 0.7])))
    # A's confidences 0.9 0.85 0.7 0.65 0.75 0.7 fall in bins 13 12 10 9 11 10 (width 1/15);
    # |acc - conf| per bin: 0.1, 0.15, 0.3 (two examples), 0.65 (the wrong one), 0.25.
    assert a["ece"] == pytest.approx((0.1 + 0.15 + 2 * 0.3 + 0.65 + 0.25) / 6)
    # B: predictions 0 1 1 0 vs labels 0 0 1 1 -> 2 of 4 right; the two wrong ones share bin 8 at 0.55.
    assert b["accuracy"] == 0.5 and b["positive_rate"] == 0.5 and b["label_positive_rate"] == 0.5
    assert b["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.45, 0.95, 0.45])))
    assert b["ece"] == pytest.approx((0.1 + 2 * 0.55 + 0.05) / 4)
    overall = rep["overall"]
    assert overall["size"] == 10 and overall["accuracy"] == pytest.approx(0.7)
    assert overall["positive_rate"] == pytest.approx(0.6) and overall["label_positive_rate"] == pytest.approx(0.5)
    assert overall["ece"] == pytest.approx(3.0 / 10)
    assert rep["ranked"] == ["B", "A"]
    # Each group against the rest, never against an overall that contains it: B 0.5 vs A 5/6.
    assert rep["worst"]["value"] == "B" and rep["worst"]["gap"] == pytest.approx(5 / 6 - 0.5)
    assert a["gap_vs_rest"] == pytest.approx(0.5 - 5 / 6) and b["rest_accuracy"] == pytest.approx(5 / 6)
    # True- and false-positive rates: A finds 3 of 3 positives and calls 1 of 3 negatives positive; B 1 of 2, 1 of 2.
    assert (a["tpr"], a["fpr"], b["tpr"], b["fpr"]) == pytest.approx((1, 1 / 3, 0.5, 0.5))
    assert a["recall"] == pytest.approx([2 / 3, 1]) and b["recall"] == [0.5, 0.5] and b["label_share"] == [0.5, 0.5]
    # Both groups are half positive, so none of the gap is base rate: all of it is B's errors within a class.
    assert rep["worst"]["base_rate_part"] == pytest.approx(0, abs=1e-12)
    assert rep["worst"]["error_part"] == pytest.approx(0.5 * (2 / 3 - 0.5) + 0.5 * (1 - 0.5))
    parity = rep["parity"]
    assert parity["demographic_parity_difference"] == pytest.approx(4 / 6 - 0.5)
    assert parity["demographic_parity_ratio"] == pytest.approx(0.75)
    assert parity["equalized_odds_difference"] == pytest.approx(0.5)       # TPR 1 vs 0.5; FPR differs by 1/6
    assert parity["equalized_odds_ratio"] == pytest.approx(0.5)            # min(0.5 / 1, (1/3) / (1/2))
    said = column_sentence(rep)
    assert said.startswith("Accuracy is lowest for g=B: 0.500 vs 0.833 for the other 6 examples (gap 0.333, 95% CI ")
    assert "Of the gap, 0.000 comes from a different mix of true classes (base rates) and 0.333 from" in said
    assert "The model says 'class 1' for 0.500 of g=B and 0.667 of g=A (demographic parity difference 0.167, " \
           "ratio 0.750); the labels say 'class 1' for 0.500 and 0.500 of them" in said
    assert "The model says 'yes' for 0.500 of g=B" in column_sentence(rep, ["no", "yes"])  # the positive class's name
    json.dumps(rep)


def test_tiny_group_is_flagged_and_not_ranked():
    probs = _probs(P1 + [0.9, 0.9])
    labels = np.concatenate([LABELS, [0, 0]])       # group C: two examples, both wrong
    rep = group_metrics(probs, labels, GROUPS + ["C", "C"], min_size=4, n_boot=200)
    c = rep["groups"][2]
    assert c["value"] == "C" and c["too_small"] is True and c["accuracy"] == 0.0
    assert rep["too_small"] == ["C"] and "C" not in rep["ranked"]
    assert rep["worst"]["value"] == "B"             # C is worse, but too small to name
    assert column_sentence(rep).endswith("1 group with fewer than 4 examples is not ranked: C (2).")
    # C predicts positive for 2 of 2: it would top the selection rates, but it is too small to judge.
    assert c["positive_rate"] == 1.0 and rep["parity"]["selection"]["high"] == "A"


def test_no_rankable_group():
    rep = group_metrics(_probs(P1), LABELS, GROUPS, min_size=30, n_boot=50)
    assert rep["worst"] is None and rep["ranked"] == []
    assert column_sentence(rep).startswith("No group group has 30 or more examples to rank.")


def test_intervals_contain_the_estimate_and_repeat_with_the_seed():
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=500)
    labels = (rng.uniform(size=500) < p1).astype(int)
    groups = rng.choice(["x", "y", "z"], size=500).tolist()
    rep = group_metrics(_probs(p1), labels, groups, seed=3)
    for row in rep["groups"] + [rep["overall"]]:
        assert row["accuracy_ci"][0] <= row["accuracy"] <= row["accuracy_ci"][1]
        assert row["positive_rate_ci"][0] <= row["positive_rate"] <= row["positive_rate_ci"][1]
        assert row["accuracy_ci"][1] - row["accuracy_ci"][0] > 0.02   # a real interval, not a point
    assert rep["worst"]["gap_ci"][0] <= rep["worst"]["gap"] <= rep["worst"]["gap_ci"][1]
    assert group_metrics(_probs(p1), labels, groups, seed=3) == rep
    assert group_metrics(_probs(p1), labels, groups, seed=4)["overall"]["accuracy_ci"] != rep["overall"]["accuracy_ci"]


def test_binomial_bootstrap_matches_plain_index_resampling():
    """The shortcut (one binomial draw per resample) against the textbook bootstrap."""
    rng = np.random.default_rng(0)
    correct = (rng.uniform(size=300) < 0.8)
    probs = np.where(correct[:, None], [[0.2, 0.8]], [[0.8, 0.2]])
    labels = np.ones(300, dtype=int)
    ours = group_metrics(probs, labels, ["all"] * 300, n_boot=20000, seed=0)["overall"]["accuracy_ci"]
    idx = rng.integers(0, 300, size=(20000, 300))
    plain = np.percentile(correct[idx].mean(axis=1), [2.5, 97.5])
    np.testing.assert_allclose(ours, plain, atol=0.006)   # the 1/300 grid plus Monte Carlo noise


def test_adjusted_interval_resists_picking_the_worst_of_many_equal_groups():
    """20 groups with the same true accuracy: the lowest one looks worse only because it was picked.

    Over 40 simulated data sets, the plain 95% gap interval excludes 0 about half the time
    (a false alarm); the interval adjusted for 20 groups should almost never do so.
    """
    groups = [f"g{i:02d}" for i in range(20) for _ in range(100)]
    plain_alarms = adjusted_alarms = 0
    for seed in range(40):
        correct = np.random.default_rng(seed).uniform(size=2000) < 0.8
        probs = np.where(correct[:, None], [[0.2, 0.8]], [[0.8, 0.2]])
        worst = group_metrics(probs, np.ones(2000, dtype=int), groups, seed=seed)["worst"]
        assert worst["adjusted_level"] == pytest.approx(1 - 0.05 / 20)
        assert worst["gap_ci_adjusted"][0] <= worst["gap_ci"][0] <= worst["gap_ci"][1] <= worst["gap_ci_adjusted"][1]
        plain_alarms += worst["gap_ci"][0] > 0
        adjusted_alarms += worst["gap_ci_adjusted"][0] > 0
    assert plain_alarms >= 10 and adjusted_alarms <= 3, (plain_alarms, adjusted_alarms)


def test_multiclass_without_positive_class_omits_rates():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    rep = group_metrics(probs, np.array([0, 1, 0]), ["a", "a", "b"], min_size=1, n_boot=20)
    assert rep["positive_class"] is None and rep["groups"][0]["positive_rate"] is None
    rep = group_metrics(probs, np.array([0, 1, 0]), ["a", "a", "b"], positive_class=2, min_size=1, n_boot=20)
    assert rep["groups"][1]["positive_rate"] == 1.0 and rep["groups"][0]["positive_rate"] == 0.0


def test_mismatched_group_column_is_refused():
    with pytest.raises(ValueError, match="has 3 values for 10 examples"):
        group_metrics(_probs(P1), LABELS, ["a", "b", "c"])


@pytest.fixture(scope="module")
def census():
    """UCI Adult (32,561 people): a logistic regression on the numeric columns; (probs, labels, groups)."""
    if not ADULT.exists():
        pytest.skip("needs ../shared/data/uci_adult")
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    rows = [line.split(", ") for line in ADULT.read_text().splitlines() if line.strip()]
    x = np.array([[float(r[i]) for i in (0, 2, 4, 10, 11, 12)] for r in rows])
    y = np.array([r[14] == ">50K" for r in rows], dtype=int)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    with threadpool_limits(1):   # torch's threads and BLAS's would fight over 2 cores
        probs = LogisticRegression(max_iter=200).fit(x, y).predict_proba(x)
    return probs, y, {"sex": [r[9] for r in rows], "race": [r[8] for r in rows]}


def test_census_groups_are_fast_and_name_a_real_worst_group(census):
    probs, y, groups = census
    rep = worded(groups_report(probs, y, groups))  # 32k rows x 1000 bootstrap resamples x 2 columns
    sex = {g["value"]: g for g in rep["columns"]["sex"]["groups"]}
    assert (sex["Male"]["size"], sex["Female"]["size"]) == (21790, 10771)
    # Fewer women earn >50K in this extract, so the model predicts it far less often for them.
    assert sex["Female"]["label_positive_rate"] == pytest.approx(1179 / 10771)
    assert sex["Female"]["positive_rate"] < sex["Male"]["positive_rate"]
    race = rep["columns"]["race"]
    assert len(race["groups"]) == 5 and race["too_small"] == []
    assert rep["largest_gap"]["gap"] == max(c["worst"]["gap"] for c in rep["columns"].values())
    assert len(rep["sentences"]) == 2 and all(s.startswith("Accuracy is lowest for") for s in rep["sentences"])
    assert list(rep) == ["columns", "sentences", "largest_gap"]  # as summary.json has always held them
    assert [c["sentence"] for c in rep["columns"].values()] == rep["sentences"]
    assert math.isfinite(rep["columns"]["race"]["overall"]["nll"])


def test_census_figures_match_fairlearn(census):
    """Every per-group rate and every parity measure against fairlearn's MetricFrame and its functions."""
    from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                                   equalized_odds_difference, equalized_odds_ratio, false_positive_rate,
                                   selection_rate, true_positive_rate)
    from sklearn.metrics import accuracy_score
    probs, y, groups = census
    preds = probs.argmax(1)
    metrics = {"accuracy": accuracy_score, "positive_rate": selection_rate, "tpr": true_positive_rate,
               "fpr": false_positive_rate, "label_positive_rate": lambda t, p: t.mean()}
    for column, values in groups.items():
        rep = group_metrics(probs, y, values, name=column, n_boot=200)
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=preds, sensitive_features=values).by_group
        assert len(frame) == len(rep["groups"]) >= 2
        for row in rep["groups"]:
            for key in metrics:
                assert row[key] == pytest.approx(frame.loc[row["value"], key], abs=1e-12), (column, row["value"], key)
        kw = {"y_true": y, "y_pred": preds, "sensitive_features": values}
        parity = rep["parity"]
        assert parity["demographic_parity_difference"] == pytest.approx(demographic_parity_difference(**kw))
        assert parity["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(**kw))
        assert parity["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(**kw))
        assert parity["equalized_odds_ratio"] == pytest.approx(equalized_odds_ratio(**kw))
        # The worst group against the rest, counted directly; the split of its gap adds up.
        w = rep["worst"]
        inside = np.asarray(values) == w["value"]
        assert w["gap"] == pytest.approx((preds == y)[~inside].mean() - (preds == y)[inside].mean())
        assert w["base_rate_part"] + w["error_part"] == pytest.approx(w["gap"])
    # Women earn >50K less often in this extract, and the model says it still less often for them.
    sex = {row["value"]: row for row in group_metrics(probs, y, groups["sex"], n_boot=200)["groups"]}
    assert sex["Female"]["positive_rate"] < sex["Female"]["label_positive_rate"] < sex["Male"]["label_positive_rate"]


def test_digits_recall_by_group_matches_fairlearn():
    """Multi-class: each class's recall per group (load_digits, grouped by how much ink a digit has)."""
    from fairlearn.metrics import MetricFrame
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score
    from threadpoolctl import threadpool_limits
    x, y = load_digits(return_X_y=True)
    with threadpool_limits(1):
        probs = LogisticRegression(max_iter=300, C=0.1).fit(x[::2] / 16, y[::2]).predict_proba(x / 16)
    ink = np.where(x.sum(1) > np.median(x.sum(1)), "heavy", "light")
    rep = group_metrics(probs, y, ink, name="ink", n_boot=200)
    assert rep["positive_class"] is None and rep["parity"] is None
    metrics = {c: (lambda t, p, c=c: recall_score(t, p, labels=[c], average="macro")) for c in range(10)}
    frame = MetricFrame(metrics=metrics, y_true=y, y_pred=probs.argmax(1), sensitive_features=ink).by_group
    for row in rep["groups"]:
        assert row["recall"] == pytest.approx(frame.loc[row["value"]].to_numpy(dtype=float), abs=1e-12)
    w = rep["worst"]
    assert w["base_rate_part"] + w["error_part"] == pytest.approx(w["gap"])


def _two_groups(recall_b_positive: float):
    """Group a: 2,000 examples, half positive; group b: 2,000, a tenth positive. Exact counts: in a and on
    b's negatives the model finds 60% of positives and 95% of negatives; b's positives at the given recall."""
    def block(n_pos, n_neg, recall_pos):
        hit = int(round(recall_pos * n_pos))
        right_neg = int(round(0.95 * n_neg))
        labels = [1] * n_pos + [0] * n_neg
        preds = [1] * hit + [0] * (n_pos - hit) + [0] * right_neg + [1] * (n_neg - right_neg)
        return labels, preds
    la, pa = block(1000, 1000, 0.6)
    lb, pb = block(200, 1800, recall_b_positive)
    preds = np.array(pa + pb)
    return np.eye(2)[preds] * 0.8 + 0.1, np.array(la + lb), ["a"] * 2000 + ["b"] * 2000


def test_base_rates_and_errors_are_told_apart():
    """Same recall per class in both groups: the accuracy gap is all base rate, and the sentence says the
    evidence of different errors is thin. Lower recall on b's positives: an error gap beyond noise."""
    probs, labels, groups = _two_groups(0.6)
    rep = group_metrics(probs, labels, groups, name="g")
    w = rep["worst"]   # a: 0.5 * 0.6 + 0.5 * 0.95 = 0.775 against b: 0.1 * 0.6 + 0.9 * 0.95 = 0.915
    assert (w["value"], w["accuracy"], w["rest_accuracy"]) == ("a", pytest.approx(0.775), pytest.approx(0.915))
    assert w["error_part"] == pytest.approx(0, abs=1e-12) and w["base_rate_part"] == pytest.approx(0.14)
    assert rep["parity"]["equalized_odds_difference"] == pytest.approx(0, abs=1e-12)
    assert rep["parity"]["demographic_parity_difference"] == pytest.approx(0.325 - 0.105)  # (600 + 50) / 2000 vs (120 + 90) / 2000
    said = column_sentence(rep)
    assert "0.140 comes from a different mix of true classes (base rates) and 0.000 from" in said
    assert "may be chance" in said and "errs differently by group is thin" in said

    rep = group_metrics(*_two_groups(0.3), name="g")
    assert rep["parity"]["tpr"]["difference"] == pytest.approx(0.3)
    assert rep["parity"]["tpr"]["ci_adjusted"][0] > 0
    assert "the model's errors differ between groups beyond noise" in column_sentence(rep)


def test_eval_prints_true_and_predicted_rates_per_group():
    """`glassbox eval`'s group lines: predicted and labelled positive rate, true- and false-positive rate."""
    lines = group_lines(groups_report(_probs(P1), LABELS, {"g": GROUPS}, min_size=4, n_boot=200), ["no", "yes"])
    assert lines[0].startswith("Accuracy is lowest for g=B: 0.500 vs 0.833 for the other 6 examples")
    assert lines[1].startswith("  g=A: n=6, accuracy 0.833 [")
    assert ", predicted positive 0.667 [" in lines[1] and ", labelled positive 0.500, true-positive rate 1.000 [" in lines[1]
    assert ", false-positive rate 0.500 [" in lines[2]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    lines = group_lines(groups_report(probs, np.array([0, 1, 0]), {"h": ["a", "a", "b"]}, min_size=1, n_boot=20),
                        list("xyz"))
    assert lines[1].endswith("recall x 1.000, y 1.000") and lines[2].endswith("recall x 0.000")


def test_the_report_worries_about_errors_before_base_rates():
    """The report's group worry: a gap from base rates alone is a milder concern than errors that differ."""
    from glassbox.report.summary import load_summary
    from glassbox.report.worries import group_gap
    probs, labels, groups = _two_groups(0.6)
    score, text = group_gap(load_summary({"groups": groups_report(probs, labels, {"g": groups})}))
    assert score == 45 and text.startswith("The model is less accurate for g=a than for the other examples: 0.775 vs "
                                           "0.915 (gap 0.140, beyond noise); 0.140 of it comes from different base "
                                           "rates, 0.000 from more errors within a class.")
    probs, labels, groups = _two_groups(0.3)
    score, text = group_gap(load_summary({"groups": groups_report(probs, labels, {"g": groups})}))
    assert score == 70 and text.endswith("Its true-positive rate differs by g beyond noise: 0.300 for b vs 0.600 for a.")


def test_each_rate_is_judged_on_its_own_and_the_split_of_the_gap_names_its_reference(census):
    """Adult by race: the spread in recall on '>50K' is wide and may be chance, the false-positive rates differ beyond
    noise (Fisher's exact test on the same two groups agrees); the sentence says each, not only the larger one."""
    from scipy.stats import fisher_exact
    probs, y, groups = census
    rep = group_metrics(probs, y, groups["race"], name="race")
    p, said = rep["parity"], column_sentence(rep, ["<=50K", ">50K"])
    assert p["tpr"]["ci_adjusted"][0] < 0 < p["fpr"]["ci_adjusted"][0]
    assert p["tpr"]["difference"] > p["fpr"]["difference"]  # the larger spread is the one within noise
    preds, race = probs.argmax(1), np.asarray(groups["race"])
    def false_positives(g):
        negatives = (race == g) & (y == 0)
        return int((preds[negatives] == 1).sum()), int(negatives.sum())
    (a, n_a), (b, n_b) = false_positives(p["fpr"]["low"]), false_positives(p["fpr"]["high"])
    assert (p["fpr"]["low_rate"], p["fpr"]["high_rate"]) == (pytest.approx(a / n_a), pytest.approx(b / n_b))
    pairs = 5 * 4 // 2   # the interval allows for every pair of 5 groups, and for two rates (TPR, FPR)
    assert fisher_exact([[a, n_a - a], [b, n_b - b]])[1] < 0.05 / (2 * pairs)
    lo, hi = p["fpr"]["ci_adjusted"]
    assert (f"false-positive rate {a / n_a:.3f} ({p['fpr']['low']}) to {b / n_b:.3f} ({p['fpr']['high']}), interval "
            f"of the difference {lo:.3f} to {hi:.3f}: beyond noise") in said
    assert f"interval of the difference {p['tpr']['ci_adjusted'][0]:.3f} to {p['tpr']['ci_adjusted'][1]:.3f}: may be " \
           f"chance" in said
    assert said.endswith("So the model's errors differ between groups beyond noise, in its false-positive rate.")
    # the gap's split, weighed by either side's class shares, and their mean, counted by hand
    w = rep["worst"]
    inside = race == w["value"]
    share = lambda m: np.bincount(y[m], minlength=2) / m.sum()  # noqa: E731
    recall = lambda m: np.array([(preds[m & (y == c)] == c).mean() for c in (0, 1)])  # noqa: E731
    b_g, b_r, r_g, r_r = share(inside), share(~inside), recall(inside), recall(~inside)
    by = w["split_by_reference"]
    assert by["group"]["error_part"] == pytest.approx((b_g * (r_r - r_g)).sum())
    assert by["rest"]["error_part"] == pytest.approx((b_r * (r_r - r_g)).sum())
    assert w["error_part"] == pytest.approx((by["group"]["error_part"] + by["rest"]["error_part"]) / 2)
    assert by["rest"]["base_rate_part"] == pytest.approx(((b_r - b_g) * r_g).sum())
    assert (f"this group's gives {by['group']['base_rate_part']:.3f} and {by['group']['error_part']:.3f}, the rest's "
            f"{by['rest']['base_rate_part']:.3f} and {by['rest']['error_part']:.3f}; the figures above are their mean"
            ) in said
