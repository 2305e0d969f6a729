"""`glassbox curve DATA`: what more examples buy. The same model trained on 1/32, 1/16, ..., 1/2 and all of the
training split (seeded, stratified, nested subsets; the same validation and test split for every size; every size
given the full split's number of updates and stopped at its own sweet spot), scored on the same test examples.
With --skew COL=VALUE:SHARE, the model trained on the whole split against one where that group is cut down
(curve_skew.py); for language models, the same by corpus size (curve_lm.py).

    settings (as for train) -> run folder -> data and the one split -> one fit per size and repeat -> terminal,
    curve.json, curve.html
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from glassbox.config import TrainConfig, schedule
from glassbox.errors import UserError
from glassbox.report.curve_page import curve_lines, curve_page
from glassbox.run.train.finish import say
from glassbox.run.folder import prepare_run_dir
from glassbox.run.settings import settings_for_new_run
from glassbox.run.train.start import remove_if_empty
from glassbox.run.curve import REPEATS
from glassbox.run.curve.training import FRACTIONS, nested_subsets, over_repeats, repeats_words, train_on
from glassbox.runtime.files import atomic_write, write_json

PAYS = 0.005        # a doubling pays when it buys at least half a point of test accuracy, beyond the noise


def curve(data: str | None = None, *, sources: dict | None = None, repeats: int = REPEATS, skew: str | None = None,
          **settings) -> dict:
    """Train on growing shares of the training split (or, with `skew`, on the whole split against a skewed one);
    returns what RUN/curve.json holds."""
    if not isinstance(repeats, int) or repeats < 1:
        raise UserError(f"--repeats must be a whole number of at least 1. Got {repeats!r}")
    given = {k.replace("-", "_"): v for k, v in {**settings, "data": data}.items() if v is not None}
    refuse_unused(given, "curve")
    cfg = settings_for_new_run(given, sources)
    if skew:
        from glassbox.run.curve.skew import parse_skew

        skew = parse_skew(skew)  # a malformed --skew is refused before any data is read
        if cfg.task == "lm":
            raise UserError("--skew cuts a group of labelled examples; a language model's corpus has none: drop --skew")
    run_dir = prepare_run_dir(cfg, str(cfg.data))
    try:
        result = measure(cfg, run_dir, repeats, skew)
    except UserError:
        if not cfg.out:  # bad input found before anything worth keeping: no empty folder left behind
            remove_if_empty(run_dir)
        raise
    result.update(data=str(cfg.data), repeats=repeats, seed=cfg.seed)
    write_json(run_dir / "curve.json", result)
    atomic_write(run_dir / "curve.html", curve_page(result).encode("utf-8"))
    say(cfg, "\n".join([*curve_lines(result), f"written: {run_dir / 'curve.html'} and {run_dir / 'curve.json'}"]))
    return result


UNUSED = ("control", "resume", "strict", "force", "tensorboard")  # train's run-folder and audit settings


def refuse_unused(given: dict, command: str) -> None:
    """A train setting this command would ignore is refused, as train refuses one it would ignore."""
    unused = [k for k in UNUSED if given.get(k)]
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise UserError(f"glassbox {command} trains no run of its own to resume, audit or control; drop {flags}")


def measure(cfg: TrainConfig, run_dir, repeats: int, skew: tuple | None) -> dict:
    """The sizes (or the skew) trained and scored: what curve.json holds but the data's name."""
    if cfg.task == "lm":
        from glassbox.run.curve.lm import lm_curve

        return lm_curve(cfg, run_dir, repeats)
    from glassbox.run.train.classifier import load_and_split

    ex, test, parts = load_and_split(cfg, run_dir, "curve")
    split = {"train": ex.subset(parts["train"]), "val": ex.subset(parts["val"]),
             "test": test if test is not None else ex.subset(parts["test"])}
    if skew:
        from glassbox.run.curve.skew import skew_compare

        return skew_compare(split, cfg, repeats, skew)
    return size_curve(split, cfg, repeats)


