"""glassbox on a CUDA GPU, checked and measured by one command, sized to finish in under 8 minutes on one H100.

    python benchmarks/gpu_check.py                    # a CUDA machine: prints the table, writes gpu_check.json
    python benchmarks/gpu_check.py --smoke            # anywhere: tiny shapes, the CPU, gloo: checks the script

1. gpt: nanoGPT's GPT-2 small shape (12 layers, 12 heads, 768 wide, context 1024, GPT-2's vocabulary padded to
   50304; batch 12 sequences of 1024 tokens) on tinyshakespeare's characters, in bfloat16 autocast, --gpt-steps steps
   each: a plain PyTorch loop as nanoGPT's train.py writes it (lr, batch, forward, loss, backward, clip, step,
   zero_grad) and glassbox.fit, each eager and with torch.compile. Tokens/s over the second half of each run (the
   first half holds compilation and warm-up), MFU against this GPU's measured bf16 matmul peak with the
   6N + 12 L C T FLOPs per token of GPT.flops_per_token, and the ratio glassbox / plain loop.
2. cnn: `glassbox train` on the cats vs dogs photos on the GPU: the whole run (decoding, audit, training,
   calibration, export, report), its test accuracy, training examples/s and wall time.
3. torchrun: a 1-GPU torchrun run of the built-in digits with NCCL (glassbox joins a process group under torchrun
   even for one process) and the shuffled-label control (trained by rank 0 alone once the group is left), stopped
   by SIGTERM to the launcher at a checkpoint, then resumed under torchrun to its end.
4. gpu->cpu: a copy of that stopped run resumed in this process with --device cpu.

Every part runs even when an earlier one fails; the table says which checks passed, the JSON (--json) holds every
figure, and the exit code is 1 when a check failed. --smoke runs the same code on the CPU with tiny shapes, gloo
for the process group (two processes, as `torchrun --nproc_per_node 2` on one machine) and torch.compile's eager
backend (compiling for real takes minutes on a CPU): tests/test_gpu_check.py runs it, so that the script runs the
first time it meets a GPU.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as glassbox's CLI does, before torch loads
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "benchmarks"))
from glassbox.config import TrainConfig  # noqa: E402
from glassbox.data.corpus import RandomWindows, load_prepared, prepare_corpus, val_windows  # noqa: E402
from glassbox.evaluate.peak import measure_matmul_peak  # noqa: E402
from glassbox.models.gpt import GPT, GPTConfig  # noqa: E402
from glassbox.run.train.start import train  # noqa: E402
from glassbox.train.loop import fit  # noqa: E402

# ../shared/data beside the checkout (GLASSBOX_SHARED_DATA for a checkout elsewhere); without tinyshakespeare the GPT
# trains on random tokens (the same speed), without the cats vs dogs photos that part fails and the others run
DATA = Path(os.environ.get("GLASSBOX_SHARED_DATA") or ROOT.parent / "shared" / "data")
CORPUS = DATA / "tinyshakespeare" / "input.txt"
# nanoGPT's config/train_gpt2.py shape; `batch_size` sequences a step (nanoGPT's micro-batch)
GPT_SHAPE = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304, batch_size=12)
SMOKE_GPT_SHAPE = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=256, batch_size=4)
# nanoGPT's optimizer settings (AdamW, betas 0.9/0.95 there, 0.9/0.99 in glassbox's language models for both runs
# here), its learning rate and decay to a tenth; warm-up shortened to the run
TRAIN = dict(lr=6e-4, min_lr=6e-5, weight_decay=0.1, grad_clip=1.0, seed=1337)
# the torchrun part: the built-in digits on `nproc` processes, a checkpoint every `every` steps, stopped once one at
# `stop_at` or later is written (the run is long enough that the stop lands before its end); the run resumed on the
# CPU ends within `tolerance` of its test accuracy. --smoke: 48 of the digits as a table, too few for the audit's
# fold models (the audit's other checks run), on 2 processes
TORCHRUN = dict(nproc=1, steps=600, every=25, stop_at=100, batch_size=128, tolerance=0.05)
SMOKE_TORCHRUN = dict(nproc=2, steps=40, every=10, stop_at=10, batch_size=16, tolerance=0.25, rows=48)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lr_at(step: int, steps: int, warmup: int) -> float:
    """nanoGPT's get_lr: linear warm-up, then cosine decay to min_lr."""
    if step < warmup:
        return TRAIN["lr"] * (step + 1) / warmup
    ratio = (step - warmup) / max(1, steps - warmup)
    return TRAIN["min_lr"] + 0.5 * (1 + math.cos(math.pi * min(1.0, ratio))) * (TRAIN["lr"] - TRAIN["min_lr"])


