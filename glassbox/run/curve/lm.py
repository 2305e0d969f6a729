"""`glassbox curve CORPUS --task lm`: the same GPT trained on 1/32, 1/16, ..., all of the training text (a seeded
stretch of it at each size), every size given the full corpus's updates and stopped at its own sweet spot; scored
by validation loss on the same validation windows."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glassbox.config import TrainConfig, schedule
from glassbox.errors import UserError
from glassbox.run.curve.training import FRACTIONS, over_repeats, repeats_words
from glassbox.train.loop import evaluate, fit

PAYS_NATS = 0.01    # a doubling pays when it lowers validation loss by at least this, beyond the noise


def lm_curve(cfg: TrainConfig, run_dir: Path, repeats: int) -> dict:
    from glassbox.data.corpus import val_windows
    from glassbox.run.train.lm import EVAL_WINDOWS, tokenize

    tok, train_ids, val_ids, _ = tokenize(cfg, run_dir)
    n_tokens = len(train_ids)
    smallest = round(FRACTIONS[0] * n_tokens)
    if smallest < 4 * cfg.block_size:
        raise UserError(f"1/32 of the {n_tokens:,} training tokens is {smallest:,}, under four windows of "
                        f"{cfg.block_size} tokens; give a larger corpus (at least {128 * cfg.block_size:,} training "
                        f"tokens) or a smaller --block-size")
    steps = schedule(cfg, max(1, n_tokens // cfg.block_size), EVAL_WINDOWS)["steps"]
    val = val_windows(val_ids, cfg.block_size, max_windows=EVAL_WINDOWS)
    points, losses = [], []  # losses[i][r]: each validation window's loss at size i, repeat r
    for f in FRACTIONS:
        n = round(f * n_tokens)
        runs = []
        for r in range(repeats):
            start = int(np.random.default_rng(cfg.seed + r).integers(0, n_tokens - n + 1))
            runs.append(train_lm(train_ids[start:start + n], val, tok.vocab_size, replace(cfg, seed=cfg.seed + r), steps))
        losses.append([run["val_window_loss"] for run in runs])
        val_loss, train_loss = float(np.mean(losses[-1])), float(np.mean([run["train_loss"] for run in runs]))
        points.append({"n": n, "val_loss": val_loss, "perplexity": float(np.exp(val_loss)), "train_loss": train_loss,
                       "gap": val_loss - train_loss, "val_loss_range": [min(r["val_loss"] for r in runs),
                                                                        max(r["val_loss"] for r in runs)],
                       "best_steps": [r["best_step"] for r in runs]})
    for i in range(1, len(points)):
        gain = over_repeats([before - after for before, after in zip(losses[i - 1], losses[i])])
        points[i].update(gain=gain["mean"], gain_interval=gain["interval"], gain_repeats=gain)
    return {"task": "lm", "kind": "lm", "steps": steps, "n_train": n_tokens, "n_val": len(val[1]),
            "vocab_size": tok.vocab_size, "chance_loss": float(np.log(tok.vocab_size)), "points": points,
            "sentence": lm_paying_sentence(points)}


def train_lm(ids, val, vocab_size: int, cfg: TrainConfig, steps: int) -> dict:
    """The run's GPT, trained on `ids` for `steps` updates at most (the sweet spot restored), and its losses."""
    from glassbox.data.corpus import RandomWindows, val_windows
    from glassbox.models.gpt import GPT, GPTConfig

    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                          n_embd=cfg.n_embd, dropout=cfg.dropout, bf16=True))  # as `glassbox train --task lm` builds it
    batches = RandomWindows(ids, cfg.block_size, cfg.batch_size, seed=cfg.seed)
    quiet = replace(cfg, quiet=True, max_steps=steps, epochs=None, resume=False, out=None)
    res = fit(model, batches, val, config=quiet, n_train=max(1, len(ids) // cfg.block_size))
    device = next(res.model.parameters()).device
    train_loss, _ = evaluate(res.model, val_windows(ids, cfg.block_size, max_windows=len(val[1])), device=device)
    per_window = []
    res.model.eval()
    with torch.no_grad():
        for i in range(0, len(val[1]), 64):
            x, y = val[0][i:i + 64].to(device), val[1][i:i + 64].to(device)
            logits = res.model(x)
            rows = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
            per_window.append(rows.view(len(y), -1).mean(1).cpu())
    window_loss = torch.cat(per_window).numpy()
    return {"val_window_loss": window_loss, "val_loss": float(window_loss.mean()), "train_loss": train_loss,
            "best_step": res.best_step}


def lm_paying_sentence(points: list[dict]) -> str:
    pays = [p["gain"] >= PAYS_NATS and (p["gain_repeats"]["beyond"] == "above" if "gain_repeats" in p
                                        else p["gain_interval"][0] > 0) for p in points[1:]]
    last = points[-1]
    lo, hi = last["gain_interval"]
    repeats = f"; {repeats_words(last['gain_repeats'], unit=' nats', digits=4)}" if "gain_repeats" in last else ""
    said = (f"the last doubling ({points[-2]['n']:,} -> {last['n']:,} tokens) "
            + (f"lowered validation loss by {last['gain']:+.4f} nats (95% interval over the validation windows "
               f"{lo:+.4f} to {hi:+.4f}{repeats})" if last["gain"] >= 0 else
               f"raised validation loss by {-last['gain']:+.4f} nats (95% interval over the validation windows "
               f"{-hi:+.4f} to {-lo:+.4f}{repeats})"))
    if pays[-1]:
        return said + ": more text was still paying at the full size; a larger corpus would likely help"
    still = [i for i, p in enumerate(pays) if p]
    if not still:
        return said + f"; no doubling lowered it by a clear {PAYS_NATS} nats"
    return said + (f"; more text stopped paying after about {points[still[-1] + 1]['n']:,} tokens: every later doubling "
                   f"lowered validation loss by under {PAYS_NATS} nats or within the noise")
