"""Language-model training speed on this CPU: a char-level GPT on tinyshakespeare.

    python benchmarks/lm_throughput.py --quick        # 100 steps: speed only, under a minute
    python benchmarks/lm_throughput.py                # 2000 steps: speed and the final val loss
    python benchmarks/lm_throughput.py --quick --sweep   # every speed variant in VARIANTS, as a table

Each run also trains the baseline (a loop like nanoGPT's) in the same process and prints the ratio, then
times the plain command a user types, `glassbox train input.txt --task lm` (its defaults are nanoGPT's
settings below; with --quick or --steps it adds --max-steps), against the same baseline.

Anchor: nanoGPT's CPU run of config/train_shakespeare_char.py (the settings below) measured on
this machine at 16-17k tokens/s (45-48 ms/step, fp32, eager), val loss ~1.886 after 2000 steps.
Goals: `glassbox train --task lm` at least 1.2x the nanoGPT-style loop's tokens/s (whole runs, first steps
included) with val loss <= 1.90; glassbox.fit within 3% of the plain loop with the same flags and threads.

A variant that computes in bfloat16 (autocast, or oneDNN's bf16 matmuls) runs only where the CPU computes bfloat16
natively, the decision training makes (glassbox/models/precision.py): elsewhere it is emulated, many times slower,
and the row says it was skipped.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

# As glassbox's CLI does, before torch loads: idle OpenMP threads sleep instead of spinning. On a
# busy machine spinning threads make 2-thread steps 5-50x slower; set OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from glassbox.data.corpus import RandomWindows, load_prepared, prepare_corpus, val_windows  # noqa: E402
from glassbox.config import TrainConfig  # noqa: E402
from glassbox.models.gpt import GPT, GPTConfig  # noqa: E402
from glassbox.models.precision import compute_dtype  # noqa: E402
from glassbox.train.loop import fit  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"

# --- nanoGPT's shakespeare_char config with its README's CPU overrides
DEFAULTS = dict(
    n_layer=4,  # Transformer blocks
    n_head=4,  # attention heads
    n_embd=128,  # model width
    block_size=64,  # context length in characters
    batch_size=12,  # windows per step: 12 * 64 = 768 tokens a step
    dropout=0.0,  # no dropout at this size
    learning_rate=1e-3,  # peak learning rate
    min_lr=1e-4,  # the cosine decay ends here
    warmup_iters=100,  # linear warm-up steps
    lr_decay_iters=2000,  # the cosine decay lasts this many steps
    weight_decay=0.1,  # AdamW decay on matrices and embeddings (not biases or LayerNorms)
    beta1=0.9,
    beta2=0.99,  # a little higher than 0.95, as tokens per step are few
    grad_clip=1.0,  # clip the gradient norm at this value
    seed=1337,
)
NANOGPT_TOKENS_PER_S = 16_500  # nanoGPT, fp32 eager, measured on this machine (not rerun here)
NANOGPT_VAL_LOSS = 1.886

# Speed variants: name -> flags for train(). The first is the baseline every ratio is against:
# nanoGPT's own loop (fp32, eager, foreach AdamW, loss.item() every step with --log_interval=1).
VARIANTS = {
    "nanoGPT-style loop (baseline)": dict(fused=False, item_every_step=True),
    "fp32, no loss.item() each step": dict(fused=False),
    "+ fused AdamW": dict(),
    "+ fused AdamW, 1 thread": dict(threads=1),
    "+ fp32 matmuls in bf16 (oneDNN)": dict(matmul_bf16=True),
    "+ bf16 autocast": dict(bf16=True),
    "+ torch.compile": dict(compile=True),
    "+ torch.compile + bf16 autocast": dict(compile=True, bf16=True),
}


def matmul_peak(dtype=torch.float32, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the best of `repeats` n x n matmuls: what this CPU can do at best."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def get_lr(step: int, c: dict) -> float:
    """Linear warm-up, then cosine decay from learning_rate to min_lr (nanoGPT's schedule)."""
    if step < c["warmup_iters"]:
        return c["learning_rate"] * (step + 1) / (c["warmup_iters"] + 1)
    if step > c["lr_decay_iters"]:
        return c["min_lr"]
    ratio = (step - c["warmup_iters"]) / (c["lr_decay_iters"] - c["warmup_iters"])
    return c["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c["learning_rate"] - c["min_lr"])


def make_optimizer(model: GPT, c: dict, fused: bool) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": c["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=c["learning_rate"], betas=(c["beta1"], c["beta2"]), fused=fused)


@torch.no_grad()
def evaluate(model, X, Y, autocast, batch_size: int = 256) -> float:
    """Mean cross-entropy over every predicted token of the validation windows."""
    model.eval()
    total = 0.0
    for xb, yb in zip(X.split(batch_size), Y.split(batch_size)):
        with autocast:
            logits = model(xb)
        total += F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(), reduction="sum").item()
    model.train()
    return total / Y.numel()


