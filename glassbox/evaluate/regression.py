"""How good a predicted number is, in the label's units: RMSE, MAE and R^2 next to always predicting the training
mean; prediction intervals from validation residuals (split conformal) with their coverage measured on test; and
the same errors per group. report/words/regression.py says them in words."""
from __future__ import annotations

import math

import numpy as np

LEVEL = 0.9  # the prediction intervals' nominal coverage


def errors(y: np.ndarray, pred: np.ndarray) -> dict:
    """RMSE, MAE, R^2 (1 - residual sum of squares / total sum of squares about y's own mean) and the mean
    residual (y - prediction: positive where the model predicts too low)."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    residual = y - pred
    total = float(((y - y.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt(np.mean(residual ** 2))), "mae": float(np.mean(np.abs(residual))),
            "r2": 1.0 - float((residual ** 2).sum()) / total if total > 0 else None,  # None: y constant, R^2 undefined
            "mean_residual": float(residual.mean()), "n": int(len(y))}


def bootstrap_intervals(y: np.ndarray, pred: np.ndarray, seed: int, resamples: int = 1000) -> dict:
    """95% percentile-bootstrap intervals of RMSE, MAE and R^2: the rows resampled with replacement (seeded),
    `resamples` times, 100 at a time to bound the memory."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    rng = np.random.default_rng(seed)
    found = {"rmse": [], "mae": [], "r2": []}
    for start in range(0, resamples, 100):
        rows = rng.integers(0, len(y), size=(min(100, resamples - start), len(y)))
        truth, residual = y[rows], y[rows] - pred[rows]
        total = ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        found["rmse"].append(np.sqrt((residual ** 2).mean(axis=1)))
        found["mae"].append(np.abs(residual).mean(axis=1))
        found["r2"].append(1 - (residual ** 2).sum(axis=1) / np.where(total > 0, total, np.nan))
    return {k: [float(np.nanpercentile(np.concatenate(v), 2.5)), float(np.nanpercentile(np.concatenate(v), 97.5))]
            for k, v in found.items()}


def conformal_interval(y_val: np.ndarray, pred_val: np.ndarray, level: float = LEVEL) -> dict:
    """Split conformal: the half-width q is the ceil((n + 1) * level)-th smallest absolute validation residual, so a
    new example exchangeable with validation falls inside prediction ± q with probability at least `level` (and
    at most level + 1 / (n + 1)). With too few validation examples for that rank there is no interval (None)."""
    scores = np.sort(np.abs(np.asarray(y_val, np.float64) - np.asarray(pred_val, np.float64)))
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    half_width = float(scores[rank - 1]) if rank <= n else None
    return {"level": level, "half_width": half_width, "n_val": n, "rank": rank,
            "guaranteed_at_most": min(1.0, level + 1 / (n + 1))}


def fewest_for(level: float = LEVEL) -> int:
    """The fewest validation examples that give a split-conformal interval at `level`: the first n whose rank
    ceil((n + 1) * level) is at most n, by the rule conformal_interval applies (9 at 90%)."""
    n = 1
    while math.ceil((n + 1) * level) > n:
        n += 1
    return n


def coverage(y: np.ndarray, pred: np.ndarray, interval: dict) -> dict | None:
    """The share of examples inside prediction ± half-width, its 95% Clopper-Pearson interval, and whether it
    differs from the nominal level beyond that noise (None: no interval)."""
    from scipy.stats import binomtest

    if interval["half_width"] is None or not len(y):
        return None
    inside = np.abs(np.asarray(y, np.float64) - np.asarray(pred, np.float64)) <= interval["half_width"]
    k, n = int(inside.sum()), len(inside)
    ci = binomtest(k, n, interval["level"]).proportion_ci(0.95, method="exact")
    low, high = float(ci.low), float(ci.high)
    if high < interval["level"]:
        verdict = "below"
    elif low > interval["guaranteed_at_most"]:
        verdict = "above"
    else:
        verdict = "consistent"
    return {"covered": k, "n": n, "coverage": k / n, "ci": [low, high], "verdict": verdict}


def group_errors(y: np.ndarray, pred: np.ndarray, groups: dict[str, list]) -> dict:
    """Per group value: n, RMSE, MAE, mean residual and its standard error; the group whose mean residual lies
    furthest from 0 in standard errors, and whether that is beyond noise (over 2 standard errors, Bonferroni over
    the groups compared)."""
    from scipy.stats import norm

    out = {}
    for column, values in groups.items():
        values = np.asarray([str(v) for v in values], dtype=object)
        table = {}
        for value in sorted(set(values)):
            mine = values == value
            e = errors(y[mine], pred[mine])
            spread = float(np.std(y[mine] - pred[mine], ddof=1)) if mine.sum() > 1 else None  # one row: no spread
            table[value] = {**e, "se_mean_residual": None if spread is None else spread / math.sqrt(mine.sum())}
        z = {g: abs(t["mean_residual"]) / t["se_mean_residual"] for g, t in table.items()
             if t["se_mean_residual"]}
        worst = max(z, key=z.get) if z else None
        cut = float(norm.ppf(1 - 0.025 / max(1, len(z))))  # two-sided 5%, shared among the groups
        out[column] = {"groups": table, "worst": worst, "z": z.get(worst), "z_cut": cut,
                       "beyond_noise": bool(worst is not None and z[worst] > cut)}
    return out

