"""How many CPU threads training and inference use.

A small model's step is hundreds of small operations; splitting each across threads can cost more in
waking and joining them than it saves, the more so because the CLI lets idle threads sleep
(OMP_WAIT_POLICY=PASSIVE, see cli/__init__.py), and whether it pays also depends on what else the machine
is running. Training times its own step at each count (`time_thread_counts`, used by
glassbox/train/thread_choice.py). Predictions of one example at a time are always tiny: below
SMALL_FORWARD_FLOPS per forward pass they run on one thread, anything larger keeps torch's count.

    n = threads_for(model, x, batch_size=64, requested=None)   # requested: the user's --threads
    with cpu_threads(n):
        ...  # predict
"""
from __future__ import annotations

import contextlib
import statistics
import time

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

SMALL_FORWARD_FLOPS = 2e9  # forward FLOPs of one batch below which one thread is faster


@torch.no_grad()
def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs torch's counter sees in one forward pass of batch x (eval mode; nothing in the model changes)."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def threads_for_flops(forward_flops_per_batch: float) -> int:
    """1 for a forward pass below SMALL_FORWARD_FLOPS, else torch's thread count."""
    return 1 if forward_flops_per_batch < SMALL_FORWARD_FLOPS else torch.get_num_threads()


def threads_for(model: nn.Module, x, batch_size: int, requested: int | None = None) -> int:
    """Threads to run `model` with on a CPU: `requested` if given, else 1 when a forward pass over batch_size
    examples of x (inputs, e.g. the validation set's) is small, else torch's count."""
    if requested:
        return int(requested)
    available = torch.get_num_threads()
    if available == 1 or not torch.is_tensor(x) or len(x) == 0:  # inputs it cannot slice: leave torch's count
        return available
    return threads_for_flops(forward_flops(model, x[:batch_size]))


def generation_threads(model: nn.Module, flops_per_context: float | None = None) -> int:
    """Threads for generating one sequence on a CPU: the rule applied to one full context (the default
    GPT: 1 thread, 300 tokens in 0.5-0.6 s vs 1.9 s on 2). flops_per_context: the artifact's count of
    one forward pass, when it has one (counting takes about a second the first time in a process)."""
    block = getattr(getattr(model, "config", None), "block_size", None)
    if next(model.parameters()).device.type != "cpu":
        return torch.get_num_threads()
    if flops_per_context:
        return threads_for_flops(flops_per_context)
    return threads_for(model, torch.zeros(1, block, dtype=torch.long), 1) if block else torch.get_num_threads()


def time_thread_counts(step, counts: tuple[int, ...], repeats: int = 5, budget_s: float = 1.5) -> dict:
    """Median seconds of `step()` at each thread count in `counts`. The counts take turns, step by step, so
    that a change in the machine's load (another process waking up) hits each alike; one untimed step at each
    count first (first calls allocate). Stops early, after at least 2 rounds, once budget_s is spent."""
    before = torch.get_num_threads()
    times: dict[int, list[float]] = {c: [] for c in counts}
    try:
        for c in counts:
            torch.set_num_threads(c)
            step()
        start = time.perf_counter()
        for round_ in range(repeats):
            for c in counts:
                torch.set_num_threads(c)
                t = time.perf_counter()
                step()
                times[c].append(time.perf_counter() - t)
            if round_ >= 1 and time.perf_counter() - start > budget_s:
                break
    finally:
        torch.set_num_threads(before)
    return {c: statistics.median(v) for c, v in times.items()}


@contextlib.contextmanager
def cpu_threads(n: int):
    """torch uses n intra-op threads inside the block, and its earlier count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
