"""Temperature scaling only where it helps: fit T on validation, keep it only when examples it was not
fitted on say it lowers NLL, then measure calibration on test as saved, and record which happened and why.

The same validation split that picked the best checkpoint also fits T, so the validation NLL at the
fitted T is optimistic. The check here is cross-fitting: the validation split is cut into FOLDS
parts; each part is scored with a T fitted on the other parts, so no example judges a T it helped fit.
The per-example change in NLL (with that T minus at T = 1) gets a bootstrap 95% interval; T is kept
only when the whole interval lies below zero.

A few wrong examples can make a gain look certain: NLL's response to T turns on how sure the model is when wrong,
and a split with 3 wrong of 178 may as well have held 8 (the digits demo once kept T = 0.45 that way, and test NLL
went 0.083 -> 0.158). So the interval that decides is resampled in two strata, the right examples and the wrong ones,
with the share of wrong ones drawn each time from what the count seen allows (Beta(wrong + 1, right + 1)): with many
errors it is the plain bootstrap's interval, with few it widens towards more of them. A large, consistent gain
survives it whatever the count (the digits at image defaults: 7 wrong of 178, change -0.19, kept); a gain that rests
on how few the errors happen to be does not. A fitted T that is not sure that way may still point the right way and
overshoot (a label-smoothed digits model, 2 wrong of 179: T = 0.33 sharpens the wrong ones by 8 to 13 nats each):
then T ** 0.75, 0.5 and 0.25, each cross-fitted and judged alike, and the first sure one ships (there, T = 0.44;
test ECE 0.199 -> 0.009). Test examples never take part in the decision; they are used afterwards to say whether
test agrees. The figures come back as numbers and the decision's reason as a code;
report/words/calibration.py says them in words.
"""
from __future__ import annotations

import numpy as np

from glassbox.evaluate.calibration import (N_BINS, T_MAX, T_MIN, check_scores, figures, fit_temperature,
                                           nll_from_logits, nll_per_example)

MIN_VAL = 100      # fewer validation examples than this: too few to check a temperature, T stays 1
FOLDS = 5          # cross-fitting parts of the validation split
MILDER = (0.75, 0.5, 0.25)  # a fitted T whose gain is not beyond noise: T ** these, in turn, the first sure one kept
N_BOOT = 2000      # bootstrap resamples for the 95% interval of a mean change in NLL


def fold_of(n: int, seed: int = 0, folds: int = FOLDS) -> np.ndarray:
    """Each example's fold: a seeded shuffle dealt round-robin, so fold sizes differ by at most one."""
    return np.random.default_rng(seed).permutation(n) % folds


def cross_fitted_change(logits: np.ndarray, labels: np.ndarray, seed: int = 0, folds: int = FOLDS,
                        power: float = 1.0) -> np.ndarray:
    """Per example, NLL under a T fitted on the other folds (raised to `power`: a milder T) minus NLL at T = 1
    (negative: T helped)."""
    part = fold_of(len(labels), seed, folds)
    change = np.empty(len(labels))
    for k in range(folds):
        held = part == k
        t = fit_temperature(logits[~held], labels[~held]) ** power
        change[held] = nll_per_example(logits[held], labels[held], t) - nll_per_example(logits[held], labels[held])
    return change


