"""Generation speed with the key/value cache and without it, in the same run, on the same threads.

    python benchmarks/generate_speed.py                       # trains a default-size char GPT first (about a minute)
    python benchmarks/generate_speed.py --model RUN/model     # a language model's artifact
    python benchmarks/generate_speed.py --steps 200 --rounds 9

The model is `glassbox train input.txt --task lm`'s (4 layers, width 128, a context of 64 characters) on
tinyshakespeare, trained --steps updates. Each row generates the same texts with the cache and without, the two runs
taking turns, and prints the median tokens/s of each, their ratio, whether every text was identical, and how many
cached tokens a full pass had to decide (`GPT.cached_token`). The rows:

  at a full context  the tokens at positions 50-63 of the window, the context already read (the cache filled and
                     checked by the text's first two tokens, untimed; the same two drawn without it): tokens/s while
                     each token attends to 50-63 earlier ones
  filling            Generator.samples from a 1-token prompt until the context holds block_size tokens, all counted
  past the window    a prompt of block_size tokens: the window slides at every token, so each costs a full pass either way
  report sample      the LM run's report samples: 200 tokens after 8 (most of them past the window)

It runs the model in the precision generation uses on this CPU (bfloat16 where the CPU computes it natively, as the
default LM asks) and, there, again in float32: what a CPU without native bfloat16 runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as glassbox's CLI does, before torch loads
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from glassbox.infer.generator import Generator  # noqa: E402
from glassbox.models.gpt import KVCache  # noqa: E402
from glassbox.models.precision import native_bf16  # noqa: E402
from glassbox.runtime.threads import cpu_threads  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


def rows(g: Generator, text: str) -> dict:
    """name -> (prompt, new tokens, texts per run), from the corpus's own text."""
    block, tok = g.model.config.block_size, g.tokenizer
    ids = tok.encode(text[:20_000])
    prompt = lambda n: tok.decode(ids[:n])  # noqa: E731
    return {"filling": (prompt(1), block - 1, 2), "past the window": (prompt(block), block, 2),
            "report sample": (prompt(8), 200, 1)}


def full_context(g: Generator, text: str, seed: int, cache: bool) -> tuple[float, torch.Tensor, int]:
    """Seconds for the tokens at positions block_size - 14 .. block_size - 1, after a prompt of block_size - 16 tokens
    and two tokens drawn untimed (with the cache: its first pass and its checked first step); the text; full passes."""
    block = g.model.config.block_size
    idx = torch.tensor([g.tokenizer.encode(text[:20_000])[:block - 16]])
    kv = KVCache.for_model(g.model) if cache else None
    gen = torch.Generator().manual_seed(seed)
    with cpu_threads(g.threads):
        idx = g.model.generate(idx, 2, temperature=0.8, top_k=50, generator=gen, cache=kv)
        start = time.perf_counter()
        idx = g.model.generate(idx, 14, temperature=0.8, top_k=50, generator=gen, cache=kv)
        seconds = time.perf_counter() - start
    return seconds, idx, kv.recomputed if kv else 0


def timed(g: Generator, prompt: str, new: int, texts: int, seed: int) -> tuple[float, list[str], int]:
    """Seconds to draw `texts` texts of `new` tokens, the texts, and the cached tokens a full pass decided."""
    before = g.recomputed
    start = time.perf_counter()
    out = g.samples(prompt, texts, new, temperature=0.8, top_k=50, seed=seed)
    return time.perf_counter() - start, out, g.recomputed - before


def measure(g: Generator, text: str, rounds: int) -> None:
    print(f"{'row':<17} {'uncached tok/s':>14} {'cached tok/s':>12} {'ratio':>6} {'identical':>9} {'full passes':>11}")
    times, out, recomputed = {True: [], False: []}, {True: [], False: []}, 0
    for r in range(rounds * 4):  # 14 tokens a run: more runs
        for cache in ((True, False) if r % 2 else (False, True)):
            seconds, idx, full = full_context(g, text, r, cache)
            times[cache].append(seconds)
            out[cache].append(idx.tolist())
            recomputed += full
    tps = {c: 14 / statistics.median(t) for c, t in times.items()}
    print(f"{'at a full context':<17} {tps[False]:14,.0f} {tps[True]:12,.0f} {tps[True] / tps[False]:5.1f}x "
          f"{'yes' if out[True] == out[False] else 'NO':>9} {recomputed:5d}/{14 * rounds * 4:<5d}", flush=True)
    for name, (prompt, new, texts) in rows(g, text).items():
        times = {True: [], False: []}
        same, recomputed = True, 0
        for r in range(rounds):
            results = {}
            for cache in ((True, False) if r % 2 else (False, True)):  # take turns, so a busy moment hits both
                g.cache = cache
                seconds, out, full = timed(g, prompt, new, texts, seed=r)
                times[cache].append(seconds)
                results[cache] = out
                recomputed += full if cache else 0
            same &= results[True] == results[False]
        tps = {c: new * texts / statistics.median(t) for c, t in times.items()}
        print(f"{name:<17} {tps[False]:14,.0f} {tps[True]:12,.0f} {tps[True] / tps[False]:5.1f}x {'yes' if same else 'NO':>9}"
              f" {recomputed:5d}/{new * texts * rounds:<5d}", flush=True)
    g.cache = True


def train_model(folder: str, steps: int) -> Path:
    out = Path(folder) / "run"
    subprocess.run([sys.executable, "-m", "glassbox", "train", str(CORPUS), "--task", "lm", "--max-steps", str(steps),
                    "--out", str(out), "--quiet", "--force"], check=True, cwd=Path(__file__).resolve().parents[1])
    return out / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a language model's artifact (RUN/model); default: train one")
    parser.add_argument("--steps", type=int, default=200, help="training steps of the model trained here (default 200)")
    parser.add_argument("--rounds", type=int, default=7, help="timed runs of each row, each way (default 7)")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} not found; this benchmark needs tinyshakespeare in ../shared/data")
    text = CORPUS.read_text(encoding="utf-8")[-100_000:]  # prompts from the end of the corpus (its validation text)
    with tempfile.TemporaryDirectory() as folder:
        model = Path(args.model) if args.model else train_model(folder, args.steps)
        g = Generator(model)
        cfg = g.model.config
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
        print(f"{model}: {cfg.n_layer} layers, width {cfg.n_embd}, context {cfg.block_size} tokens, "
              f"{sum(p.numel() for p in g.model.parameters()):,} weights; {g.threads} thread(s); CPU {cpu}, "
              f"native bfloat16: {'yes' if native_bf16(torch.device('cpu')) else 'no'}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; temperature 0.8, top_k 50")
        dtype = g.model.compute_dtype(torch.device("cpu"))
        print(f"\ngeneration as this CPU runs it ({str(dtype).replace('torch.', '')}):")
        measure(g, text, args.rounds)
        if dtype != torch.float32:
            g.model.config.bf16 = False
            print("\nthe same model in float32 (as a CPU without native bfloat16 runs it):")
            measure(g, text, args.rounds)


if __name__ == "__main__":
    main()
