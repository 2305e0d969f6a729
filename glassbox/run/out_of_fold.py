"""Out-of-fold predicted probabilities: every example scored by a quick model that never saw it.

cleanlab's label-error finding needs these: a model scored on its own training data agrees with
every label it was given, right or wrong. Folds are stratified and duplicate-aware (identical inputs
share a fold), so a copy of an example cannot vouch for its label from the training side. Each kind of
data gets a quick version of the model glassbox trains on it: fastText-style for text, the MLP for
tables, a narrow CNN for images.

    folds = FoldModels(examples, k=5)     # encodes the inputs once; folds.flops: what training them costs
    probs = folds.probabilities()         # (N, n_classes), rows sum to 1
    probs = out_of_fold_probs(examples)   # the same in one call
    report = run_audit(examples, pred_probs=probs)
"""
from __future__ import annotations

import functools
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from glassbox.config import TrainConfig
from glassbox.data.examples import Examples
from glassbox.data.kinds import KINDS
from glassbox.errors import UserError
from glassbox.runtime import distributed
from glassbox.runtime.device import pick_device
from glassbox.runtime.processes import map_forked, parallel_workers
from glassbox.train.loop import fit, predict_logits
from glassbox.train.progress import Progress
from glassbox.runtime.threads import forward_flops
from glassbox.models.registry import build_model
from glassbox.run.model_for_data import make_encoder, model_config

# How each kind's fold models train (its `fold`, glassbox/data/kinds): a few quick epochs (k folds must cost less
# than one careful training run), early stopping on a tenth of the training folds, on the training run's model with a
# few of its config fields replaced, and at least a minimum of updates per fold on small data sets. Text and table
# models are far below the size where a second CPU thread helps, so they train on one without timing it first. On a
# multi-core Linux CPU every kind's folds train side by side, one thread each (FoldModels.probabilities); otherwise
# image fold models time 1 thread against torch's count on the first fold (glassbox/train/thread_choice.py) and the
# rest follow. docs/benchmarks.md has the measurements.


