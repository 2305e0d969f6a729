"""Language-model training speed on one GPU: nanoGPT's shakespeare-char GPU configuration in bfloat16.

    python benchmarks/lm_gpu.py                           # 300 steps: a plain loop, then glassbox.fit
    python benchmarks/lm_gpu.py --compile                 # the same with torch.compile
    python benchmarks/lm_gpu.py --device cpu --small --steps 20   # smoke check of the script without a GPU

Model and batch as nanoGPT's config/train_shakespeare_char.py: 6 layers, 6 heads, 384 wide, block 256,
batch 64 (16,384 tokens a step), dropout 0.2, AdamW 1e-3 (betas 0.9/0.99, weight decay 0.1), warm-up
100 steps then cosine decay, clipping at 1.0. Both runs compute in bfloat16 under autocast
(GPTConfig.bf16) with float32 weights and fused AdamW. Prints tokens/s, the achieved FLOP/s against
this GPU's measured bfloat16 matmul peak (MFU, with the 6N + attention FLOPs per token of
GPT.flops_per_token), and the ratio glassbox.fit / plain loop over the whole run.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from glassbox.config import TrainConfig  # noqa: E402
from glassbox.data.corpus import RandomWindows, load_prepared, prepare_corpus, val_windows  # noqa: E402
from glassbox.evaluate.peak import measure_matmul_peak  # noqa: E402
from glassbox.models.gpt import GPT, GPTConfig  # noqa: E402
from glassbox.train.loop import fit  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"
GPU = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2)
SMALL = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=8, dropout=0.2)
TRAIN = dict(lr=1e-3, min_lr=1e-4, warmup_steps=100, weight_decay=0.1, grad_clip=1.0, seed=1337)


def lr_at(step: int, steps: int) -> float:
    if step < TRAIN["warmup_steps"]:
        return TRAIN["lr"] * (step + 1) / TRAIN["warmup_steps"]
    ratio = (step - TRAIN["warmup_steps"]) / max(1, steps - TRAIN["warmup_steps"])
    return TRAIN["min_lr"] + 0.5 * (1 + math.cos(math.pi * min(1.0, ratio))) * (TRAIN["lr"] - TRAIN["min_lr"])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(model: GPT, batches: RandomWindows, steps: int, device: torch.device, compile: bool) -> float:
    """lr, batch, forward, loss, backward, clip, step, zero_grad; wall seconds for every step."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]}, {"params": other, "weight_decay": 0.0}],
                            lr=TRAIN["lr"], betas=(0.9, 0.99), fused=True)
    step_model = torch.compile(model) if compile else model
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps)
        x, y = batches.next()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(step_model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training forward pass")
    ap.add_argument("--small", action="store_true", help="a tiny model: only to check the script runs")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here; pass --device cpu --small to check the script itself")
    shape = SMALL if args.small else GPU
    torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers (outside autocast) on tensor cores
    peak = measure_matmul_peak(device, torch.bfloat16, refresh=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}; measured bf16 matmul peak {peak / 1e12:.1f} TFLOP/s; {args.steps} steps; "
          f"model {shape}; compile={args.compile}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        prepare_corpus(CORPUS, folder, tokenizer="char", block_size=shape["block_size"])
        tok, train_ids, val_ids, _ = load_prepared(folder)
        gpt = GPTConfig(tok.vocab_size, shape["block_size"], shape["n_layer"], shape["n_head"], shape["n_embd"],
                        shape["dropout"], bf16=True)
        tokens_per_step = shape["batch_size"] * shape["block_size"]

        # warm-up on a throwaway model: library start-up (CUDA context, cuBLAS, kernels) is charged to neither run
        plain_loop(GPT(gpt).to(device), RandomWindows(train_ids, shape["block_size"], shape["batch_size"]), 10, device, False)

        torch.manual_seed(TRAIN["seed"])
        model = GPT(gpt).to(device)
        flops_per_token = model.flops_per_token()
        batches = RandomWindows(train_ids, shape["block_size"], shape["batch_size"], seed=TRAIN["seed"])
        plain_s = plain_loop(model, batches, args.steps, device, args.compile)

        torch.manual_seed(TRAIN["seed"])
        model = GPT(gpt)
        cfg = TrainConfig(task="lm", max_steps=args.steps, batch_size=shape["batch_size"], eval_every=args.steps, patience=0,
                          compile=args.compile, quiet=True, device=str(device), **TRAIN)
        batches = RandomWindows(train_ids, shape["block_size"], shape["batch_size"], seed=TRAIN["seed"])
        result = fit(model, batches, val_windows(val_ids, shape["block_size"], max_windows=64), config=cfg,
                     n_train=len(train_ids) // shape["block_size"])
        glassbox_s = result.train_seconds  # every step and one small evaluation at the end

    print(f"{'run':<24} {'seconds':>8} {'tokens/s':>11} {'TFLOP/s':>8} {'MFU':>6}")
    for label, seconds in (("plain loop", plain_s), ("glassbox.fit", glassbox_s)):
        tps = args.steps * tokens_per_step / seconds
        print(f"{label:<24} {seconds:8.1f} {tps:11,.0f} {tps * flops_per_token / 1e12:8.2f} {tps * flops_per_token / peak:6.1%}")
    print(f"time ratio glassbox.fit / plain loop: {glassbox_s / plain_s:.3f} (whole runs, first steps included); "
          f"glassbox's validation loss after {args.steps} steps: {result.best_val_loss:.3f}")


if __name__ == "__main__":
    main()
