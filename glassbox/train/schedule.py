"""Learning rate: linear warm-up from 0 to the peak, then cosine decay to min_lr."""
import math


def lr_at(step: int, lr: float, warmup: int, total: int, min_lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)