def train(steps: int, data: tuple, threads: int = 2, fused: bool = True, bf16: bool = False,
          matmul_bf16: bool = False, compile: bool = False, item_every_step: bool = False,
          evaluate_at_end: bool = True, c: dict = DEFAULTS) -> dict:
    """The plain loop: lr, batch, forward, loss, backward, clip, step, zero_grad. Returns timings."""
    torch.set_num_threads(threads)
    torch.backends.mkldnn.matmul.fp32_precision = "bf16" if matmul_bf16 else "none"
    torch.manual_seed(c["seed"])
    tok, train_ids, val_ids = data
    cfg = GPTConfig(tok.vocab_size, c["block_size"], c["n_layer"], c["n_head"], c["n_embd"], c["dropout"])
    model = GPT(cfg)
    step_model = torch.compile(model) if compile else model
    optimizer = make_optimizer(model, c, fused)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    batches = RandomWindows(train_ids, c["block_size"], c["batch_size"], seed=c["seed"])
    times, losses = [], []
    for step in range(steps):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step, c)
        x, y = batches.next()
        with autocast:
            logits = step_model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if item_every_step or step % 100 == 0 or step == steps - 1:
            losses.append((step, loss.item()))
        times.append(time.perf_counter() - start)
    warm = times[10:] if len(times) > 20 else times  # the first steps allocate (and compile)
    ms = 1000 * statistics.median(warm)
    result = {
        "ms_per_step": ms,
        "tokens_per_s": c["batch_size"] * c["block_size"] / (ms / 1000),
        "first_step_s": times[0],  # includes compiling with --compile
        "tokens_per_s_all_steps": c["batch_size"] * c["block_size"] * steps / sum(times),  # first steps too
        "train_loss": losses[-1][1],
        "flops_per_token": model.flops_per_token(),
    }
    if evaluate_at_end:
        X, Y = val_windows(val_ids, c["block_size"])
        result["val_loss"] = evaluate(model, X, Y, autocast)
    return result


