"""Per-group metrics: is the model worse for some people than for others, and could that be chance?

For each value of a group column (e.g. sex, race) we report size, accuracy, mean loss, ECE,
how often the model predicts the positive class and how often the label is positive, with
95% percentile-bootstrap intervals. Groups under `min_size` are flagged, never ranked: their
figures swing too much to name them the worst.

The bootstrap resamples each group on its own (stratified: group sizes stay fixed), which is
what a comparison between groups needs. Resampling n examples with replacement and counting
the correct ones is exactly a Binomial(n, share correct) draw, so each resample costs one
binomial draw per group instead of n index look-ups: 50,000 rows x 1,000 resamples take
milliseconds. The same draws give every group's interval, the overall one and the gap's.
"""
from __future__ import annotations

import numpy as np

from glassbox.evaluate.calibration import check_scores, ece, nll

CI_LEVEL = 0.95   # width of every bootstrap interval


def _interval(draws: np.ndarray, level: float = CI_LEVEL) -> list[float]:
    """Percentile interval of bootstrap draws along the last axis: [low, high]."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=-1)
    return [float(low), float(high)]


def _resample_shares(rng, successes: np.ndarray, sizes: np.ndarray, n_boot: int) -> np.ndarray:
    """(G, n_boot) bootstrap counts of successes per group: Binomial(n_g, successes_g / n_g)."""
    return rng.binomial(sizes[:, None], (successes / sizes)[:, None], size=(len(sizes), n_boot))


def group_metrics(probs, labels, group_values: list[str], positive_class: int | None = None,
                  min_size: int = 30, n_boot: int = 1000, seed: int = 0, name: str = "group") -> dict:
    """Figures for each value of one group column, the overall ones, and the worst rankable group.

    positive_class: the class whose predicted rate is compared across groups; a binary task
      defaults to class 1; a multiclass task without one gets None for the rates.
    Returns a JSON-safe dict:
      {"column", "positive_class", "min_size", "n_boot", "seed", "ci_level",
       "overall": {figures}, "groups": [{"value", "too_small", figures}], (sorted by value)
       "ranked": [values by accuracy, lowest first], "too_small": [values],
       "worst": {"value", "accuracy", "overall_accuracy", "gap", "gap_ci", "gap_ci_adjusted",
                 "adjusted_level"} or None, "sentence"}
    figures: size, accuracy, accuracy_ci, nll, ece, positive_rate, positive_rate_ci,
      label_positive_rate. gap = overall accuracy - worst group's accuracy (positive: worse).
    gap_ci_adjusted is the gap's interval at level 1 - 0.05 / (number of ranked groups): it
      allows for the worst group having been picked out of several, and decides the sentence's
      "could be chance".
    """
    probs, labels = check_scores(probs, labels, "probs")
    values = np.asarray([str(v) for v in group_values])
    if len(values) != len(labels):
        raise ValueError(f"group column {name!r} has {len(values)} values for {len(labels)} examples; "
                         f"pass one group value per example.")
    if positive_class is None and probs.shape[1] == 2:
        positive_class = 1
    if positive_class is not None and not 0 <= positive_class < probs.shape[1]:
        raise ValueError(f"positive_class must be a class id in 0..{probs.shape[1] - 1}; got {positive_class}.")

    names, inverse = np.unique(values, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(names))
    preds = probs.argmax(axis=1)
    correct = np.bincount(inverse, weights=preds == labels, minlength=len(names))
    rng = np.random.default_rng(seed)
    correct_draws = _resample_shares(rng, correct, sizes, n_boot)          # (G, n_boot)
    n = len(labels)

    def figures(mask, successes, draws, pos_successes, pos_draws):
        out = {"size": int(mask.sum()), "accuracy": float(successes / mask.sum()),
               "accuracy_ci": _interval(draws / mask.sum()),
               "nll": nll(probs[mask], labels[mask]), "ece": ece(probs[mask], labels[mask]),
               "positive_rate": None, "positive_rate_ci": None, "label_positive_rate": None}
        if positive_class is not None:
            out["positive_rate"] = float(pos_successes / mask.sum())
            out["positive_rate_ci"] = _interval(pos_draws / mask.sum())
            out["label_positive_rate"] = float((labels[mask] == positive_class).mean())
        return out

    pos = pos_draws = None
    if positive_class is not None:
        pos = np.bincount(inverse, weights=preds == positive_class, minlength=len(names))
        pos_draws = _resample_shares(rng, pos, sizes, n_boot)

    overall = figures(np.ones(n, dtype=bool), correct.sum(), correct_draws.sum(axis=0),
                      None if pos is None else pos.sum(), None if pos is None else pos_draws.sum(axis=0))
    groups = []
    for g, value in enumerate(names):
        row = {"value": str(value), "too_small": bool(sizes[g] < min_size)}
        row.update(figures(inverse == g, correct[g], correct_draws[g],
                           None if pos is None else pos[g], None if pos is None else pos_draws[g]))
        groups.append(row)

    rankable = [g for g in range(len(names)) if sizes[g] >= min_size]
    ranked = sorted(rankable, key=lambda g: (groups[g]["accuracy"], groups[g]["value"]))
    worst = None
    if ranked:
        w = ranked[0]
        gap_draws = correct_draws.sum(axis=0) / n - correct_draws[w] / sizes[w]
        # The worst of several groups looks worse than it is by selection alone; an interval
        # that holds for all of them at once (Bonferroni) is the fair test of "could be chance".
        adjusted_level = 1 - (1 - CI_LEVEL) / len(ranked)
        worst = {"value": groups[w]["value"], "accuracy": groups[w]["accuracy"],
                 "overall_accuracy": overall["accuracy"],
                 "gap": overall["accuracy"] - groups[w]["accuracy"], "gap_ci": _interval(gap_draws),
                 "gap_ci_adjusted": _interval(gap_draws, adjusted_level),
                 "adjusted_level": adjusted_level}
    report = {
        "column": name, "positive_class": positive_class, "min_size": min_size, "n_boot": n_boot,
        "seed": seed, "ci_level": CI_LEVEL, "overall": overall, "groups": groups,
        "ranked": [groups[g]["value"] for g in ranked],
        "too_small": [row["value"] for row in groups if row["too_small"]], "worst": worst,
    }
    report["sentence"] = _sentence(report)
    return report


def _sentence(r: dict) -> str:
    """Plain words first: which group fares worst, by how much, and whether chance could explain it."""
    small = [f"{row['value']} ({row['size']})" for row in r["groups"] if row["too_small"]]
    listed = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
    small_text = (f" {len(small)} group{'s' if len(small) > 1 else ''} with fewer than {r['min_size']} "
                  f"examples {'are' if len(small) > 1 else 'is'} not ranked: {listed}." if small else "")
    w = r["worst"]
    if w is None:
        return f"No {r['column']} group has {r['min_size']} or more examples to rank.{small_text}"
    if len(r["groups"]) == 1:
        return f"Every example has {r['column']}={w['value']}: there is nothing to compare."
    low, high = w["gap_ci"]
    text = (f"Accuracy is lowest for {r['column']}={w['value']}: {w['accuracy']:.2f} vs "
            f"{w['overall_accuracy']:.2f} overall (gap {w['gap']:.3f}, {r['ci_level']:.0%} CI "
            f"{low:.3f} to {high:.3f}).")
    low, high = w["gap_ci_adjusted"]
    verdict = ("excludes 0, so chance alone is unlikely to explain the gap" if low > 0
               else "includes 0, so the gap may be chance")
    if len(r["ranked"]) > 1:
        text += (f" Allowing for this being the lowest of {len(r['ranked'])} groups, the interval is "
                 f"{low:.3f} to {high:.3f}: it {verdict}.")
    else:
        text += f" The interval {verdict}."
    return text + small_text


def groups_report(probs, labels, groups: dict[str, list[str]], positive_class: int | None = None,
                  min_size: int = 30, n_boot: int = 1000, seed: int = 0) -> dict:
    """group_metrics for several group columns. JSON-safe dict:

    {"columns": {name: group_metrics(...)}, "sentences": [one per column],
     "largest_gap": {"column", "value", "gap", "gap_ci", "gap_ci_adjusted"} or None
       (the worst group over all columns)}
    """
    columns = {name: group_metrics(probs, labels, values, positive_class, min_size, n_boot, seed, name)
               for name, values in groups.items()}
    gaps = [(c["worst"]["gap"], name) for name, c in columns.items() if c["worst"] is not None]
    largest = None
    if gaps:
        _, name = max(gaps)
        w = columns[name]["worst"]
        largest = {"column": name, "value": w["value"], "gap": w["gap"], "gap_ci": w["gap_ci"],
                   "gap_ci_adjusted": w["gap_ci_adjusted"]}
    return {"columns": columns, "sentences": [c["sentence"] for c in columns.values()],
            "largest_gap": largest}
