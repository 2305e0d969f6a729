"""What every learning curve trains and measures (`glassbox curve`: by training-set size in curve.py, with one group
cut down in curve_skew.py, by corpus size in curve_lm.py): the sizes, nested stratified subsets, one fit on a
subset scored on the shared test split, and the interval of a paired difference. The three curves import from here,
and curve.py dispatches to the other two: no import circle."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.calibration import ece, nll_per_example
from glassbox.models.registry import build_model
from glassbox.train.loop import evaluate, fit, predict_logits

FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
Z95 = 1.96          # a normal 95% interval


def nested_subsets(labels: np.ndarray, fractions, seed: int) -> list[np.ndarray]:
    """Stratified, seeded subsets, each inside the next: per class, the first share of one seeded permutation (at
    least one example of every class)."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return [np.sort(np.concatenate([idx[:max(1, round(f * len(idx)))] for idx in per_class])) for f in fractions]


def train_on(split: dict, idx: np.ndarray, cfg: TrainConfig, steps: int) -> dict:
    """Fit the run's encoder and model on split["train"][idx] for `steps` updates (the sweet spot restored) and
    score it: test accuracy, loss and each test example's probabilities; train and validation accuracy."""
    from glassbox.data.kinds import KINDS
    from glassbox.run.model_for_data import make_encoder, model_config

    sub = split["train"].subset(idx)
    encoder = make_encoder(sub, cfg)  # statistics and vocabulary from these examples alone
    X = {"train": encoder.encode(sub.inputs), "val": encoder.encode(split["val"].inputs),
         "test": encoder.encode(split["test"].inputs)}
    Y = {"train": torch.from_numpy(sub.labels), "val": torch.from_numpy(split["val"].labels),
         "test": torch.from_numpy(split["test"].labels)}
    torch.manual_seed(cfg.seed)
    arch, config = model_config(sub, encoder, cfg)
    quiet = replace(cfg, quiet=True, max_steps=steps, epochs=None, resume=False, out=None)
    res = fit(build_model(arch, config), (X["train"], Y["train"]), (X["val"], Y["val"]), config=quiet,
              augment=KINDS[sub.kind].augment(encoder))
    device = next(res.model.parameters()).device
    logits = predict_logits(res.model, X["test"], device=device).numpy()
    y_test = Y["test"].numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    _, train_acc = evaluate(res.model, (X["train"][:5000], Y["train"][:5000]), device=device)
    val_loss, val_acc = evaluate(res.model, (X["val"], Y["val"]), device=device)
    return {"n": len(idx), "steps": res.steps, "best_step": res.best_step, "stopped_early": res.stopped_early,
            "test_accuracy": float((probs.argmax(1) == y_test).mean()),
            "test_loss": float(nll_per_example(logits, y_test).mean()), "test_ece": ece(probs, y_test),
            "train_accuracy": train_acc, "val_accuracy": val_acc, "val_loss": val_loss, "probs": probs}


def paired_interval(differences: np.ndarray) -> list[float]:
    """95% interval of a mean difference measured on the same examples (normal approximation)."""
    half = Z95 * differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else float("inf")
    return [float(differences.mean() - half), float(differences.mean() + half)]


def over_repeats(per_repeat: list[np.ndarray]) -> dict:
    """A difference each repeat measured on the same test examples (per repeat, one difference per example): its
    mean, each repeat's, their spread, the 95% interval of the test examples' noise (paired, on each example's
    difference averaged over the repeats), and whether it is beyond noise: "above" (or "below") when that interval
    lies above (below) 0 and, from 2 repeats on, every repeat's difference too, so that no other seed (weights, batch
    order, subsample) gave the other answer; else None.

    With one repeat only the test examples' noise is judged: "repeats": 1 says so."""
    means = np.array([float(np.mean(d)) for d in per_repeat])
    interval = paired_interval(np.mean(per_repeat, axis=0))
    beyond = ("above" if interval[0] > 0 and means.min() > 0 else
              "below" if interval[1] < 0 and means.max() < 0 else None)
    return {"mean": float(means.mean()), "interval": interval, "per_repeat": means.tolist(),
            "spread": [float(means.min()), float(means.max())], "repeats": len(means), "beyond": beyond}


def repeats_words(x: dict, scale: float = 1.0, unit: str = "", digits: int = 1) -> str:
    """How the repeats agreed: 'over 3 repeats (each its own seed) +1.2, +0.8 and +1.6 points, a spread of 0.8 points,
    all above 0', or that the interval covers the test examples alone."""
    if x["repeats"] == 1:
        return ("one repeat: the interval covers the test examples only, not another random start; --repeats 3 or "
                "more adds that")
    values = [f"{scale * v:+.{digits}f}" for v in x["per_repeat"]]
    listed = ", ".join(values[:-1]) + f" and {values[-1]}"
    low, high = x["spread"]
    side = "all above 0" if low > 0 else "all below 0" if high < 0 else "not all on one side of 0"
    return (f"over {x['repeats']} repeats (each its own seed) {listed}{unit}, a spread of "
            f"{scale * (high - low):.{digits}f}{unit}, {side}")
