"""`glassbox curve DATA --skew COL=VALUE:SHARE`: the model trained on the whole training split against the same
model trained where one group is cut down to SHARE of the training split (the rest unchanged; validation and
test untouched), scored on that group's test examples and on the rest: accuracy, loss and calibration."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from glassbox.config import TrainConfig, schedule
from glassbox.data.kinds import KINDS
from glassbox.errors import UserError
from glassbox.evaluate.calibration import ece, nll
from glassbox.run.curve.training import over_repeats, repeats_words, train_on

SKEW = re.compile(r"^(?P<column>[^=]+)=(?P<value>.*):(?P<share>[^:]+)$")


def parse_skew(text: str) -> tuple[str, str, float]:
    """'sex=Female:0.05' -> ('sex', 'Female', 0.05)."""
    m = SKEW.match(text.strip())
    share = None
    if m:
        try:
            share = float(m["share"])
        except ValueError:
            pass
    if not m or share is None or not m["column"].strip() or not m["value"].strip():
        raise UserError(f"--skew {text!r} is not COL=VALUE:SHARE; write e.g. --skew sex=Female:0.05")
    if not 0 < share < 1:
        raise UserError(f"--skew share must be between 0 and 1 (exclusive): the group's share of the training split "
                        f"after the cut. Got {share:g}")
    return m["column"].strip(), m["value"].strip(), share


def group_values(ex, column: str) -> np.ndarray:
    """Each example's value of `column`: a --group column, one of the inputs' own columns (a table's), or the label."""
    own = KINDS[ex.kind].columns(ex)
    if column in ex.groups:
        return np.array([str(v).strip() for v in ex.groups[column]])
    if column in own:
        return own[column]
    if column in ("label", ex.meta.get("label"), ex.meta.get("label_col")):  # the label itself: a class cut down
        return np.array([ex.classes[i] for i in ex.labels])
    named = list(ex.groups) + list(own) + ["label"]
    raise UserError(f"--skew column {column!r} is not in the data; choose one of: {', '.join(named)}"
                    + (" (the file's other columns: name them with --group)"
                       if not own and "group" in KINDS[ex.kind].settings else ""))


def skewed_indices(values: np.ndarray, value: str, share: float, seed: int) -> tuple[np.ndarray, dict]:
    """The training split's indices with the group cut to `share` of the result (a seeded choice of its
    examples), and what was cut."""
    members, others = np.flatnonzero(values == value), np.flatnonzero(values != value)
    if not len(members):
        counts = dict(zip(*np.unique(values, return_counts=True)))
        shown = ", ".join(f"{v} ({n:,})" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])[:10])
        raise UserError(f"no training example has {value!r}; values in the training split: {shown}")
    keep = round(share * len(others) / (1 - share))
    before = len(members) / len(values)
    if keep >= len(members):
        raise UserError(f"{value!r} is {before:.1%} of the training split already; --skew cuts a group down: give a "
                        f"share below {before:.3f}")
    if keep < 1:
        raise UserError(f"a share of {share:g} leaves no {value!r} example in the training split; give a larger share")
    kept = np.random.default_rng(seed).choice(members, keep, replace=False)
    return np.sort(np.concatenate([others, kept])), {
        "share_before": before, "share_after": keep / (keep + len(others)), "members_before": int(len(members)),
        "members_after": int(keep), "others": int(len(others))}