def size_curve(split: dict, cfg: TrainConfig, repeats: int) -> dict:
    """Every size trained `repeats` times (seed, seed + 1, ...: another subset and another random start each)."""
    n, y_test = len(split["train"]), split["test"].labels
    steps = schedule(cfg, n, len(split["val"]))["steps"]
    runs = []  # runs[r][i]: repeat r at size i
    for r in range(repeats):
        seeded = replace(cfg, seed=cfg.seed + r)
        runs.append([train_on(split, idx, seeded, steps) for idx in nested_subsets(split["train"].labels, FRACTIONS,
                                                                                    cfg.seed + r)])
    # each test example's correctness and loss, per repeat and size
    correct = [[run[i]["probs"].argmax(1) == y_test for i in range(len(FRACTIONS))] for run in runs]
    losses = [[-np.log(np.maximum(run[i]["probs"][np.arange(len(y_test)), y_test], 1e-12))
               for i in range(len(FRACTIONS))] for run in runs]
    points = [size_point([run[i] for run in runs]) for i in range(len(FRACTIONS))]
    for i in range(1, len(points)):
        gain = over_repeats([c[i].astype(float) - c[i - 1] for c in correct])
        drop = over_repeats([loss[i - 1] - loss[i] for loss in losses])
        points[i].update(gain=gain["mean"], gain_interval=gain["interval"], gain_repeats=gain,
                         loss_drop=drop["mean"], loss_drop_interval=drop["interval"], loss_drop_repeats=drop)
    counts = np.bincount(split["train"].labels, minlength=len(split["train"].classes))
    return {"task": "classify", "kind": split["train"].kind, "classes": split["train"].classes, "steps": steps,
            "n_train": n, "n_val": len(split["val"]), "n_test": len(y_test), "points": points,
            "chance_accuracy": float((y_test == counts.argmax()).mean()),
            "chance_loss": float(np.log(len(split["train"].classes))), "sentence": paying_sentence(points)}


def size_point(trained: list[dict]) -> dict:
    """One size over its repeats: means, and the lowest and highest test accuracy."""
    mean = lambda key: float(np.mean([t[key] for t in trained]))  # noqa: E731
    acc = [t["test_accuracy"] for t in trained]
    return {"n": trained[0]["n"], "test_accuracy": mean("test_accuracy"), "test_loss": mean("test_loss"),
            "train_accuracy": mean("train_accuracy"), "val_accuracy": mean("val_accuracy"),
            "gap": mean("train_accuracy") - mean("val_accuracy"), "test_accuracy_range": [min(acc), max(acc)],
            "best_steps": [t["best_step"] for t in trained], "steps": [t["steps"] for t in trained]}


def beyond(point: dict, key: str) -> str | None:
    """'above' or 'below' 0 beyond noise (training.over_repeats), or None; a curve.json from before the repeats were
    judged has the test examples' interval alone."""
    if f"{key}_repeats" in point:
        return point[f"{key}_repeats"]["beyond"]
    lo, hi = point[f"{key}_interval"]
    return "above" if lo > 0 else "below" if hi < 0 else None


def paying_sentence(points: list[dict]) -> str:
    """Where more examples stopped paying: the doublings after which every later one bought under PAYS or was
    within the noise (its test examples' 95% interval reaching 0, or from 2 repeats on a repeat on the other side)."""
    pays = [p["gain"] >= PAYS and beyond(p, "gain") == "above" for p in points[1:]]
    last = points[-1]
    lo, hi = last["loss_drop_interval"]
    said = (f"the last doubling ({points[-2]['n']:,} -> {last['n']:,} examples) bought {100 * last['gain']:+.1f} points "
            f"of test accuracy (95% interval {100 * last['gain_interval'][0]:+.1f} to {100 * last['gain_interval'][1]:+.1f}"
            + (f"; {repeats_words(last['gain_repeats'], 100, ' points')}" if "gain_repeats" in last else "") + ") "
            + (f"and lowered test loss by {last['loss_drop']:+.4f} ({lo:+.4f} to {hi:+.4f})" if last["loss_drop"] >= 0
               else f"and raised test loss by {-last['loss_drop']:+.4f} ({-hi:+.4f} to {-lo:+.4f})"))
    if pays[-1]:
        return said + ": more examples were still paying at the full size; more data would likely help"
    if beyond(last, "loss_drop") == "above":
        said += "; in accuracy it no longer paid, but test loss still fell beyond its noise: the model grew surer"
    still = [i for i, p in enumerate(pays) if p]
    if not still:
        return said + ("; no doubling bought a clear half point: beyond the smallest size, more examples of this data "
                       "did not pay (or the test set is too small to tell)")
    stop = points[still[-1] + 1]["n"]
    return said + f"; more examples stopped paying after about {stop:,}: every later doubling bought under half a point " \
                  f"or was within the noise"
