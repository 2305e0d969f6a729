"""Next-token language models, top to bottom: corpus -> tokenizer -> token ids on disk -> GPT ->
the same loop -> perplexity, samples, memorisation -> frozen artifact with its knowledge cutoff."""
from __future__ import annotations

import datetime as _dt
import math
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from glassbox.config import TrainConfig
from glassbox.data.corpus import RandomWindows, corpus_files, load_prepared, prepare_corpus, val_windows
from glassbox.evaluate.cost import (count_inference_flops, count_train_step_flops, cost_ledger, default_power_watts,
                                    measure_matmul_peak, optimizer_flops_per_param, optimizer_step_flops)
from glassbox.evaluate.memorization import memorization_report
from glassbox.errors import UserError
from glassbox.export.artifact import save_artifact
from glassbox.runtime.files import write_json
from glassbox.models.gpt import GPT, GPTConfig
from glassbox.runtime import distributed
from glassbox.train.loop import cross_entropy, evaluate, fit
from glassbox.train.progress import Laps

EVAL_WINDOWS = 256      # validation windows per evaluation during training (the final figure uses all)
DEFAULT_STEPS = 2000    # optimizer updates when neither --max-steps nor --epochs is given


def say(cfg: TrainConfig, text: str) -> None:
    if not cfg.quiet:
        print(text, flush=True)