def skew_compare(split: dict, cfg: TrainConfig, repeats: int, skew: tuple[str, str, float]) -> dict:
    """The whole split against the skewed one, each trained `repeats` times (seed, seed + 1, ...: another random
    start, batch order and choice of the group's kept examples each); the change judged over the repeats."""
    column, value, share = skew
    train_values, test_values = group_values(split["train"], column), group_values(split["test"], column)
    skewed_indices(train_values, value, share, cfg.seed)  # an unknown value or share refused before any training
    in_group = test_values == value
    if not in_group.any():
        raise UserError(f"no test example has {column}={value!r}: nothing to measure the group on; check the value")
    n = len(split["train"])
    steps = schedule(cfg, n, len(split["val"]))["steps"]
    y_test = split["test"].labels
    probs = {"unskewed": [], "skewed": []}
    for r in range(repeats):
        seeded = replace(cfg, seed=cfg.seed + r)
        idx, cut = skewed_indices(train_values, value, share, cfg.seed + r)
        probs["unskewed"].append(train_on(split, np.arange(n), seeded, steps)["probs"])
        probs["skewed"].append(train_on(split, idx, seeded, steps)["probs"])
    out = {"task": "skew", "kind": split["train"].kind, "classes": split["train"].classes, "steps": steps,
           "skew": {"column": column, "value": value, "share": share, **cut}, "n_test": len(y_test),
           "repeats": repeats}
    for which, runs in probs.items():  # each figure the mean of the repeats' (one model's, not an ensemble's)
        out[which] = {part: mean_figures([figures(p[mask], y_test[mask], name) for p in runs]) for part, mask, name in
                      (("group", in_group, f"{column}={value}"), ("rest", ~in_group, "everyone else"))}
    correct = {w: [p.argmax(1) == y_test for p in runs] for w, runs in probs.items()}
    loss = {w: [example_nll(p, y_test) for p in runs] for w, runs in probs.items()}
    pairs = list(zip(correct["skewed"], correct["unskewed"]))
    accuracy = over_repeats([(s_[in_group].astype(float) - u[in_group]) for s_, u in pairs])
    group_loss = over_repeats([s_[in_group] - u[in_group] for s_, u in zip(loss["skewed"], loss["unskewed"])])
    out["group_change"] = {"accuracy": accuracy["mean"], "interval": accuracy["interval"], "accuracy_repeats": accuracy,
                           "loss": group_loss["mean"], "loss_interval": group_loss["interval"],
                           "loss_repeats": group_loss}
    rest = over_repeats([(s_[~in_group].astype(float) - u[~in_group]) for s_, u in pairs]) if (~in_group).any() else None
    out["rest_change"] = {"accuracy": rest["mean"] if rest else 0.0, "interval": rest["interval"] if rest else None}
    out["sentence"] = skew_sentence(out)
    return out


def mean_figures(per_repeat: list[dict]) -> dict:
    """The repeats' figures averaged (their name and count are the same)."""
    first = per_repeat[0]
    return {key: (float(np.mean([f[key] for f in per_repeat])) if key not in ("name", "n") else first[key])
            for key in first}


def figures(probs: np.ndarray, labels: np.ndarray, name: str) -> dict:
    return {"name": name, "n": int(len(labels)), "accuracy": float((probs.argmax(1) == labels).mean()),
            "loss": nll(probs, labels), "ece": ece(probs, labels)}


def example_nll(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))


def skew_sentence(r: dict) -> str:
    s, g = r["skew"], r["group_change"]
    lo, hi = g["interval"]
    said = (f"cutting {s['column']}={s['value']} to {s['share_after']:.1%} of the training split changed that group's "
            f"test accuracy by {100 * g['accuracy']:+.1f} points (95% interval {100 * lo:+.1f} to {100 * hi:+.1f}, "
            f"{r['unskewed']['group']['n']:,} test examples"
            + (f"; {repeats_words(g['accuracy_repeats'], 100, ' points')}" if "accuracy_repeats" in g else "")
            + f"); everyone else's by {100 * r['rest_change']['accuracy']:+.1f}")
    loss_lo, loss_hi = g["loss_interval"]
    said += (f"; its loss by {g['loss']:+.4f} (95% interval {loss_lo:+.4f} to {loss_hi:+.4f}"
             + (f"; {repeats_words(g['loss_repeats'], digits=4)}" if "loss_repeats" in g else "") + ") and its ECE "
             f"{r['unskewed']['group']['ece']:.4f} -> {r['skewed']['group']['ece']:.4f}")
    accuracy, loss = _beyond(g, "accuracy", "interval"), _beyond(g, "loss", "loss_interval")
    if accuracy == "below" or loss == "above":
        return said + ": the group the model saw less of pays for it"
    if accuracy == "above" or loss == "below":
        return said + ": the group did better with fewer examples of it, beyond the noise"
    return said + (": within the noise of its test examples and of the repeats, the evidence of a change is thin"
                   if g.get("loss_repeats", {}).get("repeats", 1) > 1 else
                   ": within the noise of its test examples, the evidence of a change is thin")


def _beyond(change: dict, key: str, interval: str) -> str | None:
    """'above' or 'below' 0 beyond noise (training.over_repeats), or None (a curve.json from before: its interval)."""
    if f"{key}_repeats" in change:
        return change[f"{key}_repeats"]["beyond"]
    lo, hi = change[interval]
    return "above" if lo > 0 else "below" if hi < 0 else None
