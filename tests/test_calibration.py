"""Calibration maths checked against torchmetrics and torch, and temperature scaling on real digits."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torchmetrics.classification import MulticlassCalibrationError

from glassbox.evaluate import calibration as cal
from glassbox.evaluate import temperature as tm
from glassbox.report.words import calibration as calibration_words
from glassbox.report.words.calibration import worded


@pytest.fixture(scope="module")
def digits_logits():
    """Logits of a logistic regression trained on half of scikit-learn's real 8x8 digits, for the other half."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=0.5, random_state=0, stratify=y)
    with threadpool_limits(1):   # torch's threads and BLAS's fight on 2 cores: 10 s instead of 0.1 s
        model = LogisticRegression(max_iter=300).fit(x_tr, y_tr)
    return model.decision_function(x_te), y_te


def _torchmetrics(probs32: torch.Tensor, labels: np.ndarray, norm: str) -> float:
    metric = MulticlassCalibrationError(num_classes=probs32.shape[1], n_bins=15, norm=norm)
    return metric(probs32, torch.as_tensor(labels)).item()


def _random_case(seed: int, n: int = 3000, k: int = 7):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen) * (0.5 + seed)   # from nearly flat to sharp
    labels = torch.randint(0, k, (n,), generator=gen)
    # Make it a half-decent model: the true class gets a boost on most examples.
    logits[torch.arange(n), labels] += 2.0 * (torch.rand(n, generator=gen) < 0.7)
    return torch.softmax(logits, dim=1), labels.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ece_and_mce_match_torchmetrics_on_random_inputs(seed):
    probs32, labels = _random_case(seed)
    # torchmetrics sums in float32; ours in float64, hence agreement to 1e-6, not 1e-12.
    assert cal.ece(probs32.numpy(), labels) == pytest.approx(_torchmetrics(probs32, labels, "l1"), abs=1e-6)
    assert cal.mce(probs32.numpy(), labels) == pytest.approx(_torchmetrics(probs32, labels, "max"), abs=1e-6)


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_ece_and_mce_match_torchmetrics_on_digits(digits_logits, scale):
    logits, labels = digits_logits
    probs32 = torch.softmax(torch.tensor(logits * scale, dtype=torch.float32), dim=1)
    ours = cal.ece(probs32.numpy(), labels)
    assert ours == pytest.approx(_torchmetrics(probs32, labels, "l1"), abs=1e-6)
    assert cal.mce(probs32.numpy(), labels) == pytest.approx(_torchmetrics(probs32, labels, "max"), abs=1e-6)
    assert 0.01 < ours < 0.2   # a real, non-trivial calibration error


def test_reliability_bins_hand_case():
    # confidences 0.9, 0.8, 0.35, 0.95; the third is wrong.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.35, 0.3], [0.05, 0.95]])
    probs[2] = [0.35, 0.65]
    labels = np.array([0, 1, 0, 1])   # example 2: predicts class 1 at 0.65, label 0 -> wrong
    bins = cal.reliability_bins(probs, labels, n_bins=5)   # edges 0, .2, .4, .6, .8, 1
    assert [b["count"] for b in bins] == [0, 0, 0, 1, 3]
    assert bins[3]["mean_confidence"] == pytest.approx(0.65) and bins[3]["accuracy"] == 0.0
    assert bins[4]["mean_confidence"] == pytest.approx((0.9 + 0.8 + 0.95) / 3) and bins[4]["accuracy"] == 1.0
    assert bins[0]["mean_confidence"] is None and bins[0]["accuracy"] is None
    # ECE = 1/4 * |0 - 0.65| + 3/4 * |1 - 0.8833...| ; MCE = 0.65
    assert cal.ece(probs, labels, n_bins=5) == pytest.approx(0.25 * 0.65 + 0.75 * (1 - 2.65 / 3))
    assert cal.mce(probs, labels, n_bins=5) == pytest.approx(0.65)


def test_confidence_of_exactly_one_lands_in_last_bin():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    bins = cal.reliability_bins(probs, np.array([0, 0]))
    assert bins[-1]["count"] == 2 and bins[-1]["accuracy"] == 0.5
    assert cal.ece(probs, np.array([0, 0])) == pytest.approx(0.5)


def test_nll_equals_torch_cross_entropy(digits_logits):
    logits, labels = digits_logits
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert cal.nll_from_logits(logits, labels) == pytest.approx(expected, abs=1e-12)
    assert cal.nll(cal.softmax(logits), labels) == pytest.approx(expected, abs=1e-9)
    t_expected = F.cross_entropy(torch.tensor(logits) / 2.5, torch.tensor(labels)).item()
    assert cal.nll_from_logits(logits, labels, 2.5) == pytest.approx(t_expected, abs=1e-12)


