"""How many CPU threads a training run uses, chosen by timing the run's own step at each count.

Whether a second thread helps depends on the model and on the machine right now: on 2 quiet cores the
default GPT's step ran 1.19x faster on 2 threads than on 1, the digits CNN's and the fastText model's ran
about 2x faster on 1 (waking and joining threads costs more than the small operations save), and with
another process on the machine one thread wins for all of them. So no FLOP threshold decides: before the
first update, a copy of the model takes a few real-sized steps (forward, backward, optimizer) on a batch of
validation inputs at 1 thread and at torch's count, and the faster count trains. The copy leaves the model,
the optimizer, the batch order and the random number generators exactly as they were; the loss it backs up is
the mean of the outputs (a loss function costs little next to the model, and the user's own is never called
outside training, where it may count its calls).

Threads change how sums are split, so the same seed on 1 and on 2 threads gives (slightly) different weights:
`--threads N` makes a run repeatable on any machine; a resumed run keeps the count it started with."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from glassbox.runtime.threads import time_thread_counts
from glassbox.train.evaluation_plan import eval_threads


@dataclass
class LoopThreads:
    """The CPU threads of one `fit`: its training steps', its evaluations', and how the first count was chosen."""
    training: int
    evaluation: int
    choice: dict  # choose_threads' answer (FitResult.thread_choice)


def loop_threads(model: nn.Module, val: tuple, batch_size: int, make_optimizer, requested: int | None,
                 resumed: int | None, rows: int, device: torch.device, say) -> LoopThreads:
    """On a CPU, training's count is timed on this model's step (`choose_threads`; `say` tells how, when timed)
    and evaluations follow the prediction rule (train/evaluation_plan.py); a GPU trains on torch's count."""
    on_gpu = device.type != "cpu"
    choice = {"threads": torch.get_num_threads(), "how": "a GPU trains", "seconds_per_step": None}
    if not on_gpu:
        choice = choose_threads(model, val, batch_size, make_optimizer, requested, resumed)
        if choice["seconds_per_step"]:
            say(describe(choice))
    evaluation = eval_threads(model, val[0], rows, choice["threads"], requested, on_gpu)  # the same rule on a resume
    return LoopThreads(choice["threads"], evaluation, choice)


def choose_threads(model: nn.Module, val: tuple, batch_size: int, make_optimizer, requested: int | None,
                   resumed: int | None = None) -> dict:
    """{"threads": n, "how": ..., "seconds_per_step": {count: median s} or None} for training `model` on a CPU.

    requested: the user's --threads (used as given); resumed: the count the run started with."""
    available = torch.get_num_threads()
    if requested:
        return {"threads": int(requested), "how": "given (--threads)", "seconds_per_step": None}
    if resumed:
        return {"threads": int(resumed), "how": "the count this run started with (resumed)", "seconds_per_step": None}
    if available == 1 or not torch.is_tensor(val[0]) or len(val[0]) == 0:
        return {"threads": available, "how": "torch's count (nothing to choose between)", "seconds_per_step": None}
    x = _batch(val[0], batch_size)
    twin = copy.deepcopy(model).train()
    optimizer = make_optimizer(twin)
    rng = torch.get_rng_state()

    def step():
        twin(x).float().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    try:
        seconds = time_thread_counts(step, (1, available))
    finally:
        torch.set_rng_state(rng)  # dropout in the copy drew random numbers: the run's stream is as before
    best = min(seconds, key=seconds.get)
    return {"threads": best, "how": "timed on this run's step", "seconds_per_step": seconds}


def _batch(x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A training-sized batch of validation inputs (repeated if there are fewer); the batch order of training
    is not touched."""
    reps = -(-batch_size // len(x))
    if reps > 1:
        x = x.repeat(reps, *[1] * (x.dim() - 1))
    return x[:batch_size]


def describe(choice: dict) -> str:
    """One line for the terminal: the count and why."""
    timed = choice.get("seconds_per_step")
    if not timed:
        return f"CPU threads: {choice['threads']}, {choice['how']}"
    times = ", ".join(f"{c} thread{'s' if c > 1 else ''} {s * 1e3:.1f} ms" for c, s in sorted(timed.items()))
    return (f"CPU threads: {choice['threads']}, the faster for this model on this machine now (a training step: "
            f"{times}; --threads N fixes the count)")
