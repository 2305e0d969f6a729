"""Calibration: does a stated confidence of 90% mean right 90% of the time? And temperature scaling.

All inputs are numpy arrays: `probs` or `logits` (N, K) and integer `labels` (N,).
Confidence is the top-1 probability; bins are equal-width on [0, 1] as in Guo et al. 2017,
"On Calibration of Modern Neural Networks". A bin holds confidences in [lower, upper); the last
bin also holds 1.0. (torchmetrics gives a confidence of exactly 1.0 a sixteenth bin of its own;
that is the one place the two can differ.) Sums run in float64 whatever the input dtype.
Whether a fitted T is kept, and the calibration report, are in temperature.py.
"""
from __future__ import annotations

import math

import numpy as np

N_BINS = 15            # equal-width confidence bins, as in Guo et al. 2017
T_MIN, T_MAX = 0.05, 100.0   # temperature search range; any fitted T lies inside it
PROB_FLOOR = 1e-12     # nll() from probabilities: a true-class probability of 0 costs -log(1e-12) = 27.6 nats


def check_scores(scores, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 (N, K) scores and int64 (N,) labels, or a ValueError saying what is wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty (N, K) array; got shape {scores.shape}.")
    if labels.shape != (scores.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array of shape ({scores.shape[0]},); "
                         f"got shape {labels.shape}, dtype {labels.dtype}.")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1} (one column of {what} per class).")
    if not np.isfinite(scores).all():
        raise ValueError(f"{what} hold NaN or infinite values; check the model's outputs.")
    return scores, labels.astype(np.int64)


def log_softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities of logits / T, computed stably (subtract the row maximum first)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Probabilities of logits / T."""
    return np.exp(log_softmax(logits, temperature))


def reliability_bins(probs, labels, n_bins: int = N_BINS) -> list[dict]:
    """The reliability diagram as data: per bin lower, upper, count, mean_confidence, accuracy.

    Confidence is the top-1 probability; a bin holds [lower, upper), the last one also 1.0.
    Empty bins keep their place with count 0 and None for the two means (JSON has no NaN).
    """
    probs, labels = check_scores(probs, labels, "probs")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    return [
        {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(count[b]),
         "mean_confidence": float(conf_sum[b] / count[b]) if count[b] else None,
         "accuracy": float(correct_sum[b] / count[b]) if count[b] else None}
        for b in range(n_bins)
    ]


def _ece_mce(bins: list[dict]) -> tuple[float, float]:
    """ECE and MCE from reliability bins: weighted mean and maximum of |accuracy - mean confidence|."""
    full = [b for b in bins if b["count"]]
    n = sum(b["count"] for b in full)
    gaps = [abs(b["accuracy"] - b["mean_confidence"]) for b in full]
    return float(sum(b["count"] / n * g for b, g in zip(full, gaps))), float(max(gaps))


def ece(probs, labels, n_bins: int = N_BINS) -> float:
    """Expected calibration error: sum over bins of (bin count / N) * |accuracy - mean confidence|."""
    return _ece_mce(reliability_bins(probs, labels, n_bins))[0]


def mce(probs, labels, n_bins: int = N_BINS) -> float:
    """Maximum calibration error: the largest |accuracy - mean confidence| over non-empty bins."""
    return _ece_mce(reliability_bins(probs, labels, n_bins))[1]


def nll(probs, labels) -> float:
    """Mean negative log-likelihood of the true class, in nats, from probabilities (floored at PROB_FLOOR)."""
    probs, labels = check_scores(probs, labels, "probs")
    p_true = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(p_true, PROB_FLOOR)).mean())


def nll_per_example(logits, labels, temperature: float = 1.0) -> np.ndarray:
    """Each example's negative log-likelihood of its true class under softmax(logits / T), in nats."""
    logits, labels = check_scores(logits, labels, "logits")
    return -log_softmax(logits, temperature)[np.arange(len(labels)), labels]


