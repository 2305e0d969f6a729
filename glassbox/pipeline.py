"""The whole job, top to bottom: load -> audit -> split -> encode -> model -> fit -> evaluate -> export.

This module sits on top of every layer and only calls in; `glassbox train` and `glassbox.train()` land here."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch

from glassbox.audit.duplicates import split_keys
from glassbox.config import TrainConfig, make_config, normalise
from glassbox.data.examples import Examples
from glassbox.data.split import split_indices
from glassbox.errors import UserError
from glassbox.load_data import check_labels, data_format, kind_of, load_examples, load_test
from glassbox.export.artifact import save_artifact
from glassbox.runtime.files import write_json
from glassbox.models.fasttext import TRAIN_DEFAULTS as FASTTEXT_DEFAULTS
from glassbox.runtime import distributed
from glassbox.runtime.device import pick_device
from glassbox.train.loop import evaluate, fit, predict_logits
from glassbox.train.progress import Laps
from glassbox.run_setup import (MODELS_FOR, RESUME_MAY_CHANGE, check_model_fits, check_resume_settings,
                                check_settings_apply, check_source_unchanged, config_to_save, free_text_columns,
                                prepare_run_dir, read_saved_config)


def say(cfg: TrainConfig, text: str) -> None:
    if not cfg.quiet:
        print(text, flush=True)


def make_encoder(ex: Examples, cfg: TrainConfig):
    if ex.kind == "tabular":
        from glassbox.data.tabular import TabularEncoder

        return TabularEncoder().fit(ex)
    if ex.kind == "image":
        from glassbox.data.images import ImageEncoder

        return ImageEncoder().fit(ex)
    from glassbox.data.text import BPEEncoder, HashedNgramEncoder

    if cfg.model == "transformer":
        return BPEEncoder(vocab_size=cfg.vocab_size if cfg.vocab_size != 1024 else 8000).fit(ex.inputs)
    return HashedNgramEncoder().fit(ex.inputs)


def make_model(ex: Examples, encoder, cfg: TrainConfig) -> tuple[str, dict]:
    """Pick the architecture for the data and size it."""
    k = len(ex.classes)
    arch = cfg.model if cfg.model != "auto" else MODELS_FOR[ex.kind][0]
    if ex.kind == "tabular":
        return arch, {"n_numeric": encoder.n_numeric, "n_classes": k, "cardinalities": encoder.cardinalities,
                      "dropout": cfg.dropout or 0.1}
    if ex.kind == "image":
        small = encoder.size <= 16
        return arch, {"in_channels": encoder.channels, "n_classes": k, "image_size": encoder.size,
                      "width": 16 if small else 32, "stages": 2 if small else 3, "dropout": cfg.dropout,
                      "bf16": not small, "flip_tta": encoder.channels == 3}  # tiny images: bf16 saves no time
    if arch == "transformer":
        return arch, {"vocab_size": encoder.vocab_size, "n_classes": k, "max_len": encoder.max_len,
                      "n_layer": min(cfg.n_layer, 2), "n_head": cfg.n_head, "n_embd": cfg.n_embd, "dropout": cfg.dropout or 0.1}
    return arch, {"vocab_size": encoder.vocab_size, "n_classes": k, "dropout": cfg.dropout,
                  "word_vocab": encoder.word_vocab_}


# Training settings that suit each kind of model, used where the user set nothing else.
ARCH_DEFAULTS = {
    "fasttext": FASTTEXT_DEFAULTS,  # SGD: see glassbox/models/fasttext.py and docs/benchmarks.md
    "transformer": {"lr": 3e-3, "epochs": 10, "batch_size": 32},  # 3e-3: SMS spam F1 0.920 vs 0.899 at 1e-3 (8 splits)
    "lm": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "batch_size": 12, "weight_decay": 0.1},
}


def arch_for(cfg_values: dict) -> str:
    if cfg_values.get("task") == "lm":
        return "lm"
    model = cfg_values.get("model") or "auto"
    if model != "auto":
        return model
    return "fasttext" if cfg_values.get("text") else "other"


def with_defaults(settings: dict) -> dict:
    """The user's settings, plus the defaults that suit the model for every key they left out."""
    return {**ARCH_DEFAULTS.get(arch_for(settings), {}), **settings}


