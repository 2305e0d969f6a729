"""A next-token language-model run, top to bottom: corpus audit gate -> tokenizer -> token ids on disk -> GPT ->
the same loop -> perplexity, samples, memorisation, cost -> frozen artifact with its knowledge cutoff -> the shared
finish. start.py calls `run_lm` once the settings and the run folder are ready."""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

import torch

from glassbox.config import TrainConfig
from glassbox.data.corpus import RandomWindows, load_prepared, val_windows
from glassbox.data.kinds import KINDS
from glassbox.evaluate.memorization import memorization_report
from glassbox.export.artifact import save_artifact
from glassbox.infer.generator import Generator
from glassbox.models.registry import MODELS, build_model
from glassbox.report.words import memorisation as memorisation_words
from glassbox.run.audit_step import audit_corpus_at, gate, headline
from glassbox.run.train.cost import measure_cost
from glassbox.run.train.finish import finish, finish_diverged, folder_lines, say
from glassbox.run.train.lm_init import Parent, words as init_words
from glassbox.run.settings import add_derived
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json
from glassbox.train.loop import cross_entropy, evaluate, fit
from glassbox.train.parallel import world_record
from glassbox.train.progress import Laps

EVAL_WINDOWS = 256      # validation windows per evaluation during training (the final figure uses all)


