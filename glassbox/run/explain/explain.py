"""`glassbox explain DATA`: one real training step on one real batch of the user's data, taken apart with numbers,
then (--steps N) the same batch again and again, against validation.

    settings (as for train) -> run folder -> data, split, encoder and random model exactly as `glassbox train`
    builds them (float64) -> a seeded batch -> the step measured (explain_step.py) -> terminal, explain.json,
    explain.html
"""
from __future__ import annotations

from pathlib import Path

import torch

from glassbox.config import TrainConfig, schedule
from glassbox.errors import UserError
from glassbox.data.kinds import KINDS
from glassbox.models.registry import build_model
from glassbox.report.explain_page import explain_page
from glassbox.run.curve.curve import refuse_unused
from glassbox.run.explain.from_run import is_run_folder, run_settings, start_from_first_checkpoint
from glassbox.run.explain.step import ExplainedSteps, predictions
from glassbox.run.explain.words import explain_lines
from glassbox.run.train.finish import say
from glassbox.run.folder import prepare_run_dir
from glassbox.run.settings import settings_for_new_run
from glassbox.run.train.start import remove_if_empty
from glassbox.runtime.files import atomic_write, write_json

BATCH_EXAMPLES = 8      # examples in the explained batch: few enough to read each one


def explain(data: str | None = None, *, sources: dict | None = None, examples: int = BATCH_EXAMPLES, steps: int = 1,
            every: int | None = None, **settings) -> dict:
    """Explain `steps` training steps on one seeded batch of `examples` examples of `data`; returns what
    RUN/explain.json holds. settings: the TrainConfig keys `glassbox train` takes."""
    for name, value in (("examples", examples), ("steps", steps), ("every", every or 1)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"--{name} must be a whole number of at least 1. Got {value!r}")
    given = {k.replace("-", "_"): v for k, v in {**settings, "data": data}.items() if v is not None}
    refuse_unused(given, "explain")
    if given.get("device", "cpu") not in ("cpu", "auto"):  # one float64 step: the CPU computes it in a blink
        raise UserError(f"glassbox explain computes its step in float64 on the CPU; drop --device {given['device']}")
    run = Path(str(data)) if is_run_folder(data) else None
    if run is not None:
        given, sources = run_settings(run, given, sources)
    cfg = settings_for_new_run(given, sources)
    run_dir = prepare_run_dir(cfg, str(cfg.data))
    try:
        setup = lm_setup(cfg, run_dir, examples) if cfg.task == "lm" else classifier_setup(cfg, run_dir, examples)
    except UserError:
        if not cfg.out:  # bad input found before anything worth keeping: no empty folder left behind
            remove_if_empty(run_dir)
        raise
    plan = schedule(cfg, setup["n_train"], len(setup["val"][1]))
    walker = ExplainedSteps(setup["model"], setup["batch"], setup["val"], cfg, plan)
    if run is not None:  # the run's model and optimizer as its earliest kept checkpoint left them
        walker.step = start_from_first_checkpoint(run, setup["model"], walker.optimizer)
    result = {"data": str(cfg.data), "kind": setup["kind"], "model": setup["arch"], "classes": setup["classes"],
              "n_params": sum(p.numel() for p in setup["model"].parameters()), "optimizer": cfg.optimizer,
              "peak_lr": cfg.lr, "run_steps": plan["steps"], "warmup_steps": plan["warmup_steps"],
              "grad_clip": cfg.grad_clip, "weight_decay": cfg.weight_decay, "label_smoothing": cfg.label_smoothing,
              "momentum": cfg.momentum if cfg.optimizer == "sgd" else None,
              "batch": setup["shown"], "n_val": len(setup["val"][1]), "start_step": walker.step,
              "from_run": str(run) if run is not None else None}
    before = walker.losses()
    first = walker.take()
    result.update(before=before, after=walker.losses(), first_step=step_record(first),
                  predictions=predictions(first["logits"], setup["batch"][1], first["per_example"]))
    result["history"] = repeat_steps(walker, first, steps, every or max(1, steps // 10), before)
    write_json(run_dir / "explain.json", result)
    atomic_write(run_dir / "explain.html", explain_page(result, setup.get("images")).encode("utf-8"))
    say(cfg, "\n".join(explain_lines(result, run_dir)))
    return result


def step_record(taken: dict) -> dict:
    """A step's numbers as JSON (the tensors dropped)."""
    return {k: v for k, v in taken.items() if k not in ("logits", "per_example", "picks")}


def repeat_steps(walker: ExplainedSteps, first: dict, steps: int, every: int, before: dict) -> list[dict]:
    """The start (random weights, or a run's checkpoint), the first step and every `every`-th step after it, to
    `steps`: the batch's loss against validation's, with the same three weights checked."""
    start = first["step"] - 1
    history = [{"step": start, **before}]
    taken = first
    while True:
        done = taken["step"] - start
        if done % every == 0 or done in (1, steps):
            layers = taken["layers"]
            ratios = sorted(r["update_ratio"] for r in layers if r["update_ratio"] is not None)
            history.append({"step": taken["step"], "lr": taken["lr"], "train_loss": taken["loss"],
                            "grad_norm": taken["grad_norm"], "median_update_ratio": ratios[len(ratios) // 2],
                            "zero_grad_share": sum(r["zero_grads"] for r in layers) / sum(r["weights"] for r in layers),
                            "max_fd_error": max(w["relative_error"] for w in taken["weights"]), **walker.losses()})
        if done >= steps:
            return history
        taken = walker.take(first["picks"])


def as_float64(x: torch.Tensor) -> torch.Tensor:
    return x.double() if x.is_floating_point() else x


def classifier_setup(cfg: TrainConfig, run_dir: Path, examples: int) -> dict:
    """The data, split, encoder and random model `glassbox train` would build (model in float64), and a seeded
    batch of `examples` training examples."""
    from glassbox.run.train.classifier import encode_parts, load_and_split
    from glassbox.run.model_for_data import model_config

    ex, test, parts = load_and_split(cfg, run_dir, "explain")
    split, encoder, X, Y = encode_parts(ex, test, parts, cfg)
    torch.manual_seed(cfg.seed)  # the same random start as `glassbox train` with this seed
    arch, config = model_config(split["train"], encoder, cfg)
    config = {**config, **({"bf16": False} if "bf16" in config else {})}  # float64 throughout, bfloat16 nowhere
    model = build_model(arch, config).double()
    pick = torch.randperm(len(Y["train"]), generator=torch.Generator().manual_seed(cfg.seed))[:examples]
    chosen = split["train"].subset(pick.numpy())
    shown = [{"input": describe_input(chosen, i), "label": ex.classes[int(y)], "line": str(chosen.lines[i])
              if chosen.lines else ""} for i, y in enumerate(chosen.labels)]
    return {"kind": ex.kind, "arch": arch, "classes": ex.classes, "model": model, "n_train": len(Y["train"]),
            "batch": (as_float64(X["train"][pick]), Y["train"][pick]), "val": (as_float64(X["val"]), Y["val"]),
            "shown": shown, "images": KINDS[ex.kind].pictures(chosen)}


def describe_input(ex, i: int, width: int = 160) -> str:
    """One example as a person reads it (its kind's `describe`), cut to `width` characters."""
    text = KINDS[ex.kind].describe(ex, i)
    return text if len(text) <= width else text[:width - 3] + "..."


def lm_setup(cfg: TrainConfig, run_dir: Path, examples: int) -> dict:
    """A language model's corpus, tokenizer and random GPT as `glassbox train --task lm` builds them (float64), and
    a seeded batch of `examples` windows."""
    from glassbox.data.corpus import RandomWindows, val_windows
    from glassbox.models.registry import MODELS
    from glassbox.run.train.lm import EVAL_WINDOWS, tokenize

    tok, train_ids, val_ids, _ = tokenize(cfg, run_dir)
    torch.manual_seed(cfg.seed)
    model = build_model("gpt", {**MODELS["gpt"].config_for(tok, cfg, tok.vocab_size), "bf16": False}).double()
    x, y = RandomWindows(train_ids, cfg.block_size, examples, seed=cfg.seed).next()
    shown = [{"input": tok.decode(x[i].tolist()), "label": tok.decode([int(y[i, -1])]), "line": ""}
             for i in range(len(y))]
    classes = [tok.decode([i]) for i in range(tok.vocab_size)]
    return {"kind": "lm", "arch": "gpt", "classes": classes, "model": model, "batch": (x, y), "shown": shown,
            "val": val_windows(val_ids, cfg.block_size, max_windows=EVAL_WINDOWS),
            "n_train": max(1, len(train_ids) // cfg.block_size)}
