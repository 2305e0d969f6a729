"""How the loop's evaluations run: how many validation rows go through the model at once, and on how many CPU
threads. Evaluation changes no weight, so neither choice touches what the model learns; they only decide how
long each of a run's evaluations takes.

Rows: four training batches at a time, and for token sequences (language models) at least EVAL_TOKENS tokens:
the default GPT trains on 12 windows of 64 tokens, and 48 windows at a time left its 256 validation windows 1.6x
slower to score than 128 at a time (0.44 s vs 0.28 s on one thread), an evaluation costing as much as 9 training
steps. Threads: a training step is timed at 1 thread and at torch's count (thread_choice.py); a forward pass over
a batch this size follows the rule predictions follow (runtime/threads.py: torch's count from 2 GFLOP), which
for the GPT's evaluation means 2 threads where its step trains faster on 1. A count the user gave (--threads)
is used for both."""
from __future__ import annotations

import torch
import torch.nn as nn

from glassbox.runtime.threads import threads_for

EVAL_TOKENS = 8192  # token rows per evaluation batch: at least this many tokens (64-token windows: 128 rows)


def eval_rows(batch_size: int, x) -> int:
    """Validation rows per forward pass: 4 training batches, and for token-id sequences at least EVAL_TOKENS
    tokens (never more rows than that needs, so long sequences keep 4 batches: memory grows with length)."""
    rows = 4 * batch_size
    if torch.is_tensor(x) and x.dim() == 2 and not x.is_floating_point() and x.size(1) > 0:
        rows = max(rows, -(-EVAL_TOKENS // x.size(1)))
    return rows


def eval_threads(model: nn.Module, x, rows: int, training_threads: int, requested: int | None, on_gpu: bool) -> int:
    """CPU threads for the run's evaluations: the user's --threads if given; else the prediction rule on one
    evaluation batch (torch's count from 2 GFLOP a forward pass, else 1)."""
    if on_gpu:
        return training_threads
    return int(requested) if requested else threads_for(model, x, rows)