def duplicate_aware_folds(keys: list[str], labels: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold 0..k-1 of each example: identical keys share a fold; each class is spread evenly over folds.

    Groups of identical keys are dealt round-robin within their (first) label, largest groups first,
    so fold sizes and class shares come out nearly equal."""
    codes, _ = pd.factorize(pd.Series(keys, dtype=object))
    n_groups = codes.max() + 1
    size = np.bincount(codes, minlength=n_groups)
    _, first = np.unique(codes, return_index=True)
    label = np.asarray(labels)[first]
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    for c in np.unique(label):
        groups = np.flatnonzero(label == c)
        groups = groups[rng.permutation(len(groups))]
        groups = groups[np.argsort(-size[groups], kind="stable")]  # big groups first, ties in random order
        fold_of_group[groups] = (np.arange(len(groups)) + rng.integers(k)) % k
    return fold_of_group[codes]


class FoldModels:
    """k quick models of the data's kind, each trained without one fold and scoring that fold.

    config:  TrainConfig for each fold (default: the kind's fold plan); model: the fold model's config fields
             (FastTextConfig, MLPConfig or CNNConfig); encoder: HashedNgramEncoder arguments (text).
    threads: torch CPU threads while training (default: the config's, else as `glassbox train` picks).
    device:  where the fold models train (default: the config's; image models: a GPU if there is one).

    Every encoder is fitted on all the examples: which n-grams occur, a column's mean and spread, an image
    channel's mean are read from the inputs alone, never the labels, so sharing them leaks nothing about a
    held-out label, and the inputs are encoded once instead of k times."""

    def __init__(self, examples: Examples, k: int = 5, seed: int = 0, config: TrainConfig | None = None,
                 model: dict | None = None, encoder: dict | None = None, threads: int | None = None,
                 device: str | None = None):
        plan = KINDS[examples.kind].fold
        if plan is None:
            raise ValueError(f"no fold model for {examples.kind!r} examples: they have no labels to check")
        self.min_steps = plan.min_steps
        self.examples, self.k, self.seed, self.threads = examples, k, seed, threads
        self.folds = duplicate_aware_folds(examples.keys, examples.labels, k, seed)
        few = too_few(examples, k)
        if few:
            raise UserError(few)
        if np.bincount(self.folds, minlength=k).min() < 2:
            raise UserError(f"--folds {k} leaves a fold (nearly) empty with {len(examples):,} examples; use fewer "
                            f"folds (the default is 5)")
        self.config = replace(config or plan.config, seed=seed)
        if device is not None:
            self.config = replace(self.config, device=device)
        enc = make_encoder(examples, self.config, **(encoder or {}))
        self.x = enc.encode(examples.inputs)
        self.arch, self.model_config = model_config(examples, enc, self.config, **{**plan.model, **(model or {})})

    def make_model(self) -> nn.Module:
        return build_model(self.arch, self.model_config)

    def epochs(self, n_train: int) -> float:
        cfg = self.config
        return max(cfg.epochs or 1, self.min_steps * cfg.batch_size / max(1, n_train))

    @functools.cached_property
    def batch_flops(self) -> int:
        """FLOPs of one fold model's forward pass over one batch."""
        return forward_flops(self.make_model(), self.x[:self.config.batch_size])

    @property
    def flops(self) -> float:
        """FLOPs of training all k fold models (forward and backward, 3x the forward pass) if none stops early."""
        n = len(self.examples)
        n_train = 0.9 * n * (self.k - 1) / self.k
        per_example = self.batch_flops / min(self.config.batch_size, n)
        return 3.0 * per_example * self.k * self.epochs(int(n_train)) * n_train

    def probabilities(self, show: bool = False, while_waiting=None) -> np.ndarray:
        """(N, n_classes) probabilities, each row from the fold model that did not train on that example.
        show: a progress bar of the fold models on a terminal (stderr). On a CPU with several cores the folds train
        in forked processes of one thread each, as many at once as there are cores (runtime/processes.py);
        while_waiting(): run meanwhile in this process. Each fold's result depends only on its seed and thread count."""
        probs = np.zeros((len(self.examples), len(self.examples.classes)))
        bar = Progress(self.k, quiet=not show, label="audit: label check, fold models", stream=sys.stderr)
        workers = parallel_workers(self.k) if self.on_cpu and distributed.current().world_size == 1 else 1
        if workers > 1 and (self.threads or self.config.threads or 1) == 1:
            # PyTorch's optimizers import torch._dynamo at their first step (a second or more); imported here once,
            # every worker inherits it instead of importing it again, and the training run after the audit needs it too
            import torch._dynamo  # noqa: F401
            done = []

            def finished(fold, rows):
                probs[self.folds == fold] = rows
                done.append(fold)
                bar.step(len(done))

            map_forked(lambda fold: self.fold_probabilities(fold, 1)[0], range(self.k), workers,
                       on_result=finished, while_waiting=while_waiting)
        else:
            threads = self.threads or self.config.threads  # None: the first fold's fit times the counts, the rest reuse it
            for fold in range(self.k):
                probs[self.folds == fold], threads = self.fold_probabilities(fold, threads)
                bar.step(fold + 1)
            if while_waiting is not None:
                while_waiting()
        bar.close()
        return probs

    @property
    def on_cpu(self) -> bool:
        return pick_device(self.config.device).type == "cpu"

    def fold_probabilities(self, fold: int, threads: int | None) -> tuple:
        """(probabilities of fold `fold`'s examples from a model trained on the other folds, the thread count it
        trained on)."""
        ex, x = self.examples, self.x
        labels = torch.tensor(ex.labels, dtype=torch.long)  # a copy: tabular labels may be read-only
        held = np.flatnonzero(self.folds == fold)
        rest = np.flatnonzero(self.folds != fold)
        # Early stopping needs data the fold model does not train on: a tenth of the other folds.
        sub = duplicate_aware_folds([ex.keys[i] for i in rest], ex.labels[rest], 10, self.seed + fold + 1)
        train, val = rest[sub != 0], rest[sub == 0]
        if not len(val):  # copies crowded into a few folds: no held-out part is left to stop on
            val = train
        torch.manual_seed(self.seed + fold)  # the initial weights follow the seed too, not whatever ran before
        net = self.make_model()
        fold_cfg = replace(self.config, seed=self.seed + fold, threads=threads, epochs=self.epochs(len(train)))
        with distributed.local():  # under torchrun every rank trains the same fold models on its own
            result = fit(net, (x[train], labels[train]), (x[val], labels[val]), config=fold_cfg)
        device = next(result.model.parameters()).device
        rows = torch.softmax(predict_logits(result.model, x[held], device=device), dim=-1).numpy()
        return rows, threads or result.threads


MIN_PER_FOLD = 10  # fewer examples per fold and the fold models learn too little to doubt a label


def too_few(examples: Examples, k: int) -> str | None:
    """Why k-fold checking cannot work on these examples (too few of them), or None."""
    if len(examples) < MIN_PER_FOLD * k:
        return (f"not checked: {len(examples):,} examples are too few for {k}-fold checking (it needs at least "
                f"{MIN_PER_FOLD * k}, {MIN_PER_FOLD} per fold)")
    return None


# Inside `glassbox train`, the label-error check's k fold models train on images only when that costs at
# most this many FLOPs on the device they train on (the 1,797 8x8 digits: 0.1 TFLOP, 3 s on a 2-core CPU;
# 1,000 32x32 photos: 2.2 TFLOP; 23,000: 11 TFLOP, a minute). Text and table fold models are always cheap
# next to the training run, and `glassbox audit` always checks.
TRAIN_FOLD_FLOPS = {"cpu": 1e12, "cuda": 1e14}


def label_check(ex: Examples, folds: int, seed: int, device: str = "auto", max_flops: dict | None = None,
                show: bool = False, while_waiting=None) -> tuple:
    """(out-of-fold probabilities for the label-error check, None) or (None, why it was not run).

    max_flops: device type -> the most FLOPs image fold models may cost (None: no limit); show: a progress bar;
    while_waiting: see FoldModels.probabilities."""
    few = too_few(ex, folds)
    if few:
        return None, few
    costly = KINDS[ex.kind].fold.costly
    plan = FoldModels(ex, k=folds, seed=seed, device=device if costly else None)
    if max_flops is not None and costly:
        flops, budget = plan.flops, max_flops[pick_device(plan.config.device).type]
        if flops > budget:
            return None, (f"not checked during training: the {folds} fold models it trains on {len(ex):,} images would "
                          f"cost {flops / 1e12:.{1 if flops < 1e13 else 0}f} TFLOP, over the {budget / 1e12:g} TFLOP "
                          f"a training run spends on it; run `glassbox audit` on the same data to check")
    return plan.probabilities(show, while_waiting), None


def out_of_fold_probs(examples: Examples, k: int = 5, seed: int = 0, config: TrainConfig | None = None,
                      model: dict | None = None, encoder: dict | None = None, threads: int | None = None) -> np.ndarray:
    """(N, n_classes) out-of-fold probabilities from k quick models of the examples' kind (see FoldModels)."""
    return FoldModels(examples, k, seed, config, model, encoder, threads).probabilities()
