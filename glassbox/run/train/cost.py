"""The cost ledger of a finished run, one rule for classifiers and language models: FLOPs counted on the real model
and batch shapes (every training step, and every validation pass, since both ran), time measured on this machine,
MFU against the matmul peak of the precision and threads training used. Under torchrun the processes share each
global batch and each updates its own copy of the weights: the ledger counts all of their FLOPs against the sum of
their peaks, over each stretch of steps on one number of processes."""
from __future__ import annotations

import statistics
import time

import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.cost import (count_inference_flops, count_train_step_flops, cost_ledger, default_power_watts,
                                    optimizer_flops_per_param, optimizer_step_flops)
from glassbox.evaluate.peak import measure_matmul_peak, peak_record
from glassbox.report.words import cost as cost_words


def measure_cost(model, batch: tuple, one: torch.Tensor, n_val: int, result, cfg: TrainConfig, loss_fn) -> dict:
    """The ledger with its sentence. batch: one global training batch (x, y); one: one prediction's input; n_val:
    inputs each validation pass scores."""
    device = next(model.parameters()).device
    x, y = batch
    # the global batch's forward and backward, however many processes shared it; each process updates every weight
    batch_flops = count_train_step_flops(model, x.to(device), y.to(device), loss_fn) * cfg.grad_accum
    update_flops = optimizer_step_flops(model, optimizer_flops_per_param(cfg.optimizer, cfg.weight_decay, cfg.momentum))
    one = one.to(device)
    infer_flops = count_inference_flops(model, one)
    work = process_work(result, batch_flops, update_flops, n_val * infer_flops)
    dtype = model.compute_dtype(device) if hasattr(model, "compute_dtype") else torch.float32
    cpu = result.threads if device.type == "cpu" else None  # the peak on the threads training ran on
    peak = measure_matmul_peak(device, dtype, threads=cpu)  # rank 0's device: every process is taken to have its like
    ledger = cost_ledger(work["train_flops"] + work["eval_flops"], max(result.train_seconds, 1e-9), infer_flops,
                         max(prediction_seconds(model, one), 1e-9), work["processes"] * peak,
                         power_watts=cfg.power_watts or default_power_watts(device, work["processes"]),
                         price_per_kwh=cfg.price_per_kwh, peak_dtype=str(dtype).removeprefix("torch."), peak_threads=cpu,
                         peak_how=cost_words.peak_how(peak_record(device, dtype, threads=cpu)),
                         processes=work["processes"], peak_per_process=peak)
    ledger["sentence"] = cost_words.sentence(ledger)
    ledger["train"].update({"flops_per_step": work["train_flops"] / max(1, result.steps), "steps": result.steps,
                            "eval_flops": work["eval_flops"], "sessions": work["sessions"]})
    return ledger


def process_work(result, batch_flops: float, update_flops: float, eval_pass_flops: float) -> dict:
    """FLOPs and process-seconds of each stretch of steps on one number of processes (a run resumed on another
    number has several): every process updates its own copy of the weights and scores the validation split.
    processes: the process count averaged over training time, which the summed peak is taken over."""
    sessions = result.sessions or [{"world_size": result.world_size, "from_step": 0, "to_step": result.steps,
                                    "seconds": result.train_seconds}]
    evals = [h["step"] for h in result.history if h.get("val_loss") is not None]  # the untrained model's pass too
    train_flops = eval_flops = process_seconds = 0.0
    for s in sessions:
        n_evals = sum(1 for step in evals if s["from_step"] < step <= s["to_step"] or step == s["from_step"] == 0)
        train_flops += (s["to_step"] - s["from_step"]) * (batch_flops + s["world_size"] * update_flops)
        eval_flops += s["world_size"] * n_evals * eval_pass_flops
        process_seconds += s["world_size"] * s["seconds"]
    seconds = sum(s["seconds"] for s in sessions)
    return {"train_flops": train_flops, "eval_flops": eval_flops, "sessions": sessions,
            "processes": process_seconds / seconds if seconds > 0 else float(result.world_size)}


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