def nll_from_logits(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood from logits / T: exact, no floor (equals torch's cross_entropy)."""
    return float(nll_per_example(logits, labels, temperature).mean())


def brier(probs, labels) -> float:
    """Multiclass Brier score: mean over examples of sum over classes of (p_k - [k == label])^2.

    Ranges from 0 (certain and right) to 2 (certain and wrong). This is Brier's original
    multiclass form; some libraries divide by K or score only the positive class of a binary task.
    """
    probs, labels = check_scores(probs, labels, "probs")
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def accuracy(probs, labels) -> float:
    """Share of examples whose highest-scoring class is the label (works for probs or logits)."""
    probs, labels = check_scores(probs, labels, "probs")
    return float((probs.argmax(axis=1) == labels).mean())


def fit_temperature(val_logits, val_labels) -> float:
    """The T in [T_MIN, T_MAX] that minimises validation NLL of softmax(logits / T).

    NLL is convex in 1/T, so it has one minimum along log T: a golden-section search over
    log T finds it without gradients, cannot diverge, and stops at a bound when the data push
    T there (an all-correct validation set keeps lowering NLL as T -> 0). If no T beats T = 1
    (e.g. constant logits), T = 1 is returned. Dividing by T > 0 keeps every argmax, so
    accuracy is unchanged by construction.
    """
    logits, labels = check_scores(val_logits, val_labels, "val_logits")

    def loss(t: float) -> float:
        return nll_from_logits(logits, labels, t)

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2                       # 0.618..., the golden section
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(math.exp(a)), loss(math.exp(b))
    while hi - lo > 1e-7:                                # about 40 evaluations
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(math.exp(b))
    found = min(max(math.exp(a if fa <= fb else b), T_MIN), T_MAX)
    loss_at_1 = loss(1.0)
    best_loss, best_t = min((loss(t), t) for t in (found, T_MIN, T_MAX))
    if best_loss >= loss_at_1 - 1e-12:                   # no real gain: keep the model as it is
        return 1.0
    return float(best_t)


def figures(logits, labels, temperature: float, n_bins: int, tolerance: float) -> tuple[dict, list[dict]]:
    """Every calibration figure for softmax(logits / T) on one set of examples, and its reliability bins.
    "ece_noise": the ECE a perfectly calibrated model would reach at most 95% of the time on these confidences
    (`ece_noise_floor`); a verdict beyond "well calibrated" needs an ECE above both it and the tolerance."""
    probs = softmax(logits, temperature)
    bins = reliability_bins(probs, labels, n_bins)
    ece_value, mce_value = _ece_mce(bins)
    conf = probs.max(axis=1)
    out = {
        "ece": ece_value, "mce": mce_value,
        "nll": nll_from_logits(logits, labels, temperature), "brier": brier(probs, labels),
        "accuracy": accuracy(probs, labels), "mean_confidence": float(conf.mean()),
        "ece_noise": ece_noise_floor(conf, n_bins),
        "overall": overall_confidence(conf, probs.argmax(axis=1) == labels),
    }
    out["verdict"] = verdict(ece_value, out["mean_confidence"] - out["accuracy"], tolerance, out["ece_noise"],
                             out["overall"])
    return out, bins


EXACT_MAX = 5000   # up to this many examples the count right is judged on its exact distribution, beyond by a normal


def poisson_binomial(p) -> np.ndarray:
    """The distribution of the number of successes of independent trials with success probabilities p: P(k), k = 0..n
    (one trial at a time: P_new(k) = P(k) (1 - p_i) + P(k - 1) p_i)."""
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for i, q in enumerate(np.asarray(p, dtype=np.float64), start=1):
        pmf[1:i + 1] = pmf[1:i + 1] * (1 - q) + pmf[:i] * q
        pmf[0] *= 1 - q
    return pmf


def overall_confidence(conf, correct) -> dict:
    """Is the model right as often as its confidences say, all examples together? A calibrated model is right on
    example i with probability conf_i, so its count right is a sum of independent trials (Poisson binomial) with mean
    sum(conf). The observed count against that distribution: the 95% range a calibrated model's count falls in, and the
    two-sided p-value of the count seen. Exact up to EXACT_MAX examples; beyond, a normal with continuity correction.
    A test of over- or under-confidence as a whole, where ECE (a sum of gaps per band) is not."""
    conf = np.asarray(conf, dtype=np.float64)
    right, expected = int(np.sum(correct)), float(conf.sum())
    if len(conf) <= EXACT_MAX:
        pmf = poisson_binomial(conf)
        cdf = np.cumsum(pmf)
        low, high = int(np.searchsorted(cdf, 0.025)), int(np.searchsorted(cdf, 0.975))
        at_most, at_least = cdf[right], pmf[right:].sum()  # each tail summed directly: no 1 - (1 - tiny)
        method = "exact"
    else:
        from scipy.stats import norm

        sd = math.sqrt(max(float((conf * (1 - conf)).sum()), 1e-12))
        low, high = math.ceil(expected - 1.959964 * sd - 0.5), math.floor(expected + 1.959964 * sd + 0.5)
        at_most, at_least = norm.cdf((right + 0.5 - expected) / sd), norm.sf((right - 0.5 - expected) / sd)
        method = "normal"
    return {"right": right, "expected_right": expected, "n": len(conf), "range": [low, high],
            "p_value": float(min(1.0, 2 * min(at_most, at_least))), "method": method}


def ece_noise_floor(conf, n_bins: int = N_BINS, draws: int = 1000, seed: int = 0) -> float:
    """The 95th percentile of the ECE of a perfectly calibrated model with these confidences: each example is
    right with exactly its stated probability, drawn `draws` times. On few examples a calibrated model's ECE is
    far from 0 (on 176 examples near 97% confident, often 0.03), so an ECE below this says nothing."""
    conf = np.asarray(conf, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    one_hot = np.zeros((len(conf), n_bins))
    one_hot[np.arange(len(conf)), idx] = 1.0
    right = (np.random.default_rng(seed).random((draws, len(conf))) < conf).astype(np.float64)
    gaps = np.abs(right @ one_hot - conf @ one_hot).sum(axis=1) / max(1, len(conf))  # sum over bins, as ECE
    return float(np.quantile(gaps, 0.95))


def verdict(ece_value: float, gap: float, tolerance: float, noise: float = 0.0, overall: dict | None = None) -> str:
    """One label from ECE and the signed gap (mean confidence - accuracy); noise: `ece_noise_floor`; overall:
    `overall_confidence` (a count right outside its 95% range is over- or under-confidence beyond chance, whatever
    the ECE's floor says)."""
    if ece_value <= tolerance:
        return "well calibrated"
    if overall and not overall["range"][0] <= overall["right"] <= overall["range"][1]:
        return "over-confident" if overall["right"] < overall["range"][0] else "under-confident"
    if ece_value <= noise:
        return "no miscalibration beyond chance on this many examples"
    if abs(gap) < ece_value / 2:   # errors in both directions mostly cancel out overall
        return "over-confident in some confidence bands, under-confident in others"
    return "over-confident" if gap > 0 else "under-confident"


def busiest_bin(bins: list[dict]) -> dict:
    """The bin holding the most examples (the higher one on a tie): the confidence a user meets most."""
    return max(reversed(bins), key=lambda b: b["count"])