def train_with_glassbox_loop(steps: int, data: tuple, threads: int = 2, fused: bool = True, bf16: bool = False,
                             matmul_bf16: bool = False, compile: bool = False, item_every_step: bool = False,
                             evaluate_at_end: bool = True, c: dict = DEFAULTS) -> dict | None:
    """The same model, schedule and batches through glassbox.fit (what `glassbox train --task lm` runs).

    The loop's own choices stand: fused AdamW where torch has it, the loss read once per evaluation,
    bfloat16 compute when the model asks for it (GPTConfig.bf16, on where the CPU has it natively).
    Returns None for variants the loop does not offer (foreach AdamW, bf16 matmuls inside fp32)."""
    if not fused or matmul_bf16 or item_every_step:
        return None
    torch.set_num_threads(threads)
    torch.backends.mkldnn.matmul.fp32_precision = "none"
    tok, train_ids, val_ids = data
    torch.manual_seed(c["seed"])
    model = GPT(GPTConfig(tok.vocab_size, c["block_size"], c["n_layer"], c["n_head"], c["n_embd"], c["dropout"], bf16=bf16))
    cfg = TrainConfig(task="lm", max_steps=steps, batch_size=c["batch_size"], lr=c["learning_rate"], min_lr=c["min_lr"],
                      warmup_steps=c["warmup_iters"], weight_decay=c["weight_decay"], grad_clip=c["grad_clip"],
                      seed=c["seed"], eval_every=steps, patience=0, compile=compile, quiet=True, device="cpu",
                      threads=threads)  # the plain loop's count: the loops compare, not the thread choice
    batches = RandomWindows(train_ids, c["block_size"], c["batch_size"], seed=c["seed"])
    result = fit(model, batches, val_windows(val_ids, c["block_size"], max_windows=48), config=cfg,
                 n_train=len(train_ids) // c["block_size"])
    seconds = result.train_seconds  # every step, the first ones (and compiling) included, and one small evaluation
    out = {"ms_per_step": 1000 * seconds / steps, "tokens_per_s": steps * c["batch_size"] * c["block_size"] / seconds,
           "first_step_s": float("nan"), "train_loss": result.history[-1]["train_loss"],
           "flops_per_token": result.model.flops_per_token()}
    if evaluate_at_end:
        X, Y = val_windows(val_ids, c["block_size"])
        out["val_loss"] = evaluate(result.model, X, Y, nullcontext())
    return out


def needs_native_bf16(variant: dict) -> bool:
    """Does this variant compute in bfloat16 (autocast, or fp32 matmuls done in bf16 by oneDNN)?"""
    return bool(variant.get("bf16") or variant.get("matmul_bf16"))


def report(name: str, r: dict, baseline: dict, peak: float) -> str:
    flops = r["flops_per_token"] * r["tokens_per_s"]
    val = f"{r['val_loss']:.3f}" if "val_loss" in r else "-"
    return (f"{name:<36} {r['ms_per_step']:7.1f} {r['tokens_per_s']:9,.0f} {r['tokens_per_s'] / baseline['tokens_per_s']:6.2f}x"
            f" {flops / 1e9:7.1f} {100 * flops / peak:6.1f}% {r['first_step_s']:6.1f} {val:>8} {os.getloadavg()[0]:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--quick", action="store_true", help="100 steps: speed only, no val loss")
    parser.add_argument("--sweep", action="store_true", help="run every variant in VARIANTS")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--matmul-bf16", action="store_true", help="oneDNN runs fp32 matmuls in bf16")
    parser.add_argument("--no-fused", action="store_true", help="foreach AdamW instead of fused")
    args = parser.parse_args()
    steps = 100 if args.quick else args.steps
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} not found; this benchmark needs tinyshakespeare in ../shared/data")

    with tempfile.TemporaryDirectory() as folder:
        prepare_corpus(CORPUS, folder, tokenizer="char", block_size=DEFAULTS["block_size"])
        tok, train_ids, val_ids, _ = load_prepared(folder)
        data = (tok, train_ids, val_ids)
        torch.set_num_threads(args.threads)
        peak = matmul_peak(torch.float32)
        native = compute_dtype(True, torch.device("cpu")) == torch.bfloat16  # as training decides (models/precision.py)
        bf16_peak = f"bf16 {matmul_peak(torch.bfloat16) / 1e9:.0f} GFLOP/s" if native else "no native bf16"
        print(f"{os.cpu_count()} cores, {args.threads} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s, "
              f"{bf16_peak}; {steps} steps")
        print(f"nanoGPT on this machine: ~{NANOGPT_TOKENS_PER_S:,} tokens/s, val loss {NANOGPT_VAL_LOSS} at 2000 steps."
              " A load average above the core count means other work shares the CPU: rerun.")
        print(f"{'variant':<36} {'ms/step':>7} {'tokens/s':>9} {'ratio':>7} {'GFLOP/s':>7} {'%fp32pk':>7}"
              f" {'1st s':>6} {'val loss':>8} {'load':>5}")
        runs = {name: {"threads": args.threads, **v} for name, v in VARIANTS.items()}
        if not args.sweep:
            chosen = dict(threads=args.threads, compile=args.compile, bf16=not args.fp32 and native,
                          matmul_bf16=args.matmul_bf16, fused=not args.no_fused)
            label = "plain loop, chosen flags" + ("" if native or args.fp32 else " (fp32)")  # no bf16 on this CPU
            runs = {name: v for name, v in list(runs.items())[:1]} | {label: chosen}
        baseline = None
        for name, variant in runs.items():
            if needs_native_bf16(variant) and not native:
                print(f"{name:<36} skipped: it computes in bfloat16, which this CPU does not do natively (no avx512_bf16 "
                      f"or amx_bf16; glassbox trains in float32 there, models/precision.py)", flush=True)
                continue
            result = train(steps, data, evaluate_at_end=not args.quick, **variant)
            baseline = baseline or result
            print(report(name, result, baseline, peak), flush=True)
            glassbox = train_with_glassbox_loop(steps, data, evaluate_at_end=not args.quick, **variant)
            if glassbox is not None:
                # the ratio of whole-run throughputs: glassbox's time covers every step, as this one does
                whole = {"tokens_per_s": result["tokens_per_s_all_steps"]}
                print(report("  the same through glassbox.fit", glassbox, whole, peak), flush=True)
        command = plain_command(steps if steps != DEFAULTS_STEPS else None, baseline["flops_per_token"])
        whole = {"tokens_per_s": baseline["tokens_per_s_all_steps"]}
        print(report("glassbox train --task lm (as typed)", command, whole, peak), flush=True)
        print(f"  (ratio against the baseline's whole run, {whole['tokens_per_s']:,.0f} tokens/s; the command chose "
              f"{command['threads']} thread(s): {command['thread_how']})")


DEFAULTS_STEPS = 2000  # `glassbox train --task lm` trains this many steps unless told otherwise


def plain_command(max_steps: int | None, flops_per_token: int) -> dict:
    """`glassbox train CORPUS --task lm` as a user types it, in its own process; its training stage's
    tokens/s from summary.json (every step, its evaluations included) and its final validation loss. The model
    is the baseline's (the same defaults), so its FLOPs per token are too."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as out:
        extra = ["--max-steps", str(max_steps)] if max_steps else []
        subprocess.run([sys.executable, "-m", "glassbox", "train", str(CORPUS), "--task", "lm", *extra, "--out",
                        f"{out}/run", "--quiet"], check=True, cwd=Path(__file__).resolve().parents[1])
        summary = json.loads(Path(out, "run", "summary.json").read_text())
    tokens_per_s = summary["tokens_per_second"]
    tokens_per_step = DEFAULTS["batch_size"] * DEFAULTS["block_size"]
    return {"ms_per_step": 1000 * tokens_per_step / tokens_per_s, "tokens_per_s": tokens_per_s,
            "first_step_s": float("nan"), "val_loss": summary["val_loss"],
            "flops_per_token": flops_per_token, "threads": summary["threads"]["threads"],
            "thread_how": summary["threads"]["how"]}


if __name__ == "__main__":
    main()
