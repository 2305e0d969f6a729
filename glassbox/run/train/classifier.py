"""A run on labelled examples, top to bottom: examples -> split -> audit gate -> encoders fitted on the training
split -> the task's targets -> model -> the loop -> the task's scores and figures, cost -> frozen artifact -> the
shared finish. The task (classify.py: classes; regression.py: a number) owns its loss, chance level, scores,
figures, artifact record and closing lines; this file never asks which task it runs.

start.py calls `run_classifier` once the settings and the run folder are ready."""
from __future__ import annotations

from pathlib import Path

import torch

from glassbox.config import TrainConfig
from glassbox.errors import UserError
from glassbox.export.artifact import save_artifact
from glassbox.models.registry import build_model
from glassbox.run.audit_step import audit_examples, gate, headline
from glassbox.run.train.cost import measure_cost
from glassbox.data.builtin import BUILTIN
from glassbox.data.kinds import KINDS, detect
from glassbox.run.data import data_format, load_test, settle_task, split_for
from glassbox.run.train.finish import finish, finish_diverged, say
from glassbox.run.model_for_data import make_encoder, model_config
from glassbox.run.out_of_fold import TRAIN_FOLD_FLOPS
from glassbox.run.settings import add_derived
from glassbox.runtime import distributed
from glassbox.runtime.files import write_json
from glassbox.run.train.classify import Classify
from glassbox.run.train.regression import Regress
from glassbox.train.loop import fit
from glassbox.train.progress import Laps

def task_for(ex, cfg: TrainConfig):
    """The task the examples train for: a regression where run/data.py settled on one (the labels as numbers),
    else classification."""
    return (Regress if ex.targets is not None else Classify)(cfg)


def run_classifier(cfg: TrainConfig, run_dir: Path) -> dict:
    lap = Laps()  # wall time of each stage, for the summary: what the honesty costs next to training
    ex, test, parts = load_and_split(cfg, run_dir)
    distributed.share(cfg.batch_size, distributed.current().world_size, len(parts["train"]))  # before the audit
    lap("data")
    audit = gate(lambda: audit_examples(ex, test, parts if test is None else None, folds=5, seed=cfg.seed,
                                        device=cfg.device, max_flops=TRAIN_FOLD_FLOPS, show=not cfg.quiet), cfg, run_dir)
    lap("audit")
    task = task_for(ex, cfg)
    split, encoder, X, Y = encode_parts(ex, test, parts, cfg, task)
    say(cfg, f"split: train {len(Y['train'])}, validation {len(Y['val'])}, test {len(Y['test'])} "
             f"({'your --test file' if test is not None else 'carved from the data'}); identical examples never cross splits")
    torch.manual_seed(cfg.seed)
    arch, config = model_config(split["train"], encoder, cfg)
    model = build_model(arch, config)
    say(cfg, f"model: {arch} with {sum(p.numel() for p in model.parameters()):,} weights, all random to start")
    add_derived(cfg, run_dir, len(Y["train"]), len(Y["val"]))
    lap("data")  # encoding and model set-up
    result = fit(model, (X["train"], Y["train"]), (X["val"], Y["val"]), config=cfg, run_dir=run_dir,
                 augment=KINDS[ex.kind].augment(encoder), loss_fn=task.fit_loss, chance_fn=task.chance_fn)
    lap("training")
    dist = distributed.leave()  # every process leaves the group together: what follows waits for no peer
    if not dist.is_main:  # the other ranks helped train; rank 0 evaluates, runs the control and writes, alone
        return {"rank": dist.rank, "steps": result.steps}
    if result.diverged and not result.diverged["restored"]:
        return finish_diverged(result, {"task": task.name, "data": ex.source, "kind": ex.kind, "model": arch,
                                        "n_params": sum(p.numel() for p in model.parameters()), "classes": ex.classes,
                                        "audit": headline(audit)},
                               cfg, run_dir, lap)
    summary = task.scores(result, X, Y, split, ex, arch, audit)
    lap("evaluation")
    summary.update(post_training(result, X, Y, split, arch, config, cfg, run_dir, lap, task))
    kept = task.artifact_record(summary, ex)
    summary["artifact"] = str(save_artifact(
        run_dir / "model", result.model, arch, config, task=task.name, classes=kept["classes"],
        seen_keys=split["train"].keys + split["val"].keys, encoder=encoder.to_dict(), data_fingerprint=ex.fingerprint(),
        extra={"data_format": data_format(cfg), "inference_flops": summary["cost"]["inference"]["flops"],
               **kept["extra"]}))
    lap("export")
    return finish(summary, cfg, run_dir, lap, lambda s: task.closing_words(s, run_dir))


def load_and_split(cfg: TrainConfig, run_dir: Path, command: str = "train"):
    """The examples, the user's --test file (or None) and the split, written to RUN/split.json. `command` names a
    command that takes a classifier's data only (explain, curve): a numeric label is refused there."""
    data = str(cfg.data)
    kind = detect(data, cfg)
    ex, note = settle_task(kind.load(data, cfg), cfg)
    if ex.targets is not None and command != "train":
        raise UserError(f"glassbox {command} takes a classifier's data for now, and the label '{ex.meta.get('label')}' "
                        f"is a number (a regression): train it with glassbox train, or pick a label column of classes")
    if note:
        say(cfg, note)
    if ex.targets is None:
        say(cfg, f"data: {len(ex)} {ex.kind} examples, {len(ex.classes)} classes ({', '.join(ex.classes[:10])}) from {ex.source}")
    else:
        label = f"label '{ex.meta['label']}'" if ex.meta.get("label") else "labels"
        say(cfg, f"data: {len(ex)} {ex.kind} examples from {ex.source}; {label}: numbers from "
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


def encode_parts(ex, test, parts: dict, cfg: TrainConfig, task=None) -> tuple[dict, object, dict, dict]:
    """The split's examples, the encoder fitted on the training split alone, and each part's inputs and targets
    (the task's: class indices, or a regression's standardised numbers)."""
    split = {"train": ex.subset(parts["train"]), "val": ex.subset(parts["val"]),
             "test": test if test is not None else ex.subset(parts["test"])}
    encoder = make_encoder(split["train"], cfg)  # statistics from the training split only
    X = {name: encoder.encode(part.inputs) for name, part in split.items()}
    return split, encoder, X, (task or task_for(ex, cfg)).targets(split)


def post_training(result, X: dict, Y: dict, split: dict, arch: str, config: dict, cfg: TrainConfig, run_dir: Path,
                  lap: Laps, task) -> dict:
    """The task's figures (calibration or prediction intervals, per-class and per-group), the cost ledger, and the
    memorisation control."""
    model = result.model
    extras = task.figures(model, X, Y, split)
    batch = (X["train"][:cfg.batch_size], Y["train"][:cfg.batch_size])  # its labels count only as a shape
    sizes = KINDS[split["test"].kind].input_sizes(X["test"])  # texts: one prediction's cost grows with its length
    extras["cost"] = measure_cost(model, batch, X["test"], len(X["val"]), result, cfg, task.loss_fn, sizes)
    lap("evaluation")
    for sentence in (task.first_sentence(extras), *extras.get("groups", {}).get("sentences", []),
                     extras["cost"]["sentence"]):
        say(cfg, sentence)
    if cfg.control == "shuffled-labels":
        say(cfg, "memorisation control: training the same model again on shuffled labels")
        extras["control"] = task.control(X, Y, arch, config, run_dir, result)
        lap("control")
        say(cfg, extras["control"]["sentence"])
    return extras