def run(data: str | None = None, **settings) -> dict:
    """Train on `data` end to end; returns the summary that is also written to RUN/summary.json."""
    given = normalise({k: v for k, v in {**settings, "data": data}.items() if v is not None})  # what the user set
    settings = with_defaults({**settings, "data": str(data) if data is not None else settings.get("data")})
    cfg = make_config(settings)
    # Under torchrun: one process per device joins the group here. Every process loads, splits and encodes
    # the same data (all seeded) and trains its shard; rank 0 alone writes and finishes the run.
    dist = distributed.setup(pick_device(cfg.device))
    if not cfg.resume and not cfg.data:
        raise UserError("give the data to train on: glassbox train DATA --label COL")
    if cfg.task == "lm":
        for wrong, why in ((cfg.model not in ("auto", "gpt"), f"--model {cfg.model}"), (bool(cfg.group), "--group"),
                           (cfg.control is not None, "--control")):
            if wrong:
                raise UserError(f"{why} applies to classifiers; a language model (--task lm) is a GPT, with no groups "
                                f"or label control: drop {why.split()[0]}")
    if not cfg.resume:
        check_settings_apply(given, kind_of(str(cfg.data), cfg), cfg)
    run_dir = prepare_run_dir(cfg, str(cfg.data))
    if cfg.resume:  # continue exactly as configured when the run started, on the same data
        saved, source = read_saved_config(run_dir)
        check_resume_settings(given, saved, run_dir)
        try:
            make_config({**saved, "resume": True, "out": str(run_dir)})
        except UserError as e:
            raise UserError(f"{run_dir / 'config.json'} is damaged ({e}); it records how the run started, so the run "
                            f"cannot be resumed: start afresh with a new --out") from None
        cfg = make_config({**saved, "resume": True, "out": str(run_dir), "quiet": cfg.quiet,
                           **{k: given[k] for k in RESUME_MAY_CHANGE if k in given}})
        check_source_unchanged(run_dir, source, str(cfg.data))
    elif dist.is_main:
        write_json(run_dir / "config.json", config_to_save(cfg))  # the settings, and a sha256 of the data files
    if not dist.is_main:
        cfg.quiet = True
    try:
        if cfg.task == "lm":
            from glassbox.lm_pipeline import run_lm

            return run_lm(str(cfg.data), cfg, run_dir)
        return run_classifier(str(cfg.data), cfg, run_dir)
    except UserError:
        # Bad input found before anything worth keeping was written: leave no empty folder behind
        # (the audit's findings, which the error may point to, are kept).
        if dist.is_main and not cfg.out and not cfg.resume and run_dir.is_dir() and \
                {p.name for p in run_dir.iterdir()} <= {"config.json", "split.json"}:
            shutil.rmtree(run_dir, ignore_errors=True)
            try:
                run_dir.parent.rmdir()  # runs/ too, when this run was all it held
            except OSError:
                pass
        raise