def mean_with_interval(values: np.ndarray, seed: int = 0, n_boot: int = N_BOOT) -> tuple[float, float, float]:
    """The mean and its percentile-bootstrap 95% interval (resampling examples with replacement)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    chunk = max(1, 2_000_000 // n)   # resamples per batch: at most ~2M indices (16 MB) in memory at once
    means = np.concatenate([values[rng.integers(0, n, (min(chunk, n_boot - i), n))].mean(axis=1)
                            for i in range(0, n_boot, chunk)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def interval_allowing_for_errors(values: np.ndarray, wrong: np.ndarray, seed: int = 0,
                                 n_boot: int = N_BOOT) -> tuple[float, float]:
    """A 95% interval of the mean of `values` that allows for the share of wrong examples being uncertain: each
    resample averages the right examples and the wrong ones apart (each resampled with replacement) and weighs them by
    a share of wrong ones drawn from Beta(wrong + 1, right + 1), the share's posterior from a flat prior."""
    rng = np.random.default_rng(seed)
    right_values, wrong_values = values[~wrong], values[wrong]

    def means(v: np.ndarray) -> np.ndarray:
        if not len(v):
            return np.zeros(n_boot)
        chunk = max(1, 2_000_000 // len(v))
        return np.concatenate([v[rng.integers(0, len(v), (min(chunk, n_boot - i), len(v)))].mean(axis=1)
                               for i in range(0, n_boot, chunk)])
    share = rng.beta(len(wrong_values) + 1, len(right_values) + 1, n_boot)
    draws = (1 - share) * means(right_values) + share * means(wrong_values)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def decide_temperature(val_logits, val_labels, seed: int = 0) -> dict:
    """Fit T on validation and keep it only when cross-fitted evidence says it lowers NLL. JSON-safe:

    {"applied", "temperature" (the T to use: the fitted one, a milder one, or 1.0), "fitted_temperature", "reason"
     (why, a code: see _decision, or "milder"), "n_val", "val_errors", "min_val", "folds", "crossfit": {"nll_before",
     "nll_after", "change", "change_ci" (the plain bootstrap's), "change_ci_errors" (interval_allowing_for_errors)}
     or None when the split is too small to cut into folds, "milder": {"power", "temperature", the crossfit keys}
     (the fitted T ** power, cross-fitted the same way, kept where the fitted T was not sure) or None}
    """
    logits, labels = check_scores(val_logits, val_labels, "val_logits")
    t, n = fit_temperature(logits, labels), len(labels)
    out = {"fitted_temperature": t, "n_val": n, "val_errors": int((logits.argmax(1) != labels).sum()),
           "min_val": MIN_VAL, "folds": FOLDS, "crossfit": None, "milder": None}
    if n >= 2 * FOLDS and t != 1.0:
        out["crossfit"] = _crossfit(logits, labels, seed)
    out["applied"], out["reason"] = _decision(out)
    # A T that overshoots on few errors (label smoothing's under-confident model: 2 wrong of 179, T = 0.33) may still
    # be right in direction: T ** 0.75, 0.5, 0.25 risk less on the wrong examples; the first whose gain is sure ships.
    if not out["applied"] and out["reason"] in ("not_clearly_better", "worse", "few_errors") and out["val_errors"]:
        for power in MILDER:
            cf = _crossfit(logits, labels, seed, power)
            if cf["change_ci"][1] < 0 and cf["change_ci_errors"][1] < 0:
                out["milder"] = {"power": power, "temperature": t ** power, **cf}
                out["applied"], out["reason"] = True, "milder"
                break
    out["temperature"] = (out["milder"]["temperature"] if out["milder"] else t) if out["applied"] else 1.0
    return out


def _crossfit(logits: np.ndarray, labels: np.ndarray, seed: int, power: float = 1.0) -> dict:
    """The cross-fitted change in NLL of T (fitted on the other parts, to `power`), with both its intervals."""
    change = cross_fitted_change(logits, labels, seed, power=power)
    mean, lo, hi = mean_with_interval(change, seed)
    before = nll_from_logits(logits, labels)
    return {"nll_before": before, "nll_after": before + mean, "change": mean, "change_ci": [lo, hi],
            "change_ci_errors": list(interval_allowing_for_errors(change, logits.argmax(1) != labels, seed))}


def _decision(d: dict) -> tuple[bool, str]:
    """Whether to apply the fitted T, and why, as a code (report/words/calibration.py says each in words):
    too_few_examples, no_gain (T = 1 fits best), at_bound (T stopped at T_MIN or T_MAX), worse or not_clearly_better
    (the cross-fitted change's 95% interval reaches 0 from above or straddles it), few_errors (it lies below 0, but
    not once the share of wrong examples is allowed to be what their count allows), clear_gain."""
    t, n, cf = d["fitted_temperature"], d["n_val"], d["crossfit"]
    if n < MIN_VAL:
        return False, "too_few_examples"
    if t == 1.0:
        return False, "no_gain"
    if t in (T_MIN, T_MAX):
        return False, "at_bound"
    lo, hi = cf["change_ci"]
    if hi >= 0:
        return False, "not_clearly_better" if lo < 0 else "worse"
    if cf["change_ci_errors"][1] >= 0:
        return False, "few_errors"
    return True, "clear_gain"


def check_on_test(test_logits, test_labels, decision: dict, seed: int = 0) -> dict:
    """Does test agree with the decision? The change in test NLL with the T applied (or, not applied, the fitted
    one), and its 95% interval."""
    t = decision["temperature"] if decision["applied"] else decision["fitted_temperature"]
    change = nll_per_example(test_logits, test_labels, t) - nll_per_example(test_logits, test_labels)
    mean, lo, hi = mean_with_interval(change, seed)
    helped, hurt = hi < 0, lo > 0
    if t == 1.0 or not (helped or hurt):
        agrees = None                              # test cannot tell: the change is within noise
    else:
        agrees = helped if decision["applied"] else hurt
    return {"nll_before": nll_from_logits(test_logits, test_labels), "nll_after": nll_from_logits(test_logits, test_labels, t),
            "change": mean, "change_ci": [lo, hi], "agrees": agrees}


def calibration_report(val_logits, val_labels, test_logits, test_labels, n_bins: int = N_BINS,
                       tolerance: float = 0.02, seed: int = 0) -> dict:
    """Decide T on validation, then measure calibration on test with and without the fitted T. JSON-safe:

    {"applied", "temperature" (the T the saved model uses), "fitted_temperature", "reason", "decision"
     (decide_temperature's record), "test_check" (check_on_test's), "temperature_at_bound", "n_val", "n_test",
     "n_bins", "tolerance", "val_nll_before", "val_nll_after" (in-sample, at the T "after" shows),
     "before": {"ece", "mce", "nll", "brier", "accuracy", "mean_confidence", "verdict"} (T = 1),
     "after": {same keys} (the T applied, else the fitted T), "reliability_before": [bin...],
     "reliability_after": [bin...]}
    `tolerance` is the ECE at or below which a model is called well calibrated. "reason" is the decision's code;
    report/words/calibration.py `worded` puts its words in its place and adds the sentence a run stores.
    """
    val_logits, val_labels = check_scores(val_logits, val_labels, "val_logits")
    test_logits, test_labels = check_scores(test_logits, test_labels, "test_logits")
    if val_logits.shape[1] != test_logits.shape[1]:
        raise ValueError(f"val_logits have {val_logits.shape[1]} classes but test_logits "
                         f"{test_logits.shape[1]}; both must come from the same model.")
    decision = decide_temperature(val_logits, val_labels, seed)
    fitted = decision["fitted_temperature"]
    t = decision["temperature"] if decision["applied"] else fitted  # the T "after" shows: the saved one, or the fit
    before, bins_before = figures(test_logits, test_labels, 1.0, n_bins, tolerance)
    after, bins_after = figures(test_logits, test_labels, t, n_bins, tolerance)
    return {
        "applied": decision["applied"], "temperature": decision["temperature"], "fitted_temperature": fitted,
        "reason": decision["reason"], "decision": decision,
        "test_check": check_on_test(test_logits, test_labels, decision, seed),
        "temperature_at_bound": fitted in (T_MIN, T_MAX),
        "n_val": len(val_labels), "n_test": len(test_labels), "n_bins": n_bins, "tolerance": tolerance,
        "val_nll_before": nll_from_logits(val_logits, val_labels),
        "val_nll_after": nll_from_logits(val_logits, val_labels, t),
        "before": before, "after": after,
        "reliability_before": bins_before, "reliability_after": bins_after,
    }


def manifest_record(report: dict) -> dict:
    """What the artifact's manifest keeps: "temperature" only when applied (old readers apply any T they find),
    and the decision with its evidence under "calibration" (report: as a run stores it, its reason in words)."""
    d = report["decision"]
    record = {"applied": report["applied"], "reason": report["reason"], "fitted_temperature": d["fitted_temperature"],
              "n_val": d["n_val"], "crossfit": d["crossfit"], "test_agrees": report["test_check"]["agrees"]}
    return {**({"temperature": report["temperature"]} if report["applied"] else {}), "calibration": record}