def test_nll_from_probs_is_floored_not_infinite():
    assert cal.nll(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(cal.PROB_FLOOR))


def test_brier_hand_case():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    labels = np.array([0, 2])
    # (0.3^2 + 0.2^2 + 0.1^2) = 0.14 ; (0.5^2 + 0.5^2 + 1^2) = 1.5 ; mean 0.82
    assert cal.brier(probs, labels) == pytest.approx(0.82)
    assert cal.brier(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(2.0)   # certain and wrong


def test_temperature_scaling_fixes_an_over_confident_model(digits_logits):
    logits, labels = digits_logits
    logits = logits * 5.0   # deliberately over-confident
    half = len(labels) // 2
    val, val_y, test, test_y = logits[:half], labels[:half], logits[half:], labels[half:]
    t = cal.fit_temperature(val, val_y)
    assert 1.5 < t < 10.0, t   # over-confident -> the fitted temperature softens (T > 1)
    assert cal.nll_from_logits(test, test_y, t) < 0.8 * cal.nll_from_logits(test, test_y)
    assert cal.ece(cal.softmax(test, t), test_y) < cal.ece(cal.softmax(test), test_y)
    assert cal.accuracy(cal.softmax(test, t), test_y) == cal.accuracy(test, test_y)
    # T really is the minimum of validation NLL: compare with a fine grid around it.
    grid = t * np.exp(np.linspace(-0.2, 0.2, 81))
    grid_losses = [cal.nll_from_logits(val, val_y, g) for g in grid]
    assert cal.nll_from_logits(val, val_y, t) <= min(grid_losses) + 1e-9


def torch_lbfgs_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The NLL-minimising temperature by torch's LBFGS on log T: a fit that shares no code with ours."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(logits), torch.tensor(labels)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # 28 tiny steps: thread start-up would cost 30x the work
    try:
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    return log_t.exp().item()


def test_fit_temperature_matches_torch_lbfgs(digits_logits):
    logits, labels = digits_logits
    assert cal.fit_temperature(logits * 3.0, labels) == pytest.approx(torch_lbfgs_temperature(logits * 3.0, labels),
                                                                      rel=1e-4)


def test_fit_temperature_is_finite_and_bounded_on_degenerate_inputs():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    all_correct = rng.normal(size=(200, 4))
    all_correct[np.arange(200), labels] += 10.0
    assert cal.fit_temperature(all_correct, labels) == cal.T_MIN      # NLL keeps falling as T -> 0
    all_wrong = np.zeros((200, 4))
    all_wrong[np.arange(200), (labels + 1) % 4] = 50.0
    assert cal.fit_temperature(all_wrong, labels) == cal.T_MAX        # softest possible is best
    assert cal.fit_temperature(np.zeros((50, 3)), labels[:50] % 3) == 1.0   # flat: nothing to fit
    assert cal.fit_temperature(np.array([[3.0, 1.0]]), np.array([0])) == cal.T_MIN
    huge = all_correct * 1e6
    assert math.isfinite(cal.fit_temperature(huge, labels))
    with pytest.raises(ValueError, match="NaN"):
        cal.fit_temperature(np.full((3, 2), np.nan), np.array([0, 1, 0]))


def test_calibration_report_is_json_safe_and_says_over_confident(digits_logits):
    logits, labels = digits_logits
    logits = logits * 5.0
    half = len(labels) // 2
    rep = worded(tm.calibration_report(logits[:half], labels[:half], logits[half:], labels[half:]))
    again = json.loads(json.dumps(rep))
    assert again == rep
    assert rep["before"]["verdict"] == "over-confident" and rep["after"]["verdict"] == "well calibrated"
    assert rep["before"]["accuracy"] == rep["after"]["accuracy"]
    assert rep["after"]["nll"] < rep["before"]["nll"] and rep["val_nll_after"] < rep["val_nll_before"]
    assert sum(b["count"] for b in rep["reliability_after"]) == rep["n_test"] == len(labels) - half
    assert rep["applied"] and rep["temperature"] == rep["fitted_temperature"] > 1
    assert "over-confident" in rep["sentence"] and f"with T = {rep['temperature']:.2f}, when it says" in rep["sentence"]
    # the sentence speaks of the confidence band holding the most test examples (the higher band on a tie),
    # as a percentage with one decimal where a whole number would read as 0% or 100%
    def pct(x):
        return f"{x:.1%}" if 0 < x < 1 and round(100 * x) in (0, 100) else f"{x:.0%}"

    top = {}
    for when in ("before", "after"):
        bins = rep[f"reliability_{when}"]
        most = max(b["count"] for b in bins)
        top[when] = [b for b in bins if b["count"] == most][-1]
        conf = sum(b["mean_confidence"] * b["count"] for b in bins if b["count"]) / rep["n_test"]
        assert conf == pytest.approx(rep[when]["mean_confidence"])       # the bins hold every test example
    busy = top["before"]
    assert busy["upper"] == 1.0 and busy["mean_confidence"] > busy["accuracy"]  # sure of itself, wrong more often
    assert rep["sentence"].startswith("Temperature scaling applied: T = ")
    assert (f"As trained, when this model says {pct(busy['mean_confidence'])} it is right "
            f"{pct(busy['accuracy'])} of the time (over-confident" in rep["sentence"])
    assert (f"when it says {pct(top['after']['mean_confidence'])} it is right {pct(top['after']['accuracy'])} of the time"
            in rep["sentence"])


def test_under_confident_model_gets_t_below_one(digits_logits):
    logits, labels = digits_logits
    rep = tm.calibration_report(logits[::2], labels[::2], logits[1::2], labels[1::2])
    assert rep["fitted_temperature"] < 1.0 and rep["before"]["verdict"] == "under-confident"


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        cal.ece(np.array([[0.5, 0.5]]), np.array([2]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        cal.brier(np.array([0.5, 0.5]), np.array([0]))


def test_the_ece_noise_floor_is_what_a_calibrated_model_shows_by_chance():
    from glassbox.evaluate.calibration import ece, ece_noise_floor

    rng = np.random.default_rng(7)
    conf = rng.uniform(0.55, 1.0, 400)
    # independent reference: draw outcomes at exactly the stated confidence and score them with ece() itself
    probs = np.stack([conf, 1 - conf], axis=1)
    draws = [ece(probs, (rng.random(400) >= conf).astype(int)) for _ in range(400)]
    floor = ece_noise_floor(conf)
    assert abs(floor - np.quantile(draws, 0.95)) < 0.006
    assert np.mean(np.array(draws) <= floor) == pytest.approx(0.95, abs=0.03)
    assert ece_noise_floor(np.repeat(conf, 25)) < floor / 3  # 25x the examples: about a fifth of the noise
    # a model 10 points over-confident on 400 examples is far beyond chance
    assert ece(probs, (rng.random(400) >= conf - 0.1).astype(int)) > floor + 0.03


def test_the_count_right_is_judged_on_its_exact_distribution(digits_logits, monkeypatch):
    """176 real digits, the logistic regression made under-confident (its calibrated logits x 0.6): an ECE of 0.059 is
    within what chance gives a calibrated model here (0.070), yet 167 right where its confidences add up to 156.8 is
    beyond it: the count says under-confident where the ECE alone said nothing."""
    logits, labels = digits_logits
    under, y = logits[176:352] / cal.fit_temperature(logits, labels) * 0.6, labels[176:352]
    fig, _ = cal.figures(under, y, 1.0, 15, 0.02)
    probs = cal.softmax(under)
    conf, right = probs.max(1), probs.argmax(1) == y
    # the Poisson binomial by its characteristic function at n + 1 points (DFT), not by the recursion
    n = len(conf)
    phi = np.prod(1 - conf + conf * np.exp(2j * np.pi * np.arange(n + 1)[:, None] / (n + 1)), axis=1)
    pmf = np.fft.fft(phi).real / (n + 1)
    assert cal.poisson_binomial(conf) == pytest.approx(pmf, abs=1e-12)
    cdf, k = np.cumsum(pmf), int(right.sum())
    o = fig["overall"]
    assert (o["right"], o["n"], o["method"]) == (k, 176, "exact") == (167, 176, "exact")
    assert o["expected_right"] == pytest.approx(conf.sum()) == pytest.approx(156.8, abs=0.05)
    assert o["range"] == [int(np.argmax(cdf >= 0.025)), int(np.argmax(cdf >= 0.975))] == [150, 164]
    assert o["p_value"] == pytest.approx(2 * min(cdf[k], pmf[k:].sum()), rel=1e-9)
    assert fig["ece"] <= fig["ece_noise"] and fig["verdict"] == "under-confident"
    said = calibration_words._ece_words(fig)
    assert "right on 167 of 176, where its confidences add up to 156.8 and a calibrated model is right 150 to 164" in said
    # beyond EXACT_MAX examples a normal with continuity correction: on all 899 it agrees with the exact count
    exact = cal.overall_confidence(cal.softmax(logits * 0.6).max(1), cal.softmax(logits).argmax(1) == labels)
    monkeypatch.setattr(cal, "EXACT_MAX", 100)
    normal = cal.overall_confidence(cal.softmax(logits * 0.6).max(1), cal.softmax(logits).argmax(1) == labels)
    assert normal["method"] == "normal" and exact["method"] == "exact"
    assert abs(normal["range"][0] - exact["range"][0]) <= 1 and abs(normal["range"][1] - exact["range"][1]) <= 1
