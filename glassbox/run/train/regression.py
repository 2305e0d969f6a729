"""The regression task: a number per example (a table's column, a text's or an image's numeric label). The model
learns the target standardised by the training split's mean and standard deviation (fitted once, here), with MSE or
Huber loss; its chance level is predicting the training mean. After training: RMSE, MAE and R^2 in the label's units
next to the mean's, bootstrap intervals, split-conformal prediction intervals in place of calibration, per-group
errors, the artifact's target scale and interval, and the closing lines. classifier.py runs it as it runs
classification (classify.py): data, split, audit, encoder, the loop, cost, artifact and finish are shared."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.regression import TargetScale
from glassbox.evaluate.regression import bootstrap_intervals, conformal_interval, coverage, errors, group_errors
from glassbox.report.words import chance as chance_words
from glassbox.report.words.regression import interval_sentence, r2_words, worded_groups
from glassbox.run.train.finish import RUN_FILES, folder_lines, training_record
from glassbox.train.loop import evaluate, predict_logits
from glassbox.train.regression import LOSSES, mean_prediction_chance

PARTS = ("train", "val", "test")


def predictions(model, X: dict, scale: TargetScale, parts=PARTS) -> dict:
    """Each part's predictions in the label's units (training: up to 5,000 of its examples)."""
    device = next(model.parameters()).device
    return {name: scale.to_units(predict_logits(model, X[name][:5000] if name == "train" else X[name], device=device))
            for name in parts}


def regression_scores(result, X: dict, Y: dict, split: dict, ex, arch: str, cfg: TrainConfig, audit: dict,
                      scale: TargetScale, loss_fn) -> dict:
    """Loss on each split at the sweet spot, and RMSE, MAE and R^2 in the label's units next to the training mean's
    (training figures on up to 5,000 of its examples)."""
    model = result.model
    device = next(model.parameters()).device
    loss = {name: evaluate(model, (X[name][:5000], Y[name][:5000]) if name == "train" else (X[name], Y[name]),
                           loss_fn, device=device)[0] for name in PARTS}
    pred = predictions(model, X, scale)
    truth = {name: split[name].targets[:5000] if name == "train" else split[name].targets for name in PARTS}
    scored = {name: errors(truth[name], pred[name]) for name in PARTS}
    mean_only = {name: errors(truth[name], np.full(len(truth[name]), scale.mean)) for name in ("val", "test")}
    record = training_record(result, ex, arch, cfg, audit)
    record["chance"].update({f"{name}_{metric}": mean_only[name][metric] for name in ("val", "test")
                             for metric in ("rmse", "mae", "r2")})
    return {
        "task": "regression", **record, "label": ex.meta.get("label"), "target": {**scale.to_dict(), "loss": cfg.loss},
        "n_examples": {k: len(v) for k, v in Y.items()}, **{f"{name}_loss": loss[name] for name in PARTS},
        **{f"{name}_{metric}": scored[name][metric] for name in PARTS for metric in ("rmse", "mae", "r2")},
        "errors": scored, "generalisation_gap": scored["val"]["rmse"] - scored["train"]["rmse"],
        "test_ci": bootstrap_intervals(truth["test"], pred["test"], cfg.seed),  # how far chance alone moves them
    }


def regression_figures(model, X: dict, split: dict, scale: TargetScale, seed: int) -> dict:
    """Prediction intervals from validation residuals, their coverage on test, the test residuals (for the report's
    plot), and per-group errors on test."""
    pred = predictions(model, X, scale, ("val", "test"))
    interval = conformal_interval(split["val"].targets, pred["val"])
    y_test = split["test"].targets
    cover = coverage(y_test, pred["test"], interval)
    out = {"interval": {**interval, "test": cover, "sentence": interval_sentence(interval, cover)},
           "residuals": residual_sample(y_test, pred["test"], seed)}
    if split["test"].groups:
        by_column = worded_groups(group_errors(y_test, pred["test"], split["test"].groups))
        out["groups"] = {"by_column": by_column, "sentences": [r["sentence"] for r in by_column.values()]}
    return out


def chance(model, val, loss_fn, batch_size: int, device) -> dict:
    """The loop's chance level for a number (always the training mean), with the sentence the loop prints."""
    c = mean_prediction_chance(model, val, loss_fn, batch_size, device)
    return {**c, "sentence": chance_words.mean_prediction(c)}


def residual_sample(y: np.ndarray, pred: np.ndarray, seed: int, at_most: int = 2000) -> dict:
    """Test truths and predictions for the residual plot: every one, or a seeded sample of `at_most`."""
    rows = np.arange(len(y))
    if len(rows) > at_most:
        rows = np.sort(np.random.default_rng(seed).choice(rows, at_most, replace=False))
    return {"true": y[rows].tolist(), "predicted": pred[rows].tolist(), "n_test": int(len(y))}


class Regress:
    name = "regression"
    chance_fn = staticmethod(chance)  # always the training mean

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.loss_fn = self.fit_loss = LOSSES[cfg.loss]
        self.scale: TargetScale | None = None  # fitted on the training split by `targets`

    def targets(self, split: dict) -> dict:
        """Each part's target standardised by the training split's mean and standard deviation, (N, 1)."""
        self.scale = TargetScale.fit(split["train"].targets)
        return {name: self.scale.standardise(part.targets) for name, part in split.items()}

    def scores(self, result, X: dict, Y: dict, split: dict, ex, arch: str, audit: dict) -> dict:
        return regression_scores(result, X, Y, split, ex, arch, self.cfg, audit, self.scale, self.loss_fn)

    def figures(self, model, X: dict, Y: dict, split: dict) -> dict:
        return regression_figures(model, X, split, self.scale, self.cfg.seed)

    @staticmethod
    def first_sentence(figures: dict) -> str:
        return figures["interval"]["sentence"]

    def control(self, X: dict, Y: dict, arch: str, config: dict, run_dir: Path, result) -> dict:
        raise AssertionError("a regression has no shuffled-label control; run/data.py refuses --control for it")

    @staticmethod
    def artifact_record(summary: dict, ex) -> dict:
        """What the artifact keeps for this task: the target's scale and the prediction interval."""
        return {"classes": None, "extra": {"target": summary["target"], "interval": {
            k: v for k, v in summary["interval"].items() if k not in ("test", "sentence")}}}

    @staticmethod
    def closing_words(summary: dict, run_dir: Path) -> str:
        return closing_words(summary, run_dir)


def closing_words(summary: dict, run_dir: Path) -> str:
    c = summary["chance"]
    return "\n".join([
        f"test RMSE {summary['test_rmse']:.4g}, MAE {summary['test_mae']:.4g}, R^2 {r2_words(summary['test_r2'])}; chance "
        f"level (always the training mean, {summary['target']['mean']:.4g}): RMSE {c['test_rmse']:.4g}, MAE "
        f"{c['test_mae']:.4g}, R^2 {r2_words(c['test_r2'])}",
        f"generalisation gap at the sweet spot: train RMSE {summary['train_rmse']:.4g} vs validation "
        f"{summary['val_rmse']:.4g} ({summary['generalisation_gap']:+.4g})",
        "wall time: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in summary.get("stage_seconds", {}).items()),
        *folder_lines(run_dir, RUN_FILES),
    ])
