"""A classifier run, top to bottom: examples -> split -> audit gate -> encoders fitted on the training split ->
model -> the loop -> scores, calibration, groups, cost -> frozen artifact -> the shared finish.

start.py calls `run_classifier` once the settings and the run folder are ready."""
from __future__ import annotations

from pathlib import Path

import torch

from glassbox.config import TrainConfig
from glassbox.errors import UserError
from glassbox.evaluate.temperature import manifest_record
from glassbox.export.artifact import save_artifact
from glassbox.models.registry import build_model
from glassbox.run.after_training import classifier_figures, run_control
from glassbox.run.audit_step import audit_examples, gate, headline
from glassbox.run.cost import measure_cost
from glassbox.data.regression import TargetScale
from glassbox.data.builtin import BUILTIN
from glassbox.run.data import data_format, kind_of, load_test, settle_task, split_for
from glassbox.run.finish import RUN_FILES, finish, finish_diverged, folder_lines, say, training_record
from glassbox.run.model_for_data import make_encoder, model_config
from glassbox.run.out_of_fold import TRAIN_FOLD_FLOPS
from glassbox.run.settings import add_derived
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json
from glassbox.run import regression
from glassbox.train.loop import chance_level, cross_entropy, evaluate, fit, predict_logits
from glassbox.train.regression import LOSSES, mean_prediction_chance
from glassbox.train.progress import Laps

PARTS = ("train", "val", "test")


def run_classifier(cfg: TrainConfig, run_dir: Path) -> dict:
    lap = Laps()  # wall time of each stage, for the summary: what the honesty costs next to training
    ex, test, parts = load_and_split(cfg, run_dir)
    lap("data")
    audit = gate(lambda: audit_examples(ex, test, parts if test is None else None, folds=5, seed=cfg.seed,
                                        device=cfg.device, max_flops=TRAIN_FOLD_FLOPS, show=not cfg.quiet), cfg, run_dir)
    lap("audit")
    split, encoder, X, Y = encode_parts(ex, test, parts, cfg)
    scale = TargetScale.fit(split["train"].targets) if ex.targets is not None else None  # as encode_parts fits it
    task = "classify" if scale is None else "regression"
    say(cfg, f"split: train {len(Y['train'])}, validation {len(Y['val'])}, test {len(Y['test'])} "
             f"({'your --test file' if test is not None else 'carved from the data'}); identical examples never cross splits")
    torch.manual_seed(cfg.seed)
    arch, config = model_config(split["train"], encoder, cfg)
    model = build_model(arch, config)
    say(cfg, f"model: {arch} with {sum(p.numel() for p in model.parameters()):,} weights, all random to start")
    add_derived(cfg, run_dir, len(Y["train"]), len(Y["val"]))
    lap("data")  # encoding and model set-up
    loss_fn = cross_entropy if scale is None else LOSSES[cfg.loss]
    result = fit(model, (X["train"], Y["train"]), (X["val"], Y["val"]), config=cfg, run_dir=run_dir,
                 augment=image_augment(encoder) if ex.kind == "image" else None, loss_fn=None if scale is None else loss_fn,
                 chance_fn=chance_level if scale is None else mean_prediction_chance)
    lap("training")
    if not distributed.current().is_main:  # the other ranks helped train; rank 0 evaluates and writes
        return {"rank": distributed.current().rank, "steps": result.steps}
    if result.diverged and not result.diverged["restored"]:
        return finish_diverged(result, {"task": task, "data": ex.source, "kind": ex.kind, "model": arch,
                                        "n_params": sum(p.numel() for p in model.parameters()), "classes": ex.classes,
                                        "audit": headline(audit)},
                               cfg, run_dir, lap)
    if scale is None:
        summary = scores(result, X, Y, ex, arch, cfg, audit)
    else:
        summary = regression.regression_scores(result, X, Y, split, ex, arch, cfg, audit, scale, loss_fn)
    lap("evaluation")
    summary.update(post_training(result, X, Y, split, arch, config, cfg, run_dir, lap, scale, loss_fn))
    summary["artifact"] = str(save_artifact(
        run_dir / "model", result.model, arch, config, task=task, classes=ex.classes if scale is None else None,
        seen_keys=split["train"].keys + split["val"].keys, encoder=encoder.to_dict(), data_fingerprint=ex.fingerprint(),
        extra={"data_format": data_format(cfg), "inference_flops": summary["cost"]["inference"]["flops"],
               **(manifest_record(summary["calibration"]) if scale is None else
                  {"target": summary["target"], "interval": {k: v for k, v in summary["interval"].items()
                                                            if k not in ("test", "sentence")}})}))
    lap("export")
    closing = closing_words if scale is None else regression.closing_words
    return finish(summary, cfg, run_dir, lap, lambda s: closing(s, run_dir))


