"""Where a regression run differs from a classifier's (classifier.py runs both): its scores in the label's units
next to predicting the training mean, prediction intervals in place of calibration, per-group errors, and the
closing lines. Everything else (data, split, audit, encoder, the loop, cost, artifact, finish) is the classifier's."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from glassbox.config import TrainConfig
from glassbox.data.regression import TargetScale
from glassbox.evaluate.regression import (bootstrap_intervals, conformal_interval, coverage, errors, group_errors,
                                          interval_sentence, r2_words)
from glassbox.run.finish import RUN_FILES, folder_lines, training_record
from glassbox.train.loop import evaluate, predict_logits

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
        by_column = group_errors(y_test, pred["test"], split["test"].groups)
        out["groups"] = {"by_column": by_column, "sentences": [r["sentence"] for r in by_column.values()]}
    return out


def residual_sample(y: np.ndarray, pred: np.ndarray, seed: int, at_most: int = 2000) -> dict:
    """Test truths and predictions for the residual plot: every one, or a seeded sample of `at_most`."""
    rows = np.arange(len(y))
    if len(rows) > at_most:
        rows = np.sort(np.random.default_rng(seed).choice(rows, at_most, replace=False))
    return {"true": y[rows].tolist(), "predicted": pred[rows].tolist(), "n_test": int(len(y))}


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
