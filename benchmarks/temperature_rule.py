"""Whether a fitted temperature ships: the rule glassbox has now against the one it had up to issue 24, on real
models' logits cut at random into a validation half (that decides) and a test half (that judges the decision).

    python benchmarks/temperature_rule.py                 # 60 random splits of each pool
    python benchmarks/temperature_rule.py --splits 200

Pools (every logit from a real model on real data):
  glassbox digits      `glassbox train digits` (image defaults: label smoothing 0.2, an under-confident CNN), its
                       validation and test logits together (354 examples), trained here once
  LR digits x s        scikit-learn's logistic regression on half of load_digits, scored on the other half (899), its
                       logits divided by their best temperature and multiplied by s: under-confident (s < 1),
                       calibrated (s = 1), over-confident (s > 1)

The rule before: keep T when the cross-fitted change's plain bootstrap interval lies below 0 and at least 10 validation
examples are wrong. Now (glassbox/evaluate/temperature.py decide_temperature): the same interval, and the one that
draws the share of wrong examples from what their count allows, both below 0, whatever the count; failing that, the
first of T ** 0.75, 0.5, 0.25 that passes both. For each split: kept or not; "harmful" when kept and the test half's
95% interval of the change in NLL at the T shipped lies above 0; "missed" when none is kept and the fitted T's lies
below 0 (a gain test confirms).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glassbox.evaluate.calibration import T_MAX, T_MIN, fit_temperature, nll_per_example  # noqa: E402
from glassbox.evaluate.temperature import (MIN_VAL, cross_fitted_change, decide_temperature,  # noqa: E402
                                           mean_with_interval)

OLD_MIN_ERRORS = 10  # the count rule before issue 24


def glassbox_digits() -> tuple[np.ndarray, np.ndarray]:
    """`glassbox train digits`'s logits on its validation and test splits (as trained: T = 1)."""
    from glassbox.data.builtin import load_builtin
    from glassbox.infer.predictor import Predictor
    from glassbox.run.train.start import train

    with tempfile.TemporaryDirectory() as tmp:
        train("digits", out=f"{tmp}/run", quiet=True)
        split = json.loads(Path(f"{tmp}/run/split.json").read_text())
        ex = load_builtin("digits")
        rows = np.array(split["val"] + split["test"])
        logits = Predictor(f"{tmp}/run/model").outputs(ex.inputs[rows]).numpy().astype(np.float64)
        return logits, ex.labels[rows]


def lr_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=0.5, random_state=0, stratify=y)
    logits = LogisticRegression(max_iter=300).fit(x_tr, y_tr).decision_function(x_te)
    return logits / fit_temperature(logits, y_te), y_te


def decisions(val: np.ndarray, y: np.ndarray, seed: int) -> list[float]:
    """The T each rule ships (1.0: none): the rule before, and decide_temperature now."""
    t = fit_temperature(val, y)
    before = 1.0
    if len(y) >= MIN_VAL and t != 1.0 and t not in (T_MIN, T_MAX):
        _, _, hi = mean_with_interval(cross_fitted_change(val, y, seed), seed)
        before = t if hi < 0 and (val.argmax(1) != y).sum() >= OLD_MIN_ERRORS else 1.0
    return [before, decide_temperature(val, y, seed)["temperature"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits", type=int, default=60, help="random validation/test halves of each pool")
    args = p.parse_args()
    pools = {"glassbox digits": glassbox_digits()}
    base, labels = lr_digits()
    for s in (0.3, 0.6, 1.0, 2.0, 4.0):
        pools[f"LR digits x{s:g}"] = (base * s, labels)
    print(f"{'pool':18s} {'n':>4s} {'wrong':>6s} | {'kept':>4s} {'harmful':>7s} {'missed':>6s} (before) | "
          f"{'kept':>4s} {'harmful':>7s} {'missed':>6s} (now)   of {args.splits} splits")
    rng = np.random.default_rng(0)
    for name, (logits, y) in pools.items():
        counts = {"before": [0, 0, 0], "now": [0, 0, 0]}
        for s in range(args.splits):
            order = rng.permutation(len(y))
            v, t = order[:len(y) // 2], order[len(y) // 2:]
            fitted = fit_temperature(logits[v], y[v])
            for rule, shipped in zip(("before", "now"), decisions(logits[v], y[v], s)):
                keep = shipped != 1.0  # judged on test at the T it ships, or, when none, at the fitted T
                change = nll_per_example(logits[t], y[t], shipped if keep else fitted) - nll_per_example(logits[t], y[t])
                _, lo, hi = mean_with_interval(change, s)
                counts[rule][0] += keep
                counts[rule][1] += keep and lo > 0
                counts[rule][2] += (not keep) and hi < 0
        wrong = float((logits.argmax(1) != y).mean())
        b, n = counts["before"], counts["now"]
        print(f"{name:18s} {len(y):4d} {wrong:6.1%} | {b[0]:4d} {b[1]:7d} {b[2]:6d}          | "
              f"{n[0]:4d} {n[1]:7d} {n[2]:6d}", flush=True)


if __name__ == "__main__":
    main()