def run_lm(data: str, cfg: TrainConfig, run_dir: Path) -> dict:
    t_start = time.perf_counter()
    lap = Laps()  # wall time of each stage, for the summary
    dist = distributed.current()
    audit = run_corpus_audit(data, cfg, run_dir)
    lap("audit")
    if dist.is_main:  # rank 0 tokenizes; under torchrun the other ranks wait, then read the same files
        prepare_corpus(data, run_dir / "data", tokenizer=cfg.tokenizer,
                       vocab_size=cfg.vocab_size if cfg.tokenizer == "bpe" else None,
                       val_fraction=cfg.val_fraction, block_size=cfg.block_size)
    distributed.barrier()
    tok, train_ids, val_ids, corpus = load_prepared(run_dir / "data")
    corpus["trained_on"] = _dt.date.today().isoformat()
    say(cfg, f"corpus: {corpus['characters']['total']:,} characters from {data}; {cfg.tokenizer} tokenizer with "
             f"{tok.vocab_size} tokens; {corpus['tokens']['train']:,} training and {corpus['tokens']['val']:,} validation "
             f"tokens, split by position (the last {cfg.val_fraction:.0%} is validation)")

    torch.manual_seed(cfg.seed)
    gpt_config = GPTConfig(vocab_size=tok.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                           n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout,
                           bf16=True)  # bfloat16 compute where this CPU does it natively (20% faster steps)
    model = GPT(gpt_config)
    n_params = sum(p.numel() for p in model.parameters())
    say(cfg, f"model: GPT with {n_params:,} weights ({cfg.n_layer} layers, {cfg.n_head} heads, width {cfg.n_embd}, "
             f"context {cfg.block_size} tokens), all random to start")
    if cfg.max_steps is None and cfg.epochs is None:
        cfg.max_steps = DEFAULT_STEPS
    batches = RandomWindows(train_ids, cfg.block_size, cfg.batch_size, seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)
    val_small = val_windows(val_ids, cfg.block_size, max_windows=EVAL_WINDOWS)
    lap("data")  # tokenizing and model set-up
    result = fit(model, batches, val_small, config=cfg, run_dir=run_dir,
                 n_train=max(1, len(train_ids) // cfg.block_size))
    lap("training")
    model = result.model
    if not dist.is_main:  # the other ranks helped train; rank 0 evaluates and writes
        return {"rank": dist.rank, "steps": result.steps}
    device = next(model.parameters()).device

    val_all = val_windows(val_ids, cfg.block_size)
    val_loss, val_acc = evaluate(model, val_all, cross_entropy, device=device)
    train_loss, _ = evaluate(model, val_windows(train_ids, cfg.block_size, max_windows=len(val_all[1])), cross_entropy, device=device)
    tokens_per_s = result.examples_seen * cfg.block_size / max(result.train_seconds, 1e-9)
    say(cfg, f"validation loss {val_loss:.4f} = perplexity {math.exp(val_loss):.2f} (chance: ln({tok.vocab_size}) = "
             f"{math.log(tok.vocab_size):.4f}, perplexity {tok.vocab_size}); {tokens_per_s:,.0f} tokens/s")

    lap("evaluation")
    memo = memorization_report(model, tok, train_ids, val_ids, seed=cfg.seed)
    lap("memorisation")
    write_json(run_dir / "memorization.json", memo)
    say(cfg, memo["summary"])
    prompt = torch.tensor([tok.encode(tok.decode(val_ids[:8].tolist()))], device=device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    samples = [tok.decode(model.generate(prompt, 200, temperature=0.8, top_k=50, generator=gen)[0].tolist()) for _ in range(3)]

    cost = lm_cost(model, batches, result, cfg, val_small)
    summary = {
        "task": "lm", "data": str(data), "model": "gpt", "model_config": asdict(gpt_config), "n_params": n_params,
        "tokenizer": tok.kind, "vocab_size": tok.vocab_size, "corpus": corpus,
        "steps": result.steps, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason, "verdict": result.verdict,
        "chance_loss": math.log(tok.vocab_size), "chance": result.chance,
        "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc,
        "perplexity": math.exp(val_loss), "train_perplexity": math.exp(train_loss),
        "generalisation_gap": val_loss - train_loss,
        "tokens_per_second": tokens_per_s, "train_seconds": result.train_seconds,
        "samples": samples, "memorization": memo["summary"], "cost": cost, "data_fingerprint": corpus["sha256"],
        "audit": {"errors": audit["errors"], "warnings": audit["warnings"],
                  "findings": [f["title"] for f in audit["findings"] if f["severity"] != "info"]},
    }
    artifact = save_artifact(run_dir / "model", model, "gpt", asdict(gpt_config), task="lm", classes=None,
                             encoder=tok.to_dict(), data_fingerprint=corpus["sha256"],
                             extra={"knowledge_cutoff": {"corpus_sha256": corpus["sha256"], "corpus_source": str(data),
                                                         "corpus_tokens": corpus["tokens"], "trained_on": corpus["trained_on"]},
                                    "inference_flops": cost["inference"]["flops"]})
    summary["artifact"] = str(artifact)
    lap("evaluation")  # samples, cost ledger and export
    summary["wall_seconds"] = time.perf_counter() - t_start
    summary["stage_seconds"] = lap.seconds
    write_json(run_dir / "summary.json", summary)
    from glassbox.report import write_report

    report = write_report(run_dir)
    lap("report")  # recorded after the page is written: the summary has it, the page cannot
    summary["stage_seconds"], summary["wall_seconds"] = lap.seconds, time.perf_counter() - t_start
    write_json(run_dir / "summary.json", summary)
    say(cfg, f"sample: {samples[0][:200]!r}")
    say(cfg, f"run folder: {run_dir}\n  model artifact: {artifact}\n  summary: {run_dir / 'summary.json'}\n"
             f"  memorisation: {run_dir / 'memorization.json'}\n  report: {report}\n  generate: glassbox generate {artifact} --prompt 'ROMEO:'")
    return summary


def run_corpus_audit(data: str, cfg: TrainConfig, run_dir: Path) -> dict:
    """Audit the corpus before training: repeated lines, near-copied passages, validation text also in training.
    Every process audits (it is cheap), so under torchrun all reach the same verdict; rank 0 writes and shows it."""
    from glassbox.audit.corpus import audit_corpus

    report = audit_corpus(corpus_files(data), cfg.val_fraction)
    if distributed.current().is_main:
        write_json(run_dir / "audit.json", report.to_dict())
        if not cfg.quiet:
            report.render()
    if cfg.strict and report.has_warnings:
        raise UserError(f"the corpus audit found warnings and --strict is on (see {run_dir / 'audit.json'}); "
                        f"fix the corpus or drop --strict")
    return report.to_dict()


def lm_cost(model, batches, result, cfg, val) -> dict:
    """FLOPs of one training step and of one forward pass over a full context, counted on the model."""
    device = next(model.parameters()).device
    state = batches.state_dict()
    x, y = batches.next()
    batches.load_state_dict(state)
    step_flops = (count_train_step_flops(model, x.to(device), y.to(device), cross_entropy) * cfg.grad_accum
                  + optimizer_step_flops(model, optimizer_flops_per_param(cfg.optimizer, cfg.weight_decay, cfg.momentum)))
    one = val[0][:1].to(device)
    infer_flops = count_inference_flops(model, one)
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(10):
            t = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t)
    dtype = model.compute_dtype(device)  # MFU against the peak of the precision the model computes in
    cpu = result.threads if device.type == "cpu" else None  # the peak on the threads training ran on
    world = distributed.current().world_size  # under torchrun every rank ran the same steps on its own device
    ledger = cost_ledger(world * result.steps * step_flops, max(result.train_seconds, 1e-9), infer_flops,
                         max(statistics.median(times), 1e-9), world * measure_matmul_peak(device, dtype, threads=cpu),
                         power_watts=cfg.power_watts or default_power_watts(device, world),
                         price_per_kwh=cfg.price_per_kwh, peak_dtype=str(dtype).removeprefix("torch."), peak_threads=cpu)
    ledger["train"]["flops_per_step"] = step_flops
    ledger["train"]["flops_per_token"] = step_flops / (cfg.batch_size * cfg.grad_accum * cfg.block_size)
    ledger["inference"]["unit"] = f"one forward pass over {cfg.block_size} tokens of context"
    return ledger
