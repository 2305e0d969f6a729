"""Read the user's data as every command does: what kind it is, its examples, its labels checked, its test file,
and the split training makes.

`glassbox train`, `audit` and `eval` all read data through here, so they accept and refuse the same files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from glassbox.audit.duplicates import split_keys
from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds import KINDS, detect
from glassbox.data.regression import as_regression, looks_continuous, strata
from glassbox.data.split import split_indices
from glassbox.errors import UserError


def data_format(cfg: TrainConfig) -> dict:
    """How the training file was read (the artifact keeps it, so `glassbox eval` reads a file of the same format
    without the flags being given again)."""
    return {"label": cfg.label, "text": cfg.text, "columns": cfg.columns, "label_from_name": cfg.label_from_name}


def settle_task(ex: Examples, cfg: TrainConfig) -> tuple[Examples, str | None]:
    """The examples as their task trains them (regression: with `targets`), and, where the task was chosen from
    the label, the line that says why and how to choose the other; a classifier's labels are checked."""
    regression = cfg.task == "regression" or (cfg.task == "auto" and KINDS[ex.kind].guesses_regression and looks_continuous(ex))
    if regression and cfg.control:
        raise UserError(f"--control {cfg.control} measures a classifier's memorising against chance accuracy; a "
                        f"regression has no such control yet: drop --control")
    if regression and cfg.label_smoothing and not cfg.sources.get("label_smoothing", "default").startswith("default"):
        raise UserError(f"--label-smoothing {cfg.label_smoothing:g} softens a classifier's class targets; a regression "
                        f"predicts a number and has none: drop --label-smoothing")
    if cfg.task == "regression":
        return as_regression(ex), None
    if regression:
        ex = as_regression(ex)
        return ex, (f"task: regression, because the label '{ex.meta.get('label')}' holds {len(ex.classes):,} distinct "
                    f"numbers ({ex.targets.min():g} to {ex.targets.max():g}); to train a classifier on them instead, "
                    f"give --task classify")
    if cfg.loss != "mse":
        raise UserError(f"--loss {cfg.loss} is a regression loss and this run trains a classifier (cross-entropy); "
                        f"drop --loss, or give --task regression for a numeric label")
    check_labels(ex)
    return ex, None


def check_labels(ex: Examples) -> None:
    counts = np.bincount(ex.labels, minlength=len(ex.classes))
    if len(ex.classes) < 2:
        raise UserError(f"{ex.source} has a single class ({ex.classes[0]!r}); a classifier needs at least two labels")
    if (counts < 2).any():
        rare = [c for c, n in zip(ex.classes, counts) if n < 2]
        numeric = sum(_is_number(c) for c in ex.classes)
        if len(rare) > 10 and numeric > 0.9 * len(ex.classes):
            raise UserError(f"the label looks continuous: {len(ex.classes):,} distinct numbers ({', '.join(ex.classes[:3])}, "
                            f"...), {len(rare):,} of them on a single example; to predict the number, give --task "
                            f"regression; to classify, bin the values into a few classes")
        if len(rare) > 10 and len(ex.classes) > 0.5 * len(ex):
            raise UserError(f"the label has {len(ex.classes):,} distinct values among {len(ex):,} examples, most of them "
                            f"once: is the label column the right one? A classifier needs several examples of each label")
        shown = ", ".join(repr(c if len(c) <= 30 else c[:27] + "...") for c in rare[:5])
        raise UserError(f"{len(rare):,} class(es) have fewer than 2 examples ({shown}{', ...' if len(rare) > 5 else ''}); "
                        f"add examples of them or remove them")


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def load_test(cfg: TrainConfig, ex: Examples) -> Examples:
    """The user's own test file (--test), read like the training data, its labels mapped onto the training classes."""
    kind = KINDS[ex.kind]
    if not Path(cfg.test).exists():
        raise UserError(f"--test {cfg.test} not found; give your own held-out test file or folder, or drop --test "
                        f"to carve a test split from the data")
    found = detect(cfg.test, cfg)
    if found is not kind:
        raise UserError(f"--test {cfg.test} holds {found.plural} but the training data holds "
                        f"{kind.plural}; give a test file of the same kind and format")
    regression = ex.targets is not None  # a regression's test labels are numbers, not classes seen in training
    test = kind.load(cfg.test, cfg, classes=None if regression else ex.classes, **kind.shape_of(ex))
    return as_regression(test, must_vary=False) if regression else align_test(test, ex.classes)


def align_test(test: Examples, classes: list[str]) -> Examples:
    """Map a user test file's labels onto the training classes ('>50K.' -> '>50K' where needed)."""
    index = {c: i for i, c in enumerate(classes)}
    names = [test.classes[i] for i in test.labels]
    fixed = [n if n in index else n.rstrip(".") for n in names]
    unknown = sorted({n for n in fixed if n not in index})
    if unknown:
        raise UserError(f"the test file has labels never seen in training: {', '.join(unknown[:5])}; "
                        f"training labels are: {', '.join(classes)}")
    test.labels = np.array([index[n] for n in fixed], dtype=np.int64)
    test.classes = classes
    return test


def split_for(ex: Examples, cfg: TrainConfig, has_test: bool) -> dict[str, np.ndarray]:
    """The split `glassbox train` makes (and `glassbox audit` checks for leakage): seeded and stratified; identical
    examples and near copies stay in one split. With the user's own --test file: train and validation only."""
    keys = split_keys(ex)
    labels = ex.labels if ex.targets is None else strata(ex.targets)  # a regression's split spans the target's range
    if has_test:
        return split_indices(keys, labels, (1 - cfg.val_fraction, cfg.val_fraction), cfg.seed, names=("train", "val"))
    fractions = (1 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction, cfg.test_fraction)
    return split_indices(keys, labels, fractions, cfg.seed)