def run_lm(cfg: TrainConfig, run_dir: Path) -> dict:
    lap = Laps()  # wall time of each stage, for the summary
    data, dist = str(cfg.data), distributed.current()
    audit = gate(lambda: audit_corpus_at(data, cfg.val_fraction), cfg, run_dir, what="corpus")
    lap("audit")
    parent = Parent.load(cfg) if cfg.init else None  # --init: a saved model continues, with its tokenizer
    tok, train_ids, val_ids, corpus = tokenize(cfg, run_dir, parent.tokenizer if parent else None)
    torch.manual_seed(cfg.seed)
    if parent is None:
        gpt_config = MODELS["gpt"].config_for(tok, cfg, tok.vocab_size)  # the model table's GPT (models/registry.py)
        model = build_model("gpt", gpt_config)
    else:
        gpt_config = parent.config(cfg)
        model = build_model("gpt", gpt_config)
        model.load_state_dict(parent.model.state_dict())
    say(cfg, f"model: GPT with {sum(p.numel() for p in model.parameters()):,} weights ({cfg.n_layer} layers, "
             f"{cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size} tokens), "
             + (f"the weights of {cfg.init} to start" if parent else "all random to start"))
    before = parent.losses(model, val_ids, cfg.block_size) if parent and dist.is_main else None
    batches = RandomWindows(train_ids, cfg.block_size, cfg.batch_size, seed=cfg.seed, rank=dist.rank,
                            world_size=dist.world_size)
    val_small = val_windows(val_ids, cfg.block_size, max_windows=EVAL_WINDOWS)
    n_train = max(1, len(train_ids) // cfg.block_size)
    add_derived(cfg, run_dir, n_train, len(val_small[1]))
    lap("data")  # tokenizing and model set-up
    result = fit(model, batches, val_small, config=cfg, run_dir=run_dir, n_train=n_train,
                 **({"chance_fn": parent.chance} if parent else {}))
    lap("training")
    distributed.leave()  # every process leaves the group together: what follows waits for no peer
    if not dist.is_main:  # the other ranks helped train; rank 0 evaluates and writes, alone
        return {"rank": dist.rank, "steps": result.steps}
    if result.diverged and not result.diverged["restored"]:
        return finish_diverged(result, {"task": "lm", "data": data, "model": "gpt", "model_config": gpt_config,
                                        "n_params": sum(p.numel() for p in model.parameters()),
                                        "vocab_size": tok.vocab_size, "audit": headline(audit)}, cfg, run_dir, lap)
    summary = lm_scores(result, tok, train_ids, val_ids, corpus, gpt_config, cfg, audit)
    lap("evaluation")
    memo = memorization_report(result.model, tok, train_ids, val_ids, seed=cfg.seed)
    memo["summary"] = memorisation_words.summary(memo)
    lap("memorisation")
    write_json(run_dir / "memorization.json", memo)
    say(cfg, memo["summary"])
    summary.update(memorization=memo["summary"], samples=samples(result.model, tok, val_ids, cfg.seed),
                   cost=lm_cost(result, batches, val_small, cfg))
    if parent is not None:
        summary["init"] = parent.record(before, parent.losses(result.model, val_ids, cfg.block_size), corpus)
        say(cfg, init_words(summary["init"]))
    summary["artifact"] = str(save_artifact(
        run_dir / "model", result.model, "gpt", gpt_config, task="lm", classes=None, encoder=tok.to_dict(),
        data_fingerprint=corpus["sha256"],
        extra={"knowledge_cutoff": {"corpus_sha256": corpus["sha256"], "corpus_source": data,
                                    "corpus_tokens": corpus["tokens"], "trained_on": corpus["trained_on"],
                                    "val_fraction": cfg.val_fraction},
               "inference_flops": summary["cost"]["inference"]["flops"],
               **({"continued_from": {"weights_sha256": parent.manifest.get("weights_sha256"),
                                      "knowledge_cutoff": parent.manifest.get("knowledge_cutoff")}} if parent else {})}))
    lap("evaluation")  # samples, cost ledger and export
    return finish(summary, cfg, run_dir, lap, lambda s: closing_words(s, run_dir))


def tokenize(cfg: TrainConfig, run_dir: Path, given=None):
    """Train the tokenizer on the training text (or use `given`, a saved model's) and write the token ids (rank 0;
    under torchrun the other ranks wait, then read the same files): (tokenizer, train ids, validation ids, the
    corpus's description)."""
    if distributed.current().is_main:
        KINDS["corpus"].prepare(str(cfg.data), cfg, run_dir / "data", given)
    distributed.barrier()
    tok, train_ids, val_ids, corpus = load_prepared(run_dir / "data")
    corpus["trained_on"] = _dt.date.today().isoformat()
    unknown = corpus.get("unknown_characters")
    if unknown:
        shown = ", ".join(repr(c) for c in unknown["characters"][:12]) + (", ..." if len(unknown["characters"]) > 12 else "")
        say(cfg, f"the model's tokenizer has no token for {len(unknown['characters'])} of the corpus's characters "
                 f"({shown}): they are left out, {unknown['count']:,} characters ({unknown['share']:.1%} of the text)")
    say(cfg, f"corpus: {corpus['characters']['total']:,} characters from {cfg.data}; {cfg.tokenizer} tokenizer with "
             f"{tok.vocab_size} tokens; {corpus['tokens']['train']:,} training and {corpus['tokens']['val']:,} validation "
             f"tokens, split by position (the last {cfg.val_fraction:.0%} is validation)")
    return tok, train_ids, val_ids, corpus


def lm_scores(result, tok, train_ids, val_ids, corpus: dict, gpt_config: dict, cfg: TrainConfig, audit: dict) -> dict:
    """Loss and perplexity on every validation window (and as many training windows) at the sweet spot."""
    model = result.model
    device = next(model.parameters()).device
    val_all = val_windows(val_ids, cfg.block_size)
    val_loss, val_acc = evaluate(model, val_all, cross_entropy, device=device)
    train_loss, _ = evaluate(model, val_windows(train_ids, cfg.block_size, max_windows=len(val_all[1])), cross_entropy,
                             device=device)
    tokens_per_s = result.examples_seen * cfg.block_size / max(result.train_seconds, 1e-9)
    curve = min(EVAL_WINDOWS, len(val_all[1]))  # the evaluations during training (the curve, the verdict) read these
    say(cfg, f"validation loss {val_loss:.4f} on all {len(val_all[1]):,} validation windows = perplexity "
             f"{math.exp(val_loss):.2f} (chance: ln({tok.vocab_size}) = {math.log(tok.vocab_size):.4f}, perplexity "
             f"{tok.vocab_size}); {tokens_per_s:,.0f} tokens/s"
             + (f"; the curve and the verdict use {curve} of those windows, spread evenly over the text "
                f"({result.best_val_loss:.4f} at the sweet spot)" if curve < len(val_all[1]) else ""))
    return {
        "task": "lm", "data": str(cfg.data), "model": "gpt", "model_config": gpt_config,
        "n_params": sum(p.numel() for p in model.parameters()), "tokenizer": tok.kind, "vocab_size": tok.vocab_size,
        "corpus": corpus, "steps": result.steps, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason, "verdict": result.verdict, "diverged": result.diverged,
        "chance_loss": math.log(tok.vocab_size), "chance": result.chance,
        "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc, "val_windows": len(val_all[1]),
        "curve_val_windows": curve, "curve_val_loss": result.best_val_loss,
        "perplexity": math.exp(val_loss), "train_perplexity": math.exp(train_loss),
        "generalisation_gap": val_loss - train_loss, "tokens_per_second": tokens_per_s,
        "train_seconds": result.train_seconds, "threads": result.thread_choice, "data_fingerprint": corpus["sha256"], "audit": headline(audit),
        **world_record(result, cfg.batch_size),
    }


def samples(model, tok, val_ids, seed: int, n: int = 3) -> list[str]:
    """n continuations of the validation text's first characters, from one seeded generator."""
    return Generator.from_model(model, tok).samples(tok.decode(val_ids[:8].tolist()), n, 200, temperature=0.8,
                                                    top_k=50, seed=seed)


def lm_cost(result, batches: RandomWindows, val_small, cfg: TrainConfig) -> dict:
    """The cost ledger, with FLOPs per token and one prediction as a forward pass over a full context."""
    batch = RandomWindows(batches.ids, cfg.block_size, cfg.batch_size, seed=cfg.seed).next()  # one global batch
    ledger = measure_cost(result.model, batch, val_small[0][:1], len(val_small[1]), result, cfg, cross_entropy)
    ledger["train"]["flops_per_token"] = ledger["train"]["flops_per_step"] / (cfg.batch_size * cfg.grad_accum * cfg.block_size)
    ledger["inference"]["unit"] = f"one forward pass over {cfg.block_size} tokens of context"
    return ledger


def closing_words(summary: dict, run_dir: Path) -> str:
    return "\n".join([f"sample: {summary['samples'][0][:200]!r}",
                      *folder_lines(run_dir, {"model artifact": "model", "summary": "summary.json",
                                              "memorisation": "memorization.json", "report": "report.html"}),
                      f"  generate: glassbox generate {run_dir / 'model'} --prompt 'ROMEO:'"])
