"""The cost ledger of a finished run, one rule for classifiers and language models: FLOPs counted on the real model
and batch shapes (every training step, and every validation pass, since both ran), time measured on this machine,
MFU against the matmul peak of the precision and threads training used. Under torchrun the processes share each
global batch and each updates its own copy of the weights: the ledger counts all of their FLOPs against the sum of
their peaks, over each stretch of steps on one number of processes."""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from glassbox.config import TrainConfig
from glassbox.evaluate.cost import (count_inference_flops, count_train_step_flops, cost_ledger, default_power_watts,
                                    optimizer_flops_per_param, optimizer_step_flops)
from glassbox.evaluate.peak import measure_matmul_peak, peak_record
from glassbox.report.words import cost as cost_words


def measure_cost(model, batch: tuple, inputs: torch.Tensor, n_val: int, result, cfg: TrainConfig, loss_fn,
                 sizes: np.ndarray | None = None) -> dict:
    """The ledger with its sentence. batch: one global training batch (x, y); inputs: the test inputs, one prediction
    each (or one alone); n_val: inputs each validation pass scores. sizes: each input's size where a prediction's
    work grows with it (DataKind.input_sizes: a text's ids), else None: every input costs the first one's."""
    device = next(model.parameters()).device
    x, y = batch
    # the global batch's forward and backward, however many processes shared it; each process updates every weight
    batch_flops = count_train_step_flops(model, x.to(device), y.to(device), loss_fn) * cfg.grad_accum
    update_flops = optimizer_step_flops(model, optimizer_flops_per_param(cfg.optimizer, cfg.weight_decay, cfg.momentum))
    spread = per_input_flops(model, inputs, sizes, device) if sizes is not None and len(inputs) > 1 else None
    one = inputs[spread["median_row"] if spread else 0:][:1].to(device)  # the median input: its time is the ledger's
    infer_flops = spread["median"] if spread else count_inference_flops(model, one)
    work = process_work(result, batch_flops, update_flops, n_val * (spread["mean"] if spread else infer_flops))
    dtype = model.compute_dtype(device) if hasattr(model, "compute_dtype") else torch.float32
    cpu = result.threads if device.type == "cpu" else None  # the peak on the threads training ran on
    peak = measure_matmul_peak(device, dtype, threads=cpu)  # rank 0's device: every process is taken to have its like
    ledger = cost_ledger(work["train_flops"] + work["eval_flops"], max(result.train_seconds, 1e-9), infer_flops,
                         max(prediction_seconds(model, one), 1e-9), work["processes"] * peak,
                         power_watts=cfg.power_watts or default_power_watts(device, work["processes"]),
                         price_per_kwh=cfg.price_per_kwh, peak_dtype=str(dtype).removeprefix("torch."), peak_threads=cpu,
                         peak_how=cost_words.peak_how(peak_record(device, dtype, threads=cpu)),
                         processes=work["processes"], peak_per_process=peak)
    if spread:
        ledger["inference"]["flops_spread"] = {k: v for k, v in spread.items() if k != "median_row"}
    ledger["sentence"] = cost_words.sentence(ledger)
    ledger["train"].update({"flops_per_step": work["train_flops"] / max(1, result.steps), "steps": result.steps,
                            "eval_flops": work["eval_flops"], "sessions": work["sessions"]})
    return ledger


def per_input_flops(model, inputs: torch.Tensor, sizes: np.ndarray, device) -> dict:
    """One prediction's FLOPs over inputs of different sizes: the median, the least and the most, counted on the inputs
    of the median, least and greatest size (a model does more work for a longer input, never less, so these are the
    median and the ends of the FLOPs themselves), and the mean over all inputs, interpolated between those three
    counts by size (each text model here is affine in its ids or tokens, or nearly: attention adds a little more).
    median_row: the input of the median size (the lower middle one), whose time the ledger measures."""
    order = np.argsort(sizes, kind="stable")
    rows = {"min": int(order[0]), "median": int(order[(len(order) - 1) // 2]), "max": int(order[-1])}
    flops = {k: count_inference_flops(model, inputs[i:i + 1].to(device)) for k, i in rows.items()}
    at = [float(sizes[rows[k]]) for k in ("min", "median", "max")]
    mean = float(np.interp(sizes, at, [flops["min"], flops["median"], flops["max"]]).mean()) if at[0] < at[-1] \
        else float(flops["median"])
    return {"median": flops["median"], "min": flops["min"], "max": flops["max"], "mean": mean, "n": len(sizes),
            "median_size": int(sizes[rows["median"]]), "min_size": int(sizes[rows["min"]]),
            "max_size": int(sizes[rows["max"]]), "median_row": rows["median"]}


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