def plain_loop(model: GPT, batches: RandomWindows, steps: int, device: torch.device, compile_fn) -> tuple[float, float]:
    """nanoGPT's loop: lr, batch, forward, loss, backward, clip, step, zero_grad. Returns (seconds of every step,
    seconds of the second half)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": TRAIN["weight_decay"]}, {"params": other, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=TRAIN["lr"], betas=(0.9, 0.99), fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or torch without the fused kernel
        opt = torch.optim.AdamW(groups, lr=TRAIN["lr"], betas=(0.9, 0.99))
    step_model = compile_fn(model) if compile_fn else model
    warmup, half = max(1, steps // 10), steps // 2
    sync(device)
    start = middle = time.perf_counter()
    for step in range(steps):
        if step == half:
            sync(device)
            middle = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, warmup)
        x, y = batches.next()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(step_model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()
    sync(device)
    end = time.perf_counter()
    return end - start, end - middle


def gpt_part(device: torch.device, shape: dict, steps: int, compile_fn, work: Path) -> dict:
    """The plain loop and glassbox.fit, eager and compiled, on one model shape: tokens/s and MFU of each."""
    peak = measure_matmul_peak(device, torch.bfloat16, refresh=device.type == "cuda")
    if CORPUS.exists():
        prepare_corpus(CORPUS, work / "corpus", tokenizer="char", block_size=shape["block_size"])
        _, train_ids, val_ids, _ = load_prepared(work / "corpus")
    else:
        ids = np.random.default_rng(0).integers(0, shape["vocab_size"], 200 * shape["block_size"]).astype(np.int64)
        train_ids, val_ids = ids[:-8 * shape["block_size"]], ids[-8 * shape["block_size"]:]
    config = GPTConfig(shape["vocab_size"], shape["block_size"], shape["n_layer"], shape["n_head"], shape["n_embd"],
                       dropout=0.0, bf16=True)
    tokens_per_step = shape["batch_size"] * shape["block_size"]

    def windows() -> RandomWindows:  # the same batches, in the same order, for every run
        return RandomWindows(train_ids, shape["block_size"], shape["batch_size"], seed=TRAIN["seed"])

    # library start-up (CUDA context, cuBLAS, kernels) on a throwaway model, charged to no run
    plain_loop(GPT(config).to(device), windows(), 3, device, None)
    rows = []
    for compiled in (False, True):
        torch._dynamo.reset()  # each compiled run compiles afresh: its time is its own
        torch.manual_seed(TRAIN["seed"])
        model = GPT(config).to(device)
        flops_per_token = model.flops_per_token()
        seconds, second_half = plain_loop(model, windows(), steps, device, compile_fn if compiled else None)
        rows.append(gpt_row("plain loop", compiled, seconds, (steps - steps // 2) * tokens_per_step / second_half,
                            flops_per_token, peak))
        del model

        torch._dynamo.reset()
        torch.manual_seed(TRAIN["seed"])
        model = GPT(config)
        cfg = TrainConfig(task="lm", max_steps=steps, batch_size=shape["batch_size"], eval_every=steps // 2,
                          warmup_steps=max(1, steps // 10), patience=0, compile=compiled, quiet=True,
                          device=str(device), threads=1 if device.type == "cpu" else None, **TRAIN)
        result = fit(model, windows(), val_windows(val_ids, shape["block_size"], max_windows=4), config=cfg,
                     n_train=len(train_ids) // shape["block_size"])
        steady = result.history[-1]["examples_per_s"] * shape["block_size"]  # over the second half's steps
        rows.append(gpt_row("glassbox.fit", compiled, result.train_seconds, steady, flops_per_token, peak,
                            result.history[-1]["val_loss"]))
        del model, result
        torch._dynamo.reset()  # the compiled graphs hold the model's weights
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for compiled in (False, True):
        plain, ours = (r for r in rows if r["compile"] == compiled)
        ours["vs_plain"] = ours["tokens_per_s"] / plain["tokens_per_s"]
    return {"peak_bf16_flops": peak, "flops_per_token": flops_per_token, "shape": shape, "steps": steps, "rows": rows,
            "corpus": str(CORPUS) if CORPUS.exists() else "random tokens",
            "ok": all(math.isfinite(r["tokens_per_s"]) and r["tokens_per_s"] > 0 for r in rows)
            and all(math.isfinite(r["val_loss"]) for r in rows if r["val_loss"] is not None)}


def gpt_row(run: str, compiled: bool, seconds: float, tokens_per_s: float, flops_per_token: int, peak: float,
            val_loss: float | None = None) -> dict:
    return {"run": run, "compile": compiled, "seconds": seconds, "tokens_per_s": tokens_per_s,
            "mfu": tokens_per_s * flops_per_token / peak, "val_loss": val_loss}


def cnn_part(device: torch.device, folder: str | None, settings: dict, least: float, work: Path) -> dict:
    """`glassbox train` on the photos in `folder` (None: the cats vs dogs benchmark's, with its test photos), on
    `device`, start to end; `least`: the test accuracy it must reach."""
    if folder is None:
        import cats_dogs  # benchmarks/cats_dogs.py: both tarballs, unpacked once

        cats_dogs.TARBALLS = DATA / "cats_dogs"
        photos, test = cats_dogs.extract_data()
    else:
        photos, test = Path(folder), None
    start = time.perf_counter()
    summary = train(str(photos), label_from_name="cat|dog", test=str(test) if test else None, device=str(device),
                    out=str(work / "cats_dogs"), quiet=True, **settings)
    seconds = time.perf_counter() - start
    cost = summary.get("cost", {}).get("train", {})
    return {"test_accuracy": summary["test_accuracy"], "steps": summary["steps"], "seconds": seconds,
            "train_seconds": summary["train_seconds"], "examples_per_s": summary["examples_per_second"],
            "mfu": cost.get("mfu"), "ok": summary["test_accuracy"] >= least and summary["steps"] > 0}


def glassbox_command(*args: str, nproc: int = 0) -> list[str]:
    """`glassbox ARGS` in a process of its own, or under torchrun on `nproc` processes."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc \
        else [sys.executable]
    return [*launch, "-m", "glassbox", *args]


def child_env(device: torch.device) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    if device.type == "cuda":
        env["NCCL_DEBUG"] = "VERSION"  # NCCL says its version once it starts: the proof that the group used it
    else:
        env.setdefault("OMP_NUM_THREADS", "1")
        if Path("/sys/class/net/lo").exists():
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def latest_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def torchrun_part(device: torch.device, plan: dict, work: Path) -> tuple[dict, Path | None]:
    """A torchrun run with the shuffled-label control, stopped by SIGTERM to its launcher at a checkpoint, resumed
    under torchrun to its end. Returns the figures and a copy of the stopped run folder (for the resume on the CPU)."""
    run, env, nproc = work / "torchrun", child_env(device), plan["nproc"]
    data = ["digits"] if "rows" not in plan else [str(digits_table(plan["rows"], work)), "--label", "digit",
                                                   "--val-fraction", "0.25", "--test-fraction", "0.25"]
    settings = ["--max-steps", str(plan["steps"]), "--checkpoint-every", str(plan["every"]), "--eval-every",
                str(plan["every"]), "--batch-size", str(plan["batch_size"]), "--patience", "0", "--control",
                "shuffled-labels", "--quiet"]
    launcher = subprocess.Popen(glassbox_command("train", *data, "--device", str(device.type), "--out", str(run),
                                                 *settings, nproc=nproc),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while latest_step(run) < plan["stop_at"] and launcher.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    launcher.send_signal(signal.SIGTERM)  # as a scheduler stops a job: torchrun passes it on to its worker
    out, err = launcher.communicate(timeout=120)
    said = "glassbox: stopped on request (SIGTERM) at step "
    stopped = int(err.split(said)[1].split()[0]) if said in err else None
    figures = {"processes": nproc, "stopped_at": stopped, "checkpoint": latest_step(run), "steps": plan["steps"],
               "nccl": "NCCL version" in out + err if device.type == "cuda" else None}
    if stopped is None:
        figures.update(ok=False, problem=f"the run did not stop on request: {(err or out).strip()[-600:]}")
        return figures, None
    copy = work / "torchrun_copy"
    shutil.copytree(run, copy)
    start = time.perf_counter()
    done = subprocess.run(glassbox_command("train", "--out", str(run), "--resume", "--quiet", nproc=nproc),
                          capture_output=True, text=True, env=env, timeout=600)
    figures["resume_seconds"] = time.perf_counter() - start
    if done.returncode != 0 or not (run / "summary.json").exists():
        figures.update(ok=False, problem=f"the resume failed: {done.stderr.strip()[-600:]}")
        return figures, copy
    summary = json.loads((run / "summary.json").read_text())
    sessions = [(s["from_step"], s["to_step"]) for s in summary["sessions"]]
    if device.type == "cuda":
        figures["nccl"] = figures["nccl"] or "NCCL version" in done.stdout + done.stderr
    figures.update(sessions=sessions, test_accuracy=summary["test_accuracy"], control_steps=summary["control"]["steps"])
    figures["ok"] = (sessions == [(0, stopped), (stopped, plan["steps"])] and stopped == figures["checkpoint"]
                     and figures["control_steps"] == 2 * plan["steps"] and figures["nccl"] is not False)
    return figures, copy


def digits_table(rows: int, work: Path) -> Path:
    """The first `rows` of scikit-learn's handwritten digits as a CSV: 64 pixel columns and the digit."""
    from sklearn.datasets import load_digits

    d, path = load_digits(), work / f"digits_{rows}.csv"
    lines = [",".join(f"p{i}" for i in range(64)) + ",digit"]
    lines += [",".join(str(int(v)) for v in x) + f",{y}" for x, y in zip(d.data[:rows], d.target[:rows])]
    path.write_text("\n".join(lines) + "\n")
    return path


def cpu_resume_part(stopped: Path, accuracy: float | None, tolerance: float) -> dict:
    """The stopped run's copy resumed in this process on the CPU, next to the run resumed where it started."""
    summary = train(out=str(stopped), resume=True, device="cpu", quiet=True)
    return {"test_accuracy": summary["test_accuracy"], "steps": summary["steps"],
            "sessions": [(s["from_step"], s["to_step"]) for s in summary["sessions"]],
            "ok": accuracy is not None and abs(summary["test_accuracy"] - accuracy) <= tolerance}


def attempt(name: str, results: dict, part, *args):
    """Run one part; a part that raises is recorded (its last lines) and the others still run."""
    start = time.perf_counter()
    try:
        out = part(*args)
    except Exception as e:  # noqa: BLE001 (a check reports every failure and goes on)
        out = {"ok": False, "problem": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc().strip().splitlines()[-12:]}
    figures = out[0] if isinstance(out, tuple) else out
    figures["wall_seconds"] = time.perf_counter() - start
    results[name] = figures
    return out


def table(results: dict) -> str:
    """The results as a plain table, one line per measured run or check."""
    lines = [f"{'part':<10} {'run':<30} {'seconds':>8} {'throughput':>18} {'MFU':>6}  check"]
    gpt, cnn, run, cpu = (results.get(name, {}) for name in ("gpt", "cnn", "torchrun", "gpu_to_cpu"))
    verdict = lambda part: "ok" if part.get("ok") else f"FAILED {part.get('problem', '')[:200]}"  # noqa: E731
    for r in gpt.get("rows", []):
        versus = f" ({r['vs_plain']:.2f}x the plain loop)" if "vs_plain" in r else ""
        lines.append(f"{'gpt':<10} {r['run'] + (' compiled' if r['compile'] else ' eager'):<30} {r['seconds']:8.1f} "
                     f"{r['tokens_per_s']:12,.0f} tok/s {r['mfu']:6.1%}  {verdict(gpt)}{versus}")
    if not gpt.get("rows"):
        lines.append(f"{'gpt':<10} {'':<30} {gpt.get('wall_seconds', 0):8.1f} {'':>18} {'':>6}  {verdict(gpt)}")
    if "examples_per_s" in cnn:
        lines.append(f"{'cnn':<10} {'glassbox train, test ' + format(cnn['test_accuracy'], '.3f'):<30} "
                     f"{cnn['seconds']:8.1f} {cnn['examples_per_s']:13,.0f} ex/s {(cnn['mfu'] or 0):6.1%}  "
                     f"{verdict(cnn)}")
    else:
        lines.append(f"{'cnn':<10} {'':<30} {cnn.get('wall_seconds', 0):8.1f} {'':>18} {'':>6}  {verdict(cnn)}")
    backend = "NCCL" if run.get("nccl") else "gloo" if run.get("nccl") is None else "no NCCL"
    did = (f"{run.get('processes')} proc. {backend}, stop {run.get('stopped_at')}, end {run.get('steps')}"
           if run.get("stopped_at") else "")
    lines.append(f"{'torchrun':<10} {did:<30} {run.get('wall_seconds', 0):8.1f} {'':>18} {'':>6}  {verdict(run)}")
    did = (f"resumed on CPU, test {cpu['test_accuracy']:.3f}" if "test_accuracy" in cpu else "")
    lines.append(f"{'gpu->cpu':<10} {did:<30} {cpu.get('wall_seconds', 0):8.1f} {'':>18} {'':>6}  {verdict(cpu)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU with gloo: checks the script itself")
    ap.add_argument("--gpt-steps", type=int, default=None, help="steps of each GPT run (default 200; --smoke 6)")
    ap.add_argument("--cats-dogs", default=None, help="a folder of cat.* and dog.* photos to train the CNN on "
                                                      "(default: ../shared/data/cats_dogs, unpacked into the cache)")
    ap.add_argument("--json", default="gpu_check.json", help="where the figures go (default gpu_check.json)")
    args = ap.parse_args(argv)

    if args.smoke:
        device = torch.device("cpu")
        # compiling for real takes minutes on a CPU: the eager backend still traces every forward through dynamo
        compile_fn = functools.partial(torch.compile, backend="eager")
        torch.compile = compile_fn  # glassbox.fit's --compile too (this process only)
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    else:
        device, compile_fn = torch.device("cuda"), torch.compile
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers (outside autocast) on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    machine = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda,
               "python": platform.python_version(), "smoke": args.smoke}
    print(f"gpu_check on {name}: torch {torch.__version__}, CUDA {torch.version.cuda}, Python "
          f"{platform.python_version()}{' (smoke: tiny shapes, CPU, gloo)' if args.smoke else ''}", flush=True)
    start, results = time.perf_counter(), {"machine": machine}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shape = SMOKE_GPT_SHAPE if args.smoke else GPT_SHAPE
        steps = args.gpt_steps or (6 if args.smoke else 200)
        attempt("gpt", results, gpt_part, device, shape, steps, compile_fn, work)
        print(f"gpt: done ({results['gpt']['wall_seconds']:.0f} s)", flush=True)

        settings, least = {}, 0.85  # cats vs dogs at 32x32 with the image defaults: about 0.9 (docs/benchmarks.md)
        if args.smoke:  # a few steps: the run's every stage, no figure worth a check
            settings, least = {"image_size": 16, "max_steps": 4, "eval_every": 2, "batch_size": 32}, 0.0
        attempt("cnn", results, cnn_part, device, args.cats_dogs, settings, least, work)
        print(f"cnn: done ({results['cnn']['wall_seconds']:.0f} s)", flush=True)

        plan = SMOKE_TORCHRUN if args.smoke else TORCHRUN
        out = attempt("torchrun", results, torchrun_part, device, plan, work)
        stopped = out[1] if isinstance(out, tuple) else None
        print(f"torchrun: done ({results['torchrun']['wall_seconds']:.0f} s)", flush=True)
        if stopped is not None:
            attempt("gpu_to_cpu", results, cpu_resume_part, stopped, results["torchrun"].get("test_accuracy"),
                    plan["tolerance"])
        else:
            results["gpu_to_cpu"] = {"ok": False, "problem": "no stopped run to resume (see torchrun)"}
    results["seconds"] = time.perf_counter() - start
    results["ok"] = all(results[k].get("ok") for k in ("gpt", "cnn", "torchrun", "gpu_to_cpu"))
    print(table(results))
    print(f"{'all checks passed' if results['ok'] else 'some checks FAILED'} in {results['seconds']:.0f} s; "
          f"figures in {args.json}")
    Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
