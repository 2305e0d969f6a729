"""How many CPU threads training (and inference) use.

A small model's step is hundreds of small operations; splitting each across threads costs more in
waking and joining them than it saves, the more so because the CLI lets idle threads sleep
(OMP_WAIT_POLICY=PASSIVE, see cli.py). On 2 cores, training on 2 threads vs 1 took: the SMS fastText
model 5.7 s vs 2.3 s, the Adult MLP 8.2 s vs 3.1 s, the digits CNN 6.6 s vs 3.2 s, the default GPT
(about 1.3 GFLOP per forward batch) 8.6 s vs 6.8 s. A large model's matrix products split well (a
1024-wide matmul runs 1.9x faster on 2 threads). So unless the user says otherwise, a step whose
forward pass is below SMALL_FORWARD_FLOPS trains on one thread, and anything larger keeps torch's
thread count. docs/benchmarks.md has the table.

    n = threads_for(model, x_val, batch_size=64, requested=None)   # requested: the user's --threads
    with cpu_threads(n):
        ...  # train
"""
from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def cpu_threads(n: int):
    """torch uses n intra-op threads inside the block, and its earlier count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
