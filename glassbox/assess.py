"""After training, the truth about a classifier: calibration, per-class and per-group figures,
the cost ledger, and the shuffled-label memorisation control. Called by the pipeline."""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch

from glassbox.evaluate.calibration import calibration_report, softmax
from glassbox.evaluate.classification import per_class_report
from glassbox.evaluate.cost import (count_inference_flops, count_train_step_flops, cost_ledger, default_power_watts,
                                    measure_matmul_peak, optimizer_flops_per_param, optimizer_step_flops)
from glassbox.evaluate.groups import groups_report
from glassbox.runtime import distributed


def assess(model, logits: dict, Y: dict, X: dict, test_groups: dict, classes: list[str], result, cfg) -> dict:
    """Every post-training figure for the summary (JSON-safe)."""
    val_logits, test_logits = logits["val"].numpy(), logits["test"].numpy()
    y_val, y_test = Y["val"].numpy(), Y["test"].numpy()
    calib = calibration_report(val_logits, y_val, test_logits, y_test)
    probs = softmax(test_logits, calib["temperature"])
    out = {"temperature": calib["temperature"], "calibration": calib,
           "per_class": per_class_report(y_test, probs.argmax(1), classes)}
    if test_groups:
        positive = 1 if len(classes) == 2 else None
        out["groups"] = groups_report(probs, y_test, test_groups, positive_class=positive, seed=cfg.seed)
    out["cost"] = measure_cost(model, X, result, cfg)
    return out


def measure_cost(model, X: dict, result, cfg) -> dict:
    """FLOPs counted on the real model and batch shapes; time measured on this machine."""
    device = next(model.parameters()).device
    xb = X["train"][:cfg.batch_size].to(device)
    yb = torch.zeros(len(xb), dtype=torch.long, device=device)
    loss_fn = torch.nn.functional.cross_entropy
    step_flops = (count_train_step_flops(model, xb, yb, loss_fn) * cfg.grad_accum
                  + optimizer_step_flops(model, optimizer_flops_per_param(cfg.optimizer, cfg.weight_decay, cfg.momentum)))
    one = X["test"][:1].to(device)
    infer_flops = count_inference_flops(model, one)
    n_evals = sum(1 for h in result.history if h.get("val_loss") is not None)
    eval_flops = n_evals * len(X["val"]) * infer_flops
    model.eval()
    with torch.inference_mode():
        model(one)  # warm up
        times = []
        for _ in range(20):
            t = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t)
    infer_seconds = statistics.median(times)
    # MFU against the peak of the precision the model computes in (bfloat16 where it uses native bf16).
    # Under torchrun every rank ran the same steps on its own device: count them all, against all their peaks.
    dtype = model.compute_dtype(device) if hasattr(model, "compute_dtype") else torch.float32
    cpu = result.threads if device.type == "cpu" else None  # the peak on the threads training ran on
    world = distributed.current().world_size
    ledger = cost_ledger(world * (result.steps * step_flops + eval_flops), max(result.train_seconds, 1e-9), infer_flops,
                         max(infer_seconds, 1e-9), world * measure_matmul_peak(device, dtype, threads=cpu),
                         power_watts=cfg.power_watts or default_power_watts(device, world),
                         price_per_kwh=cfg.price_per_kwh, peak_dtype=str(dtype).removeprefix("torch."), peak_threads=cpu)
    ledger["train"]["flops_per_step"] = step_flops
    ledger["train"]["steps"] = result.steps
    ledger["train"]["eval_flops"] = eval_flops
    return ledger


def control_verdict(train_acc: float, val_acc: float, majority: float, n_val: int,
                    train_majority: float | None = None, n_train: int = 0) -> dict:
    """Is validation accuracy on shuffled labels clearly above chance? Then something leaks.
    Did training accuracy climb clearly above chance? Then the model memorised noise."""
    margin = 3 * math.sqrt(max(majority * (1 - majority), 1e-12) / max(n_val, 1))
    leaks = val_acc > majority + margin
    train_chance = majority if train_majority is None else train_majority
    train_margin = 3 * math.sqrt(max(train_chance * (1 - train_chance), 1e-12) / max(n_train, 1)) if n_train else 0.0
    memorised = train_acc > train_chance + max(train_margin, 0.02)
    if leaks:
        sentence = (f"WARNING: with shuffled training labels the model still scores {val_acc:.3f} on validation, "
                    f"clearly above chance ({majority:.3f} ± {margin:.3f}): something leaks the answer — duplicates "
                    f"across splits, or a label hidden in a feature. Do not trust the main run's scores until you find it.")
    elif memorised:
        sentence = (f"On shuffled labels the model reached training accuracy {train_acc:.3f} (chance {train_chance:.3f}) "
                    f"while validation stayed at chance ({val_acc:.3f} vs {majority:.3f}): it can memorise noise, so "
                    f"training accuracy alone proves nothing; the main run's validation score is what counts.")
    else:
        sentence = (f"On shuffled labels the model barely rose above chance even on its training examples "
                    f"({train_acc:.3f} vs {train_chance:.3f}): in this many steps it memorised little of the noise, and "
                    f"validation stayed at chance ({val_acc:.3f} vs {majority:.3f}), so nothing leaks. The main run's "
                    f"lead over chance was learned, not memorised.")
    return {"train_accuracy": train_acc, "val_accuracy": val_acc, "chance_accuracy": majority,
            "train_chance_accuracy": train_chance, "margin": margin, "leak_suspected": leaks,
            "memorised_noise": memorised, "sentence": sentence}


def shuffled(labels: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels.numpy()))