def run_classifier(data: str, cfg: TrainConfig, run_dir: Path) -> dict:
    t_start = time.perf_counter()
    lap = Laps()  # wall time of each stage, for the summary: what the honesty costs next to training
    kind = kind_of(data, cfg)
    ex = load_examples(data, cfg, kind)
    check_labels(ex)
    check_model_fits(ex.kind, cfg)
    say(cfg, f"data: {len(ex)} {ex.kind} examples, {len(ex.classes)} classes ({', '.join(ex.classes[:10])}) from {ex.source}")
    if ex.kind == "tabular":
        for column in free_text_columns(ex.inputs):
            say(cfg, f"note: column '{column}' looks like free text (most values distinct, long); as a tabular feature "
                     f"each distinct text is one category and nothing carries over to new texts. To learn from its "
                     f"words, train a text model: --text {column}")

    test = None
    if cfg.test:
        if kind == "builtin":
            raise UserError(f"'{data}' is built in and carves its own test split; drop --test")
        test = load_test(cfg, ex)

    # split: identical examples and near copies stay together; with --test the user's file is the test split
    keys = split_keys(ex)
    if test is None:
        fractions = (1 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction, cfg.test_fraction)
        parts = split_indices(keys, ex.labels, fractions, cfg.seed)
    else:
        parts = split_indices(keys, ex.labels, (1 - cfg.val_fraction, cfg.val_fraction), cfg.seed, names=("train", "val"))
    empty = [name for name, idx in parts.items() if not len(idx)]
    if empty:
        hint = "add examples" + (", or pass your own --test FILE" if test is None else "")
        raise UserError(f"{len(ex):,} examples are too few to split: the {' and '.join(empty)} split would be empty "
                        f"(validation {cfg.val_fraction:.0%}{'' if test is not None else f', test {cfg.test_fraction:.0%}'}, "
                        f"copies kept together); {hint}")
    if distributed.current().is_main:
        write_json(run_dir / "split.json", {name: idx.tolist() for name, idx in parts.items()})
    lap("data")
    audit = run_audit_step(ex, test, parts, cfg, run_dir)
    lap("audit")
    train_ex, val_ex = ex.subset(parts["train"]), ex.subset(parts["val"])
    test_ex = test if test is not None else ex.subset(parts["test"])

    encoder = make_encoder(train_ex, cfg)  # statistics from the training split only
    X = {name: encoder.encode(part.inputs) for name, part in (("train", train_ex), ("val", val_ex), ("test", test_ex))}
    Y = {name: torch.from_numpy(part.labels) for name, part in (("train", train_ex), ("val", val_ex), ("test", test_ex))}
    say(cfg, f"split: train {len(Y['train'])}, validation {len(Y['val'])}, test {len(Y['test'])} "
             f"({'your --test file' if test is not None else 'carved from the data'}); identical examples never cross splits")

    torch.manual_seed(cfg.seed)
    arch, model_config = make_model(train_ex, encoder, cfg)
    from glassbox.models.registry import build_model

    model = build_model(arch, model_config)
    n_params = sum(p.numel() for p in model.parameters())
    say(cfg, f"model: {arch} with {n_params:,} weights, all random to start")
    augment = None
    if ex.kind == "image":
        from glassbox.data.augment import ImageAugment

        photos = encoder.channels == 3  # mirror images and soft focus are still photos of the same thing
        augment = ImageAugment(flip=photos, shift=max(1, encoder.size // 8), blur=0.15 if photos else 0.0)
    lap("data")  # encoding and model set-up
    result = fit(model, (X["train"], Y["train"]), (X["val"], Y["val"]), config=cfg, run_dir=run_dir, augment=augment)
    lap("training")
    model = result.model
    if not distributed.current().is_main:  # the other ranks helped train; rank 0 evaluates and writes
        return {"rank": distributed.current().rank, "steps": result.steps}

    device = next(model.parameters()).device
    scores = {name: evaluate(model, (X[name][:5000], Y[name][:5000]) if name == "train" else (X[name], Y[name]),
                             device=device) for name in ("train", "val", "test")}
    logits = {name: predict_logits(model, X[name], device=device) for name in ("val", "test")}
    summary = {
        "task": "classify", "data": ex.source, "kind": ex.kind, "model": arch, "n_params": n_params,
        "classes": ex.classes, "n_examples": {k: len(v) for k, v in Y.items()},
        "steps": result.steps, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason, "verdict": result.verdict,
        "chance_loss": result.chance["uniform_loss"], "chance": result.chance,
        **{f"{name}_loss": s[0] for name, s in scores.items()},
        **{f"{name}_accuracy": s[1] for name, s in scores.items()},
        "generalisation_gap": scores["train"][1] - scores["val"][1],
        "train_seconds": result.train_seconds, "examples_per_second": result.examples_seen / max(result.train_seconds, 1e-9),
        "control": cfg.control, "data_fingerprint": ex.fingerprint(),
        "audit": {"errors": audit["errors"], "warnings": audit["warnings"],
                  "findings": [f["title"] for f in audit["findings"] if f["severity"] != "info"]},
    }
    lap("evaluation")
    summary.update(evaluate_extras(model, arch, model_config, logits, Y, X, test_ex, cfg, result, run_dir, lap))
    artifact = save_artifact(run_dir / "model", model, arch, model_config, task="classify", classes=ex.classes,
                             seen_keys=train_ex.keys + val_ex.keys,
                             encoder=encoder.to_dict(), data_fingerprint=ex.fingerprint(),
                             extra={"data_format": data_format(cfg),
                                    **({"temperature": summary["temperature"]} if "temperature" in summary else {}),
                                    **({"inference_flops": summary["cost"]["inference"]["flops"]} if "cost" in summary else {})})
    summary["artifact"] = str(artifact)
    lap("export")
    summary["wall_seconds"] = time.perf_counter() - t_start
    summary["stage_seconds"] = lap.seconds
    write_json(run_dir / "summary.json", summary)
    from glassbox.report import write_report

    write_report(run_dir)
    lap("report")  # recorded after the page is written: the summary has it, the page cannot
    summary["stage_seconds"], summary["wall_seconds"] = lap.seconds, time.perf_counter() - t_start
    write_json(run_dir / "summary.json", summary)
    say(cfg, closing_words(summary, run_dir))
    return summary


def run_audit_step(ex, test, parts, cfg, run_dir) -> dict:
    """The data audit before any weight moves (written to RUN/audit.json)."""
    from glassbox.audit import run_audit
    from glassbox.out_of_fold import TRAIN_FOLD_FLOPS, label_check

    probs, not_checked = label_check(ex, 5, cfg.seed, cfg.device, max_flops=TRAIN_FOLD_FLOPS)
    report = run_audit(ex, test=test, split=parts if test is None else None, pred_probs=probs,
                       label_errors_note=not_checked)
    if distributed.current().is_main:
        write_json(run_dir / "audit.json", report.to_dict())
    if not cfg.quiet:
        report.render()
    if report.has_errors and not cfg.force:
        raise UserError(f"the data audit found errors (see {run_dir / 'audit.json'}); fix the data, or pass --force to train anyway")
    if cfg.strict and report.has_warnings:
        raise UserError(f"the data audit found warnings and --strict is on (see {run_dir / 'audit.json'}); fix the data or drop --strict")
    return report.to_dict()


def evaluate_extras(model, arch, model_config, logits, Y, X, test_ex, cfg, result, run_dir, lap=None) -> dict:
    """Calibration, per-class and per-group figures, the cost ledger, and the memorisation control."""
    from glassbox.assess import assess

    lap = lap or Laps()
    extras = assess(model, logits, Y, X, test_ex.groups, test_ex.classes, result, cfg)
    lap("evaluation")
    if not cfg.quiet:
        print(extras["calibration"]["sentence"])
        for sentence in extras.get("groups", {}).get("sentences", []):
            print(sentence)
        print(extras["cost"]["sentence"])
    if cfg.control == "shuffled-labels":
        extras["control"] = run_control(X, Y, arch, model_config, cfg, run_dir, result)
        lap("control")
        if not cfg.quiet:
            print(extras["control"]["sentence"])
    return extras


def run_control(X, Y, arch, model_config, cfg, run_dir, result) -> dict:
    """The same model and steps, trained on shuffled labels: what memorising noise looks like."""
    from glassbox.assess import control_verdict, shuffled
    from glassbox.models.registry import build_model

    say(cfg, "memorisation control: training the same model again on shuffled labels")
    torch.manual_seed(cfg.seed)
    model = build_model(arch, model_config)
    y_shuffled = shuffled(Y["train"], cfg.seed)
    ctl_cfg = make_config({**cfg.to_dict(), "patience": 0, "resume": False, "quiet": True,
                           "max_steps": 2 * cfg.steps_for(len(y_shuffled))})
    res = fit(model, (X["train"], y_shuffled), (X["val"], Y["val"]), config=ctl_cfg, run_dir=run_dir / "control",
              restore_best=False)  # keep the last weights: they show how much noise was memorised
    device = next(model.parameters()).device
    seen = y_shuffled[:5000]  # training accuracy on (up to) 5,000 of the examples it was trained on
    _, train_acc = evaluate(res.model, (X["train"][:5000], seen), device=device)
    _, val_acc = evaluate(res.model, (X["val"], Y["val"]), device=device)
    majority = float(np.bincount(Y["val"].numpy()).max() / len(Y["val"]))
    train_majority = float(np.bincount(seen.numpy()).max() / len(seen))
    return {**control_verdict(train_acc, val_acc, majority, len(Y["val"]), train_majority, len(seen)),
            "steps": res.steps, "main_run_steps": result.steps}


def closing_words(summary: dict, run_dir: Path) -> str:
    lines = [
        f"test accuracy {summary['test_accuracy']:.4f} (loss {summary['test_loss']:.4f}); chance level: loss "
        f"{summary['chance_loss']:.4f}, majority-class accuracy {summary['chance']['majority_accuracy']:.3f}",
        f"generalisation gap at the sweet spot: train accuracy {summary['train_accuracy']:.4f} vs validation "
        f"{summary['val_accuracy']:.4f} ({summary['generalisation_gap']:+.4f})",
        "wall time: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in summary.get("stage_seconds", {}).items()),
        f"run folder: {run_dir}",
        f"  model artifact:  {run_dir / 'model'} (model.safetensors + manifest.json)",
        f"  summary:         {run_dir / 'summary.json'}",
        f"  metrics per eval: {run_dir / 'metrics.jsonl'}",
        f"  split indices:   {run_dir / 'split.json'}",
        f"  checkpoints:     {run_dir / 'checkpoints'}",
    ]
    for name in ("audit.json", "report.html"):
        if (run_dir / name).exists():
            lines.append(f"  {name + ':':<16} {run_dir / name}")
    return "\n".join(lines)
