"""After training, the truth about a classifier: calibration, per-class and per-group figures, and the
shuffled-label memorisation control (the same model trained again on noise)."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.calibration import softmax
from glassbox.evaluate.classification import per_class_report
from glassbox.evaluate.groups import groups_report
from glassbox.evaluate.temperature import calibration_report
from glassbox.models.registry import build_model
from glassbox.report.words import calibration as calibration_words
from glassbox.report.words import control as control_words
from glassbox.report.words import groups as group_words
from glassbox.train.loop import evaluate, fit


def classifier_figures(logits: dict, Y: dict, test_groups: dict, classes: list[str], seed: int) -> dict:
    """Calibration (a temperature fitted on validation, kept only where examples it was not fitted on say it helps,
    judged on test), per-class and per-group figures on the test split as the saved model gives them (JSON-safe),
    with the words a reader sees."""
    val_logits, test_logits = logits["val"].numpy(), logits["test"].numpy()
    y_val, y_test = Y["val"].numpy(), Y["test"].numpy()
    calib = calibration_words.worded(calibration_report(val_logits, y_val, test_logits, y_test, seed=seed))
    probs = softmax(test_logits, calib["temperature"])  # the applied T: 1 when scaling was not kept
    out = {"temperature": calib["temperature"], "calibration": calib,
           "per_class": per_class_report(y_test, probs.argmax(1), classes)}
    if test_groups:
        positive = 1 if len(classes) == 2 else None
        groups = groups_report(probs, y_test, test_groups, positive_class=positive, seed=seed)
        out["groups"] = group_words.worded(groups, classes)
    return out


def run_control(X: dict, Y: dict, arch: str, model_config: dict, cfg: TrainConfig, run_dir: Path, result) -> dict:
    """The same model and steps, trained on shuffled labels: what memorising noise looks like."""
    torch.manual_seed(cfg.seed)
    model = build_model(arch, model_config)
    y_shuffled = shuffled(Y["train"], cfg.seed)
    ctl_cfg = replace(cfg, patience=0, resume=False, quiet=True, max_steps=2 * cfg.steps_for(len(y_shuffled)))
    res = fit(model, (X["train"], y_shuffled), (X["val"], Y["val"]), config=ctl_cfg, run_dir=run_dir / "control",
              restore_best=False)  # keep the last weights: they show how much noise was memorised
    device = next(model.parameters()).device
    seen = y_shuffled[:5000]  # training accuracy on (up to) 5,000 of the examples it was trained on
    _, train_acc = evaluate(res.model, (X["train"][:5000], seen), device=device)
    _, val_acc = evaluate(res.model, (X["val"], Y["val"]), device=device)
    majority = float(np.bincount(Y["val"].numpy()).max() / len(Y["val"]))
    train_majority = float(np.bincount(seen.numpy()).max() / len(seen))
    verdict = control_verdict(train_acc, val_acc, majority, len(Y["val"]), train_majority, len(seen))
    return {**verdict, "sentence": control_words.sentence(verdict), "steps": res.steps, "main_run_steps": result.steps}


def control_verdict(train_acc: float, val_acc: float, majority: float, n_val: int,
                    train_majority: float | None = None, n_train: int = 0) -> dict:
    """Is validation accuracy on shuffled labels above chance by more than 3 standard errors? Then something leaks.
    Did training accuracy climb above chance by more than 3 standard errors and more than 2 points? Then the model
    memorised noise. report/words/control.py says which."""
    margin = 3 * math.sqrt(max(majority * (1 - majority), 1e-12) / max(n_val, 1))
    leaks = val_acc > majority + margin
    train_chance = majority if train_majority is None else train_majority
    train_margin = 3 * math.sqrt(max(train_chance * (1 - train_chance), 1e-12) / max(n_train, 1)) if n_train else 0.0
    memorised = train_acc > train_chance + max(train_margin, 0.02)
    return {"train_accuracy": train_acc, "val_accuracy": val_acc, "chance_accuracy": majority,
            "train_chance_accuracy": train_chance, "margin": margin, "leak_suspected": leaks,
            "memorised_noise": memorised}


def shuffled(labels: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels.numpy()))