def load_and_split(cfg: TrainConfig, run_dir: Path, command: str = "train"):
    """The examples, the user's --test file (or None) and the split, written to RUN/split.json. `command` names a
    command that takes a classifier's data only (explain, curve): a numeric label is refused there."""
    data = str(cfg.data)
    kind = kind_of(data, cfg)
    ex, note = settle_task(kind.load(data, cfg), cfg)
    if ex.targets is not None and command != "train":
        raise UserError(f"glassbox {command} takes a classifier's data for now, and the label '{ex.meta.get('label')}' "
                        f"is a number (a regression): train it with glassbox train, or pick a label column of classes")
    if note:
        say(cfg, note)
    if ex.targets is None:
        say(cfg, f"data: {len(ex)} {ex.kind} examples, {len(ex.classes)} classes ({', '.join(ex.classes[:10])}) from {ex.source}")
    else:
        say(cfg, f"data: {len(ex)} {ex.kind} examples from {ex.source}; label '{ex.meta.get('label')}': numbers from "
                 f"{ex.targets.min():g} to {ex.targets.max():g} (mean {ex.targets.mean():.4g}), a regression")
    for line in kind.notes(ex):
        say(cfg, line)
    test = None
    if cfg.test:
        if data in BUILTIN:
            raise UserError(f"'{data}' is built in and carves its own test split; drop --test")
        test = load_test(cfg, ex)
    parts = split_for(ex, cfg, has_test=test is not None)
    empty = [name for name, idx in parts.items() if not len(idx)]
    if empty:
        hint = "add examples" + (", or pass your own --test FILE" if test is None else "")
        raise UserError(f"{len(ex):,} examples are too few to split: the {' and '.join(empty)} split would be empty "
                        f"(validation {cfg.val_fraction:.0%}{'' if test is not None else f', test {cfg.test_fraction:.0%}'}, "
                        f"copies kept together); {hint}")
    if distributed.current().is_main:
        write_json(run_dir / "split.json", {name: idx.tolist() for name, idx in parts.items()})
    return ex, test, parts


def encode_parts(ex, test, parts: dict, cfg: TrainConfig) -> tuple[dict, object, dict, dict]:
    """The split's examples, the encoder fitted on the training split alone, and each part's inputs and labels."""
    split = {"train": ex.subset(parts["train"]), "val": ex.subset(parts["val"]),
             "test": test if test is not None else ex.subset(parts["test"])}
    encoder = make_encoder(split["train"], cfg)  # statistics from the training split only
    X = {name: encoder.encode(part.inputs) for name, part in split.items()}
    if ex.targets is None:
        Y = {name: torch.from_numpy(part.labels) for name, part in split.items()}
    else:  # the model learns the target standardised by the training split's mean and standard deviation
        scale = TargetScale.fit(split["train"].targets)
        Y = {name: scale.standardise(part.targets) for name, part in split.items()}
    return split, encoder, X, Y


def image_augment(encoder):
    """Shifts for every image; for photos also mirror images and soft focus (still photos of the same thing)."""
    from glassbox.data.augment import ImageAugment

    photos = encoder.channels == 3
    return ImageAugment(flip=photos, shift=max(1, encoder.size // 8), blur=0.15 if photos else 0.0)


def scores(result, X: dict, Y: dict, ex, arch: str, cfg: TrainConfig, audit: dict) -> dict:
    """Loss and accuracy on each split at the sweet spot, with what the loop measured."""
    model = result.model
    device = next(model.parameters()).device
    s = {name: evaluate(model, (X[name][:5000], Y[name][:5000]) if name == "train" else (X[name], Y[name]), device=device)
         for name in PARTS}  # training figures on (up to) 5,000 of its examples
    return {
        "task": "classify", **training_record(result, ex, arch, cfg, audit), "classes": ex.classes,
        "n_examples": {k: len(v) for k, v in Y.items()},
        **{f"{name}_loss": s[name][0] for name in PARTS}, **{f"{name}_accuracy": s[name][1] for name in PARTS},
        "generalisation_gap": s["train"][1] - s["val"][1],
    }


def post_training(result, X: dict, Y: dict, split: dict, arch: str, config: dict, cfg: TrainConfig, run_dir: Path,
                  lap: Laps, scale: TargetScale | None = None, loss_fn=cross_entropy) -> dict:
    """Calibration (a regression: prediction intervals), per-class and per-group figures, the cost ledger, and the
    memorisation control."""
    model = result.model
    device = next(model.parameters()).device
    if scale is None:
        logits = {name: predict_logits(model, X[name], device=device) for name in ("val", "test")}
        extras = classifier_figures(logits, Y, split["test"].groups, split["test"].classes, cfg.seed)
    else:
        extras = regression.regression_figures(model, X, split, scale, cfg.seed)
    batch = (X["train"][:cfg.batch_size], Y["train"][:cfg.batch_size])  # its labels count only as a shape
    extras["cost"] = measure_cost(model, batch, X["test"][:1], len(X["val"]), result, cfg, loss_fn)
    lap("evaluation")
    first = extras["calibration"] if scale is None else extras["interval"]
    for sentence in (first["sentence"], *extras.get("groups", {}).get("sentences", []),
                     extras["cost"]["sentence"]):
        say(cfg, sentence)
    if cfg.control == "shuffled-labels":
        say(cfg, "memorisation control: training the same model again on shuffled labels")
        extras["control"] = run_control(X, Y, arch, config, cfg, run_dir, result)
        lap("control")
        say(cfg, extras["control"]["sentence"])
    return extras


def closing_words(summary: dict, run_dir: Path) -> str:
    return "\n".join([
        f"test accuracy {summary['test_accuracy']:.4f} (loss {summary['test_loss']:.4f}); chance level: loss "
        f"{summary['chance_loss']:.4f}, majority-class accuracy {summary['chance']['majority_accuracy']:.3f}",
        f"generalisation gap at the sweet spot: train accuracy {summary['train_accuracy']:.4f} vs validation "
        f"{summary['val_accuracy']:.4f} ({summary['generalisation_gap']:+.4f})",
        "wall time: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in summary.get("stage_seconds", {}).items()),
        *folder_lines(run_dir, RUN_FILES),
    ])
