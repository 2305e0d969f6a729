"""What does glassbox's loop cost over a minimal hand-written PyTorch loop?

Same model, data, seed, optimizer, schedule, clipping, number of steps and CPU threads; one validation
pass at the end for both. Repeats alternate between the two; prints the median time ratio (goal <= 1.03).
Then, apart, what glassbox's own thread choice (train/thread_choice.py: it times the model's step on 1 thread
and on torch's count, then trains on the faster) does to the same run: fit choosing against fit on the loop's count.

    python benchmarks/overhead.py [--steps 600] [--repeats 7] [--threads N]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

import glassbox
from glassbox.config import TrainConfig


def data():
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16
    y = torch.tensor(d.target)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10))


def hand_loop(steps: int, batch_size: int, lr: float, seed: int) -> float:
    (xt, yt), (xv, yv) = data()
    model = make_model(seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    # the fused AdamW kernel, as glassbox.fit uses: the ratio measures the loop, not the optimizer kernel
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}], lr=lr, fused=True)
    warmup, min_lr = max(1, steps // 50), lr / 10
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(len(yt), generator=g), 0
    t0 = time.perf_counter()
    for step in range(steps):
        cur = lr * (step + 1) / warmup if step < warmup else \
            min_lr + 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))) * (lr - min_lr)
        for group in opt.param_groups:
            group["lr"] = cur
        if pos + batch_size > len(yt):
            perm, pos = torch.randperm(len(yt), generator=g), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        F.cross_entropy(model(xv), yv).item()
    return time.perf_counter() - t0


def glassbox_fit(steps: int, batch_size: int, lr: float, seed: int, threads: int | None) -> tuple[float, int]:
    """Seconds of the whole fit call and the threads it trained on; threads=None lets fit choose (its timing of
    the counts included in the seconds)."""
    train, val = data()
    model = make_model(seed)
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, seed=seed, eval_every=steps, quiet=True, patience=0,
                      threads=threads)
    t0 = time.perf_counter()
    result = glassbox.fit(model, train, val, config=cfg)
    return time.perf_counter() - t0, result.threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for both loops")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hand_loop(50, args.batch_size, 1e-3, 0)  # warm up both paths
    glassbox_fit(50, args.batch_size, 1e-3, 0, args.threads)
    hand, ours, chosen, picked = [], [], [], []
    for r in range(args.repeats):
        hand.append(hand_loop(args.steps, args.batch_size, 1e-3, r))
        ours.append(glassbox_fit(args.steps, args.batch_size, 1e-3, r, args.threads)[0])
        seconds, threads = glassbox_fit(args.steps, args.batch_size, 1e-3, r, None)
        chosen.append(seconds)
        picked.append(threads)
        print(f"repeat {r}: hand-written {hand[-1]:.3f} s, glassbox.fit {ours[-1]:.3f} s, ratio {ours[-1] / hand[-1]:.3f}; "
              f"fit choosing its threads {chosen[-1]:.3f} s (picked {picked[-1]})")
    ratios = [o / h for o, h in zip(ours, hand)]
    print(f"steps {args.steps}, batch {args.batch_size}, torch {torch.__version__}, threads {args.threads} for both")
    print(f"median hand-written {statistics.median(hand):.3f} s, median glassbox.fit {statistics.median(ours):.3f} s")
    print(f"median ratio glassbox.fit / hand-written: {statistics.median(ratios):.3f} (goal <= 1.03)")
    print(f"thread choice, apart: fit picked {', '.join(map(str, picked))} thread(s) over the repeats: median "
          f"{statistics.median(chosen):.3f} s, "
          f"{statistics.median(c / o for c, o in zip(chosen, ours)):.3f}x its time on {args.threads}")


if __name__ == "__main__":
    main()
