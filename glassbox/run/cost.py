"""The cost ledger of a finished run, one rule for classifiers and language models: FLOPs counted on the real model
and batch shapes (every training step, and every validation pass, since both ran), time measured on this machine,
MFU against the matmul peak of the precision and threads training used. Under torchrun every process ran the
same steps on its own device: their FLOPs and peaks are summed."""
from __future__ import annotations

import statistics
import time

import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.cost import (count_inference_flops, count_train_step_flops, cost_ledger, default_power_watts,
                                    optimizer_flops_per_param, optimizer_step_flops)
from glassbox.evaluate.peak import measure_matmul_peak, peak_provenance
from glassbox.runtime import distributed


def measure_cost(model, batch: tuple, one: torch.Tensor, n_val: int, result, cfg: TrainConfig, loss_fn) -> dict:
    """batch: one training batch (x, y); one: one prediction's input; n_val: inputs each validation pass scores."""
    device = next(model.parameters()).device
    x, y = batch
    step_flops = (count_train_step_flops(model, x.to(device), y.to(device), loss_fn) * cfg.grad_accum
                  + optimizer_step_flops(model, optimizer_flops_per_param(cfg.optimizer, cfg.weight_decay, cfg.momentum)))
    one = one.to(device)
    infer_flops = count_inference_flops(model, one)
    n_evals = sum(1 for h in result.history if h.get("val_loss") is not None)  # the untrained model's pass too
    eval_flops = n_evals * n_val * infer_flops
    dtype = model.compute_dtype(device) if hasattr(model, "compute_dtype") else torch.float32
    cpu = result.threads if device.type == "cpu" else None  # the peak on the threads training ran on
    world = distributed.current().world_size
    ledger = cost_ledger(world * (result.steps * step_flops + eval_flops), max(result.train_seconds, 1e-9), infer_flops,
                         max(prediction_seconds(model, one), 1e-9), world * measure_matmul_peak(device, dtype, threads=cpu),
                         power_watts=cfg.power_watts or default_power_watts(device, world),
                         price_per_kwh=cfg.price_per_kwh, peak_dtype=str(dtype).removeprefix("torch."), peak_threads=cpu,
                         peak_how=peak_provenance(device, dtype, threads=cpu))
    ledger["train"].update({"flops_per_step": step_flops, "steps": result.steps, "eval_flops": eval_flops})
    return ledger


def prediction_seconds(model, one: torch.Tensor, repeats: int = 20) -> float:
    """Median wall time of one forward pass over `one`, in eval mode, after one warm-up pass."""
    model.eval()
    with torch.inference_mode():
        model(one)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t)
    return statistics.median(times)
